"""The multimodal dataset: fluidsynth renders of MIDI corpora cut into aligned snippet pairs.

Build (``training dataset build``): pick pieces and their splits
(:mod:`training.data.corpus`), plan the renders of each piece (:func:`plan_renders`),
render the ones not yet cached in parallel (:mod:`training.data.render`), then
consolidate every split into one ``{split}.npz``. Layout in docs/architecture.md,
numbers and choices in docs/dataset.md.

Splits and renders per piece:

* ``train``: ``train_renders`` renders, soundfonts in turn from the training
  soundfonts, tempo ratio log-uniform in ``tempo_range``, transposition, velocity
  and level variation, instruments drawn per track from the families;
* ``valid``: ``valid_renders`` renders, training soundfonts, tempo drawn, no transposition;
* ``test``, ``test_slow``, ``test_fast``: the *test* pieces rendered with the
  held-out soundfont at tempo ratio 1.0, 0.8 and 1.25 with the same instruments,
  so the three differ only in tempo.

Pairs: one per unique note-onset frame of a render's roll (as in Dorfer et al.),
roll centre ``c`` and audio centre ``round(c / tempo_ratio)``.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from follower.config import JsonConfig
from follower.errors import ConfigError
from follower.features import FeatureConfig
from follower.snippets import ROLL_CHANNELS

from . import corpus as corpus_mod
from ..augment.room import RoomConfig
from .render import Augmentation, RenderSpec, read_cached, render_piece
from .split import SPLITS
from .synth import (DEFAULT_FAMILY_WEIGHTS, PIANO_FAMILIES, STRING_FAMILIES, TEST_SOUNDFONT, TRAIN_SOUNDFONTS,
                    V2_TRAIN_SOUNDFONTS, RenderSettings, find_soundfont, require_fluidsynth)

TEST_TEMPI = (("test", 1.0), ("test_slow", 0.8), ("test_fast", 1.25))


@dataclass(frozen=True)
class CorpusSpec:
    """A corpus to include: a MIDI folder or a .mat set, optionally a hash-chosen subset."""

    path: str
    max_pieces: int | None = None
    split_file: str | None = None
    step_s: float | None = None   # seconds per row, .mat sets only
    ensemble: str = "mixed"       # "mixed": instrument families per track; "piano": one grand, pedal;
                                  # "strings": a bowed string per track
    piano_works: tuple = ()       # pieces (path prefixes in the corpus) rendered as "piano" whatever the
                                  # ensemble: Mozart's piano sonata among his quartets

    def __post_init__(self):
        if self.ensemble not in ENSEMBLES:
            raise ConfigError(f"corpus {self.path}: ensemble {self.ensemble!r}; expected one of {', '.join(ENSEMBLES)}")

    @property
    def name(self) -> str:
        """The corpus name its pieces carry (folder name, or .mat file stem)."""
        return Path(self.path).stem if self.path.lower().endswith(".mat") else Path(self.path).name

    @classmethod
    def parse(cls, text: str) -> "CorpusSpec":
        """``PATH`` or ``PATH@N`` (N pieces chosen by hash)."""
        path, _, limit = text.rpartition("@") if "@" in text else (text, "", "")
        if limit and not limit.isdigit():
            raise ConfigError(f"corpus {text!r}: expected PATH or PATH@N with N a positive integer")
        return cls(path, int(limit) if limit else None)


ENSEMBLES = ("mixed", "piano", "strings")


def default_corpora(data_root=None) -> tuple:
    """The Bach chorales (their splits.csv) and 300 Nottingham tunes (hash split)."""
    from ..paths import data_root as _data_root

    root = Path(data_root or _data_root())
    return (CorpusSpec(str(root / "midi" / "bach-chorales")),
            CorpusSpec(str(root / "midi" / "nottingham"), max_pieces=300))


def v2_corpora(data_root=None) -> tuple:
    """Dataset v2: the default's corpora, piano-midi.de (its splits.csv, on pianos) and 300
    MuseData pieces (official splits)."""
    from ..paths import data_root as _data_root

    root = Path(data_root or _data_root())
    return default_corpora(root) + (CorpusSpec(str(root / "midi" / "piano-midi"), ensemble="piano"),
                                    CorpusSpec(str(root / "rolls" / "MuseData.mat"), max_pieces=300))


# music21's corpus in dataset v3 (``training corpus music21``; one corpus per collection folder,
# each with its splits.csv by work). Ensembles that suit the music: the string quartets on
# strings, the keyboard works on a grand piano with pedal, vocal polyphony (Palestrina,
# Monteverdi, trecento, Josquin), songs and folk tunes on the mixed families like the chorales.
# Subsets keep the folk tunes (about 13,000) from swamping the rest: 60 tunes per folk
# collection (300 in all, as many as Nottingham), 150 Palestrina movements, every other piece.
MUSIC21_ENSEMBLES = {"beethoven": "strings", "haydn": "strings", "mozart": "strings", "chopin": "piano",
                     "joplin": "piano", "schoenberg": "piano", "cpebach": "piano"}
MUSIC21_PIANO_WORKS = {"mozart": ("k545",), "schumann_clara": ("polonaise",)}
MUSIC21_MAX_PIECES = {"essenFolksong": 60, "oneills1850": 60, "ryansMammoth": 60, "airdsAirs": 60,
                      "miscFolk": 60, "palestrina": 150}


def music21_corpora(folder) -> tuple:
    """One CorpusSpec per collection folder that ``training corpus music21 -o FOLDER`` wrote."""
    folder = Path(folder)
    if not (folder / "splits.csv").is_file():
        raise ConfigError(f"music21 corpus {folder} not found; write it first with "
                          f"`training corpus music21 -o {folder}` (about 30 min, resumable)")
    return tuple(CorpusSpec(str(d), max_pieces=MUSIC21_MAX_PIECES.get(d.name),
                            ensemble=MUSIC21_ENSEMBLES.get(d.name, "mixed"),
                            piano_works=MUSIC21_PIANO_WORKS.get(d.name, ()))
                 for d in sorted(folder.iterdir()) if (d / "splits.csv").is_file())


def v3_corpora(data_root=None) -> tuple:
    """Dataset v3: v2's corpora and music21's own corpus (``midi/music21``), split by work."""
    from ..paths import data_root as _data_root

    root = Path(data_root or _data_root())
    return v2_corpora(root) + music21_corpora(root / "midi" / "music21")


# Renders of dataset v2 (docs/dataset.md): five training soundfonts, tempo 0.5-1.6x, one
# excerpt of at most 60 written seconds per render (balances long piano pieces against
# chorales and bounds the render cost), and concert acoustics on the training renders.
V2_TRAIN_AUGMENTATION = Augmentation(transpose_semitones=3, room=RoomConfig(
    p_room=0.6, p_mic=0.6, p_noise=0.5, drift_db=3.0))


def v2_settings(data_root=None) -> dict:
    """DatasetConfig keyword arguments of dataset v2 (``training dataset build --preset v2``)."""
    return {"corpora": v2_corpora(data_root), "train_soundfonts": V2_TRAIN_SOUNDFONTS,
            "tempo_range": (0.5, 1.6), "excerpt_s": 60.0, "train_augmentation": V2_TRAIN_AUGMENTATION}


def v3_settings(data_root=None) -> dict:
    """Dataset v3 (``--preset v3``): v2's renders over v2's corpora and music21's."""
    return {**v2_settings(data_root), "corpora": v3_corpora(data_root)}


