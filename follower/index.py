"""The follower's search index: score-snippet embeddings of every piece of a MIDI corpus.

Every piece's piano roll (the bundle's snippet settings, at the bundle's frame rate)
is cut into roll snippets centred every ``hop_frames`` frames, from the first frame
to the last, and embedded by the bundle's score encoder. Each snippet keeps its
piece and its centre's position on the MIDI's own timeline, in seconds and in
quarter-note beats. Identical windows (silence, literal repeats) are embedded once.

On disk an index is one ``.npz`` file (no pickles) holding the arrays and a JSON
header (``header``): format version, the bundle fingerprint it was built with,
hop, frame rate, counts, the files that were skipped and why, and the sha256 of
the arrays (checked on every load: a damaged or edited index is refused with one
line). The paths the header names are only ever read or shown, never written. The hop and the
frame rate give the snippet grid's cell width (:attr:`Index.cell_s`), which the path
verification and the tracker both step by.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import zipfile
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from .errors import BadMidiError, BundleError

FORMAT = "scorefollow-index"
FORMAT_VERSION = 1
MIDI_SUFFIXES = (".mid", ".midi")
ARRAYS = ("embeddings", "piece", "position_s", "position_beats", "piece_ids", "titles",
          "piece_start", "duration_s")


@dataclass
class Index:
    """Arrays of an index; rows of ``piece_start[p]:piece_start[p + 1]`` belong to piece ``p``."""

    header: dict
    embeddings: np.ndarray      # (n, embed_dim) float16 or float32, L2-normalised rows
    piece: np.ndarray           # (n,) int32 piece number of each snippet
    position_s: np.ndarray      # (n,) float32 centre of the snippet, seconds of the MIDI timeline
    position_beats: np.ndarray  # (n,) float32 the same in quarter-note beats
    piece_ids: np.ndarray       # (p,) str: MIDI path relative to the corpus folder, no suffix
    titles: np.ndarray          # (p,) str
    piece_start: np.ndarray     # (p + 1,) int64 first row of each piece
    duration_s: np.ndarray      # (p,) float32 length of each piece on its MIDI timeline

    @property
    def n_snippets(self) -> int:
        return int(len(self.embeddings))

    @property
    def n_pieces(self) -> int:
        return int(len(self.piece_ids))

    @cached_property
    def cell_s(self) -> float:
        """Seconds between neighbouring snippet centres of a piece: ``hop_frames / frame_rate_hz``.

        An index whose header lacks either (written by hand, or by an older version) gets the
        median spacing of its snippets within pieces, 0.2 s when no piece has two.
        """
        hop, fps = self.header.get("hop_frames"), self.header.get("frame_rate_hz")
        if hop and fps:
            return float(hop) / float(fps)
        same_piece = self.piece[1:] == self.piece[:-1]
        steps = np.diff(self.position_s)[same_piece]
        return float(np.median(steps)) if len(steps) else 0.2

    @property
    def fingerprint(self) -> str:
        return str(self.header.get("bundle_fingerprint", ""))

    def rows(self, piece: int) -> slice:
        return slice(int(self.piece_start[piece]), int(self.piece_start[piece + 1]))

    def check_bundle(self, bundle_config, *, index_path="index", bundle_path="bundle") -> None:
        """Refuse an index built with another bundle (its embeddings live in another space)."""
        want = bundle_config.fingerprint
        if self.fingerprint != want:
            raise BundleError(
                f"{index_path} was built with bundle {self.fingerprint or '(unknown)'} but {bundle_path} "
                f"is {want}; rebuild it: follower index build CORPUS -o {index_path} --bundle {bundle_path}")
        if self.embeddings.shape[1] != bundle_config.embed_dim:
            raise BundleError(f"{index_path} holds {self.embeddings.shape[1]}-d embeddings but {bundle_path} "
                              f"makes {bundle_config.embed_dim}-d ones; rebuild the index with that bundle")


def piece_title(path, default: str) -> str:
    """The MIDI's own name (first track's track_name), else ``default``."""
    import mido

    try:
        mid = mido.MidiFile(path, clip=True)
        for msg in mid.tracks[0] if mid.tracks else []:
            if msg.type == "track_name" and msg.name.strip():
                return msg.name.strip()
    except Exception:  # noqa: BLE001 - load_midi already vetted the file; a title is optional
        pass
    return default


def find_midi(paths) -> list[tuple[Path, str]]:
    """(file, piece id) for each MIDI file under ``paths`` (folders or files), sorted.

    The id is the path relative to the folder given, without its suffix; a file given
    directly is named by its stem. Ids that collide across folders get the folder's
    name as a prefix.
    """
    found: list[tuple[Path, str]] = []
    for root in map(Path, paths):
        if root.is_file():
            found.append((root, root.with_suffix("").name))
        elif root.is_dir():
            for dirpath, dirnames, filenames in os.walk(root):
                dirnames.sort()
                for name in sorted(filenames):
                    if name.lower().endswith(MIDI_SUFFIXES):
                        f = Path(dirpath) / name
                        found.append((f, f.relative_to(root).with_suffix("").as_posix()))
        else:
            raise BadMidiError(f"{root}: no such file or folder; give MIDI files or folders of them")
    counts: dict = {}
    for _, pid in found:
        counts[pid] = counts.get(pid, 0) + 1
    if any(c > 1 for c in counts.values()):
        found = [(f, f"{f.parent.name}/{pid}" if counts[pid] > 1 else pid) for f, pid in found]
    return found


def snippet_centres(n_frames: int, hop_frames: int) -> np.ndarray:
    """Centre frames 0, hop, 2 hop, ... up to the piece's last frame (inclusive)."""
    return np.arange(0, n_frames + 1, hop_frames, dtype=np.int64)