@dataclass(frozen=True)
class DatasetConfig(JsonConfig):
    corpora: tuple = ()
    train_soundfonts: tuple = TRAIN_SOUNDFONTS
    test_soundfont: str = TEST_SOUNDFONT
    train_renders: int = 2
    valid_renders: int = 1
    tempo_range: tuple = (0.8, 1.25)
    families: tuple = DEFAULT_FAMILY_WEIGHTS
    train_augmentation: Augmentation = Augmentation(transpose_semitones=3)
    eval_augmentation: Augmentation = Augmentation(transpose_semitones=0, level_db=(-6.0, -6.0))
    max_per_split: tuple = ()       # (("train", 20), ...): hash-chosen subset per split and corpus
    max_piece_s: float = 1800.0     # longer pieces are skipped and reported (memory: audio is held whole)
    excerpt_s: float = 0.0          # > 0: each render plays one window of at most this many written seconds
    test_tempi: tuple = tuple(t for _, t in TEST_TEMPI)  # which of test / test_slow / test_fast to render
    max_pairs_per_render: int = 0   # > 0: keep this many onset pairs per train render, evenly spread (balance)
    max_valid_pairs_per_render: int = 0  # the same for valid renders: balances what model selection sees
    seed: int = 0
    features: FeatureConfig = field(default_factory=FeatureConfig)
    render: RenderSettings = RenderSettings()

    def __post_init__(self):
        lo, hi = self.tempo_range
        if not 0 < lo <= hi:
            raise ConfigError(f"tempo_range={self.tempo_range} must satisfy 0 < low <= high")
        allowed = [t for _, t in TEST_TEMPI]
        if not self.test_tempi or any(float(t) not in allowed for t in self.test_tempi):
            raise ConfigError(f"test_tempi={self.test_tempi}; expected some of {allowed} "
                              "(test, test_slow, test_fast)")
        for name in ("max_pairs_per_render", "max_valid_pairs_per_render"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name}={getattr(self, name)} must be >= 0 (0 = all)")
        if self.excerpt_s < 0:
            raise ConfigError(f"excerpt_s={self.excerpt_s} must be >= 0 (0 = whole pieces)")
        if self.train_renders < 0 or self.valid_renders < 0:
            raise ConfigError("train_renders and valid_renders must be >= 0")
        if not self.train_soundfonts:
            raise ConfigError("at least one training soundfont is needed")
        names = {os.path.basename(s) for s in self.train_soundfonts}
        if os.path.basename(self.test_soundfont) in names:
            raise ConfigError(f"test soundfont {self.test_soundfont} is also a training soundfont; "
                              "the test renders need a held-out one")


def collect_pieces(cfg: DatasetConfig) -> list:
    pieces = []
    for spec in cfg.corpora:
        stream = corpus_mod.iter_corpus(spec.path, split_file=spec.split_file, seed=cfg.seed, step_s=spec.step_s)
        pieces += corpus_mod.select(stream, max_pieces=spec.max_pieces,
                                    max_per_split=dict(cfg.max_per_split) or None, seed=cfg.seed)
    ids = [p.piece_id for p in pieces]
    if len(set(ids)) != len(ids):
        raise ConfigError("two corpora give pieces the same id; give the corpus folders different names")
    return pieces


def _log_uniform(rng, lo, hi) -> float:
    return float(np.exp(rng.uniform(math.log(lo), math.log(hi))))


def ensemble_of(piece, cfg: DatasetConfig) -> str:
    spec = next((c for c in cfg.corpora if c.name == piece.corpus), None)
    if spec is None:
        return "mixed"
    rel = piece.piece_id[len(piece.corpus) + 1:]
    return "piano" if any(rel.startswith(w) for w in spec.piano_works) else spec.ensemble


def plan_renders(piece, cfg: DatasetConfig) -> list:
    """The RenderSpecs of one piece (deterministic in cfg.seed and the piece id)."""
    rng = np.random.default_rng([cfg.seed, int(corpus_mod.hash_unit(piece.piece_id) * 2 ** 32)])
    start = int(rng.integers(len(cfg.train_soundfonts)))  # so one render per piece still uses every soundfont
    specs = []
    ensemble = ensemble_of(piece, cfg)
    piano = ensemble == "piano"
    families = {"piano": PIANO_FAMILIES, "strings": STRING_FAMILIES}.get(ensemble, cfg.families)
    extra = {"excerpt_s": cfg.excerpt_s, "one_instrument": piano, "pedal": piano}

    def add(split, k, soundfont, tempo, aug, seed):
        specs.append(RenderSpec(f"{piece.piece_id}@{split}:{k}", piece.piece_id, split, soundfont,
                                round(float(tempo), 4), seed, aug, families, **extra))

    if piece.split in ("train", "valid"):
        n = cfg.train_renders if piece.split == "train" else cfg.valid_renders
        aug = cfg.train_augmentation if piece.split == "train" else cfg.eval_augmentation
        for k in range(n):
            sf = cfg.train_soundfonts[(start + k) % len(cfg.train_soundfonts)]
            add(piece.split, k, sf, _log_uniform(rng, *cfg.tempo_range), aug, int(rng.integers(2 ** 31)))
    elif piece.split == "test":
        seed = int(rng.integers(2 ** 31))  # shared: the three test renders differ only in tempo
        for split, tempo in TEST_TEMPI:
            if tempo in cfg.test_tempi:
                add(split, 0, cfg.test_soundfont, tempo, cfg.eval_augmentation, seed)
    return specs


def _pool(workers: int):
    import multiprocessing

    # spawn: workers start clean, without whatever native state (threads, synths) the parent holds
    return multiprocessing.get_context("spawn").Pool(workers)