class _Embedder:
    """Batches unique roll windows through the score encoder; repeats are embedded once."""

    def __init__(self, encode, snippet_config, batch: int = 32):
        self.encode = encode
        self.snippet_config = snippet_config
        self.batch = batch
        self.cache: dict = {}
        self.n_encoded = 0
        self.max_cache = 500_000

    def __call__(self, windows: np.ndarray) -> np.ndarray:
        from .snippets import roll_input

        # a 16-byte digest keys the cache: windows themselves would cost 3.7 kB each
        keys = [hashlib.blake2b(w.tobytes(), digest_size=16).digest() for w in windows]
        if len(self.cache) > self.max_cache:
            self.cache.clear()
        first: dict = {}
        for i, key in enumerate(keys):
            if key not in self.cache:
                first.setdefault(key, i)
        unique = list(first)
        for start in range(0, len(unique), self.batch):
            chunk = unique[start:start + self.batch]
            emb = self.encode(roll_input(windows[[first[k] for k in chunk]], self.snippet_config))
            for key, e in zip(chunk, emb):
                self.cache[key] = e
            self.n_encoded += len(chunk)
        return np.stack([self.cache[k] for k in keys]).astype(np.float32)


def _embed_piece(path, pid, embed: _Embedder, bundle_config, hop_frames: int, dtype):
    """One piece's snippets: (embeddings, position_s, position_beats, title, duration_s, n_encoded)."""
    from .midi import load_midi
    from .snippets import cut, score_roll

    fps = bundle_config.features.frame_rate_hz
    score = load_midi(path)
    roll = score_roll(score, bundle_config.snippets, fps)
    centres = snippet_centres(len(roll), hop_frames)
    before = embed.n_encoded
    emb = embed(cut(roll, centres, bundle_config.snippets.roll_frames))
    pos_s = centres / fps
    return (emb.astype(dtype), pos_s, score.seconds_to_beats(pos_s), piece_title(path, pid), score.duration_s,
            embed.n_encoded - before)


_WORKER: dict = {}


def _worker_init(bundle_dir: str, hop_frames: int, dtype_name: str, batch: int) -> None:
    from .bundle import SCORE_ONNX, Encoder, read_config

    cfg = read_config(bundle_dir)
    # one thread that sleeps between batches: the other workers need the cores (docs/benchmarks.md)
    score = Encoder(Path(bundle_dir) / SCORE_ONNX, threads=1, spinning=False)
    _WORKER.update(cfg=cfg, hop=hop_frames, dtype=np.dtype(dtype_name),
                   embed=_Embedder(score, cfg.snippets, batch))


def _worker_piece(item):
    path, pid = item
    try:
        return _embed_piece(path, pid, _WORKER["embed"], _WORKER["cfg"], _WORKER["hop"], _WORKER["dtype"])
    except BadMidiError as e:
        return e