def build_dataset(cfg: DatasetConfig, out_dir, *, workers: int | None = None, progress: bool = True,
                  cache_dir=None) -> dict:
    """Render what is missing, consolidate every split, write the tables; returns the summary.

    Resumable: renders already in the cache (``out_dir/cache``, or ``cache_dir``, which
    another build of the same settings may share) are skipped, and an interrupted
    build keeps every render it finished.
    """
    from tqdm import tqdm

    require_fluidsynth()
    soundfonts = {sf: find_soundfont(sf) for sf in (*cfg.train_soundfonts, cfg.test_soundfont)}
    out = Path(out_dir)
    cache = Path(cache_dir) if cache_dir else out / "cache"
    out.mkdir(parents=True, exist_ok=True)
    cache.mkdir(parents=True, exist_ok=True)
    if not cfg.corpora:
        raise ConfigError("no corpora given; pass --corpus DIR (a folder of MIDI files or a .mat set)")
    pieces = collect_pieces(cfg)
    held = sum(sum(1 for _ in corpus_mod.held_out(corpus_mod.iter_corpus(
        s.path, split_file=s.split_file, seed=cfg.seed, step_s=s.step_s))) for s in cfg.corpora)

    plan, tasks = [], []
    for piece in pieces:
        jobs = []
        for spec in plan_renders(piece, cfg):
            spec = dataclasses.replace(spec, soundfont=soundfonts[spec.soundfont])
            path = str(cache / spec.cache_name(piece, cfg.features, cfg.render))
            plan.append((piece, spec, path))
            if not os.path.exists(path):
                jobs.append((spec, path))
        if jobs:
            tasks.append((piece, jobs, cfg.features, cfg.render, cfg.max_piece_s))

    workers = max(1, min(workers or os.cpu_count() or 1, len(tasks) or 1))
    errors, rendered, audio_s = {}, 0, 0.0
    bar = tqdm(total=len(tasks), unit="piece", desc="rendering", disable=not progress or not tasks)
    pool = _pool(workers) if workers > 1 else None
    try:
        results = pool.imap_unordered(render_piece, tasks) if pool else map(render_piece, tasks)
        for res in results:
            if res["error"]:
                errors[res["piece_id"]] = res
            rendered += res["rendered"]
            audio_s += res["audio_s"]
            bar.update(1)
            bar.set_postfix(renders=rendered, audio_h=f"{audio_s / 3600:.2f}")
    except BaseException:
        if pool:
            pool.terminate()
        raise
    finally:
        bar.close()
        if pool:
            pool.close()
            pool.join()

    summary = consolidate(cfg, out, pieces, [(p, s, path) for p, s, path in plan if p.piece_id not in errors],
                          progress=progress)
    _write_report(out, errors.values())
    summary.update(rendered=rendered, rendered_audio_h=audio_s / 3600, skipped=len(errors), held_out=held)
    with open(out / "dataset.json.tmp", "w") as f:
        json.dump({"config": cfg.to_dict(), "summary": summary,
                   "roll_channels": list(ROLL_CHANNELS), "pitch_lo": 21, "pitch_hi": 108,
                   "frame_rate_hz": cfg.features.frame_rate_hz}, f, indent=2, default=str)
    os.replace(out / "dataset.json.tmp", out / "dataset.json")
    return summary


def _write_report(out: Path, errors) -> None:
    with open(out / "report.csv.tmp", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["piece_id", "source", "reason"])
        for e in sorted(errors, key=lambda e: e["piece_id"]):
            w.writerow([e["piece_id"], e["source"], e["error"]])
    os.replace(out / "report.csv.tmp", out / "report.csv")


def onset_centres(roll: np.ndarray) -> np.ndarray:
    """Unique roll frames in which some note starts (``roll`` holds every channel)."""
    onset = roll[:, list(ROLL_CHANNELS).index("onset")]
    return np.flatnonzero(onset.any(axis=1))


def consolidate(cfg: DatasetConfig, out: Path, pieces, plan, *, progress: bool = True) -> dict:
    """Concatenate the cached renders of each split into ``{split}.npz``; write the tables."""
    from tqdm import tqdm

    by_split = {s: [] for s in SPLITS}
    for piece, spec, path in plan:
        by_split[spec.split].append((piece, spec, path))
    piece_rows, render_rows, counts = {}, [], {}
    for split, items in by_split.items():
        specs, rolls, ro, so, rp, tempo, shift, sfs, rids, pairs = [], [], [0], [0], [], [], [], [], [], []
        piece_index: dict = {}
        names = []
        for piece, spec, path in tqdm(items, desc=f"consolidating {split}", unit="render",
                                      disable=not progress or not items, leave=False):
            c = read_cached(path)
            meta = c["meta"]
            r = len(rids)
            pi = piece_index.setdefault(piece.piece_id, len(piece_index))
            if pi == len(names):
                names.append(os.path.splitext(os.path.basename(piece.source.split("#")[0]))[0]
                             if "#" not in piece.source else piece.piece_id)
            roll_c = onset_centres(c["roll"])
            cap = {"train": cfg.max_pairs_per_render, "valid": cfg.max_valid_pairs_per_render}.get(split, 0)
            if 0 < cap < len(roll_c):
                # dense piano writing has three times the onsets of a chorale per second: an even
                # subset keeps one render from outweighing others in the epoch (train) or in the
                # validation MRR that selects the model (valid; test splits stay whole)
                roll_c = roll_c[np.unique(np.round(np.linspace(0, len(roll_c) - 1, cap)).astype(int))]
            audio_c = np.round(roll_c / spec.tempo_ratio).astype(np.int64)
            ok = audio_c < len(c["spectrogram"])
            pairs.append(np.stack([np.full(ok.sum(), r), audio_c[ok], roll_c[ok]], axis=1))
            specs.append(c["spectrogram"])
            rolls.append(c["roll"])
            so.append(so[-1] + len(c["spectrogram"]))
            ro.append(ro[-1] + len(c["roll"]))
            rp.append(pi)
            tempo.append(spec.tempo_ratio)
            shift.append(meta["transpose"])
            sfs.append(meta["soundfont"])
            rids.append(spec.render_id)
            piece_rows[piece.piece_id] = [piece.piece_id, piece.corpus, piece.split, piece.group,
                                          piece.source, f"{meta['duration_s']:.3f}", meta["roll_frames"]]
            render_rows.append([spec.render_id, piece.piece_id, split, meta["soundfont"], spec.tempo_ratio,
                                meta["transpose"], json.dumps(meta["programs"]), meta["audio_frames"],
                                int(ok.sum()), os.path.basename(path)])
        n_bins = cfg.features.n_bins
        arrays = {
            "spectrograms": np.concatenate(specs) if specs else np.zeros((0, n_bins), np.float16),
            "spec_offsets": np.array(so, dtype=np.int64),
            "rolls": np.concatenate(rolls) if rolls else np.zeros((0, len(ROLL_CHANNELS), 88), np.uint8),
            "roll_offsets": np.array(ro, dtype=np.int64),
            "roll_channels": np.array(ROLL_CHANNELS),
            "render_piece": np.array(rp, dtype=np.int32),
            "render_ids": np.array(rids, dtype=str),
            "tempo_ratio": np.array(tempo, dtype=np.float32),
            "transpose": np.array(shift, dtype=np.int8),
            "soundfont": np.array(sfs, dtype=str),
            "piece_ids": np.array(list(piece_index), dtype=str),
            "piece_names": np.array(names, dtype=str),
            "pairs": np.concatenate(pairs) if pairs else np.zeros((0, 3), np.int64),
            "frame_rate_hz": np.array(cfg.features.frame_rate_hz),
        }
        tmp = out / f"{split}.tmp.npz"
        np.savez(tmp, **arrays)
        os.replace(tmp, out / f"{split}.npz")
        counts[split] = {"pieces": len(piece_index), "renders": len(rids),
                         "audio_h": round(float(arrays["spec_offsets"][-1]) / cfg.features.frame_rate_hz / 3600, 3),
                         "pairs": int(len(arrays["pairs"]))}
    _write_csv(out / "pieces.csv", ["piece_id", "corpus", "split", "group", "source", "duration_s", "roll_frames"],
               sorted(piece_rows.values()))
    _write_csv(out / "renders.csv", ["render_id", "piece_id", "split", "soundfont", "tempo_ratio", "transpose",
                                     "programs", "audio_frames", "pairs", "cache_file"], render_rows)
    return {"splits": counts, "pieces": len(piece_rows)}


def _write_csv(path: Path, header, rows) -> None:
    tmp = path.with_suffix(".csv.tmp")
    with open(tmp, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    os.replace(tmp, path)