def build_index(paths, bundle, *, hop_frames: int = 4, dtype=np.float16, progress: bool = True,
                batch: int = 32, workers: int = 1) -> Index:
    """Embed every readable MIDI file under ``paths``; unreadable ones are skipped and listed.

    ``workers > 1`` runs that many processes with one onnxruntime thread each, which
    embeds faster than one process with as many threads (docs/benchmarks.md); pieces
    come back in order, so the index is the same either way.
    """
    from tqdm import tqdm

    if int(hop_frames) < 1:
        raise BundleError(f"hop_frames={hop_frames} must be a positive integer")
    cfg = bundle.config
    fps = cfg.features.frame_rate_hz
    files = find_midi(paths)
    if not files:
        raise BadMidiError(f"no .mid/.midi files under {', '.join(map(str, paths))}")
    parts, ids, titles, durations, skipped = [], [], [], [], []
    n_encoded = 0
    t0 = time.time()
    pool = None
    if workers > 1 and len(files) >= 4 * workers:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        # spawn, not fork: the parent already runs onnxruntime thread pools
        pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=_worker_init,
                                   initargs=(str(bundle.path), int(hop_frames), np.dtype(dtype).name, batch))
        results = pool.map(_worker_piece, files, chunksize=2)
    else:
        embed = _Embedder(bundle.score, cfg.snippets, batch=batch)

        def local(item):
            try:
                return _embed_piece(item[0], item[1], embed, cfg, int(hop_frames), dtype)
            except BadMidiError as e:
                return e

        results = map(local, files)
    try:
        bar = tqdm(zip(files, results), total=len(files), desc="index", unit="piece", disable=not progress,
                   dynamic_ncols=True)
        for (path, pid), result in bar:
            if isinstance(result, BadMidiError):
                skipped.append({"file": str(path), "reason": str(result)})
                continue
            emb, pos_s, beats, title, duration, encoded = result
            parts.append((emb, pos_s, beats))
            ids.append(pid)
            titles.append(title)
            durations.append(duration)
            n_encoded += encoded
            bar.set_postfix(snippets=sum(len(p[0]) for p in parts), skipped=len(skipped))
        bar.close()
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    if not parts:
        raise BadMidiError(f"none of the {len(files)} MIDI files could be read; first problem: "
                           f"{skipped[0]['reason']}")
    counts = np.array([len(p[0]) for p in parts], dtype=np.int64)
    header = {
        "format": FORMAT, "format_version": FORMAT_VERSION,
        "bundle_fingerprint": cfg.fingerprint, "bundle": str(bundle.path),
        "embed_dim": int(cfg.embed_dim), "hop_frames": int(hop_frames), "frame_rate_hz": fps,
        "roll_frames": cfg.snippets.roll_frames, "n_pieces": len(ids), "n_snippets": int(counts.sum()),
        "n_encoded": n_encoded, "sources": [str(p) for p in paths], "skipped": skipped,
        "build_s": round(time.time() - t0, 1),
    }
    return Index(
        header=header,
        embeddings=np.concatenate([p[0] for p in parts]),
        piece=np.repeat(np.arange(len(parts), dtype=np.int32), counts),
        position_s=np.concatenate([p[1] for p in parts]).astype(np.float32),
        position_beats=np.concatenate([p[2] for p in parts]).astype(np.float32),
        piece_ids=np.array(ids, dtype=str), titles=np.array(titles, dtype=str),
        piece_start=np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
        duration_s=np.array(durations, dtype=np.float32),
    )


def content_sha256(arrays: dict) -> str:
    """One checksum over every array of an index (name, dtype, shape and bytes, in ARRAYS order)."""
    h = hashlib.sha256()
    for name in ARRAYS:
        a = np.ascontiguousarray(arrays[name])
        h.update(f"{name}:{a.dtype.str}:{a.shape};".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def save_index(index: Index, path) -> Path:
    """Write ``path`` atomically (a partial file never replaces a good one), with its arrays' sha256 in the header."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    header = dict(index.header, sha256=content_sha256({name: getattr(index, name) for name in ARRAYS}))
    with open(tmp, "wb") as f:  # a file object: numpy then does not append ".npz"
        np.savez(f, header=np.array(json.dumps(header)),
                 **{name: getattr(index, name) for name in ARRAYS})
    os.replace(tmp, path)
    return path


def load_index(path) -> Index:
    """Read an index file, or raise BundleError saying what is wrong with it."""
    path = Path(path)
    if not path.is_file():
        raise BundleError(f"{path}: no such index file; build one with "
                          "`follower index build CORPUS -o INDEX --bundle BUNDLE`")
    try:
        with np.load(path, allow_pickle=False) as z:
            data = {name: z[name] for name in ("header",) + ARRAYS}
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as e:
        raise BundleError(f"{path}: not a follower index ({e}); rebuild it with `follower index build`") from e
    except KeyError as e:
        raise BundleError(f"{path}: lacks the array {e}; it is not a follower index, rebuild it") from e
    try:
        header = json.loads(str(data.pop("header")))
    except json.JSONDecodeError as e:
        raise BundleError(f"{path}: its header is not valid JSON; rebuild the index") from e
    if not isinstance(header, dict):
        raise BundleError(f"{path}: its header is not a JSON object (damaged file); rebuild the index")
    if header.get("format") != FORMAT or header.get("format_version") != FORMAT_VERSION:
        raise BundleError(f"{path}: format {header.get('format')!r} v{header.get('format_version')} is not "
                          f"{FORMAT!r} v{FORMAT_VERSION}; rebuild it with this version of `follower index build`")
    want = header.get("sha256")  # indexes written before the checksum have none; the zip's CRCs still apply
    if want is not None and content_sha256(data) != want:
        raise BundleError(f"{path}: its contents do not match the checksum in its header (changed or damaged "
                          "after it was built); rebuild it with `follower index build`")
    index = Index(header=header, **data)
    n, p = index.n_snippets, index.n_pieces
    if (index.embeddings.ndim != 2 or any(len(getattr(index, a)) != n for a in ("piece", "position_s",
                                                                                 "position_beats"))
            or len(index.piece_start) != p + 1 or index.piece_start[-1] != n or len(index.titles) != p):
        raise BundleError(f"{path}: its arrays disagree in length (damaged file); rebuild the index")
    return index
