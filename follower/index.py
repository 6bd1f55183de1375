"""The follower's search index: score-snippet embeddings of every piece of a MIDI corpus.

Every piece's piano roll (the bundle's snippet settings, at the bundle's frame rate)
is cut into roll snippets centred every ``hop_frames`` frames, from the first frame
to the last, and embedded by the bundle's score encoder. Each snippet keeps its
piece and its centre's position on the MIDI's own timeline, in seconds and in
quarter-note beats. Identical windows (silence, literal repeats) are embedded once.

On disk an index is one ``.npz`` file (no pickles) holding the arrays and a JSON
header (``header``): format version, the fingerprint of what the embeddings depend
on (score encoder + feature and snippet settings; ``index_fingerprint``) and of the
bundle it was built with, hop, frame rate, counts, the files that were skipped and
why, and the sha256 of the arrays (checked on every load: a damaged or edited index
is refused with one line). The paths the header names are only ever read or shown,
never written. The hop and the
frame rate give the snippet grid's cell width (:attr:`Index.cell_s`), which the path
verification and the tracker both step by.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
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
# the pieces' notes, for the frame-level aligner (follower.aligner); indexes written before
# they were added lack them and are followed by the embedding path alone
NOTE_ARRAYS = ("note_start", "note_onset_s", "note_end_s", "note_pitch")


_KEPT_LOCK = threading.RLock()  # Index.kept: one maker at a time (made at engine start-up, never per update)


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
    note_start: np.ndarray | None = None    # (p + 1,) int64 first note of each piece
    note_onset_s: np.ndarray | None = None  # (notes,) float32 on the piece's MIDI timeline
    note_end_s: np.ndarray | None = None    # (notes,) float32
    note_pitch: np.ndarray | None = None    # (notes,) uint8 MIDI pitch (drums left out)
    ann: np.ndarray | None = None  # serialised faiss structure over the rows (follower.ann), if any

    @property
    def n_snippets(self) -> int:
        return int(len(self.embeddings))

    def kept(self, key, make):
        """``make()``, a value derived from this index, made on first use and kept with it under ``key``:
        every engine over the index (the pair of ``follower.two_speeds``, each file of a batch replay) reads
        the one made first. A thread asking while another makes it waits for that one."""
        with _KEPT_LOCK:
            store = self.__dict__.setdefault("_kept", {})
            if key not in store:
                store[key] = make()
            return store[key]

    @cached_property
    def search_matrix(self) -> np.ndarray:
        """The embeddings as the search kernels read them (C-contiguous float32; a float16 index is
        converted): made once and shared by every engine over this index, the pair of
        ``follower.two_speeds`` and each file of a batch replay alike, instead of a copy each (so an
        index's rows are not to be changed once an engine has read them)."""
        from .knn import as_search_matrix

        return as_search_matrix(self.embeddings)

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
        """What the embeddings depend on (:attr:`BundleConfig.index_fingerprint`); for an index
        written before it was recorded, the fingerprint of the whole bundle that built it."""
        return str(self.header.get("index_fingerprint") or self.header.get("bundle_fingerprint", ""))

    def rows(self, piece: int) -> slice:
        return slice(int(self.piece_start[piece]), int(self.piece_start[piece + 1]))

    @property
    def has_notes(self) -> bool:
        return self.note_start is not None

    def notes(self, piece: int):
        """(onset_s, end_s, pitch) of the piece's notes, or None if the index carries no notes."""
        if self.note_start is None:
            return None
        sl = slice(int(self.note_start[piece]), int(self.note_start[piece + 1]))
        return self.note_onset_s[sl], self.note_end_s[sl], self.note_pitch[sl]

    @property
    def score_encoder(self) -> str:
        """Which of the bundle's score encoders made the embeddings ("full" unless the header names another)."""
        return str(self.header.get("score_encoder", "full"))

    def check_bundle(self, bundle_config, *, index_path="index", bundle_path="bundle") -> None:
        """Refuse an index whose embeddings live in another space than the bundle's.

        An index is tied to the score encoder and the feature + snippet settings that made it
        (``index_fingerprint`` in its header; ``score_encoder`` names which of the bundle's
        score encoders, "full" when absent), not to the audio encoder: bundles that differ
        only there share indexes. An index written before that key existed records only the
        whole bundle; it is accepted by that bundle and by the bundles made from it with the
        score side unchanged (``BundleConfig.score_from``, ``training quantize``), and
        otherwise must be rebuilt.
        """
        from .bundle import SCORE_ENCODERS

        name = self.score_encoder
        rebuild = f"rebuild it: follower index build CORPUS -o {index_path} --bundle {bundle_path}"
        if name != "full":
            rebuild += f" --score-encoder {name}"
        if name not in SCORE_ENCODERS:
            raise BundleError(f"{index_path} was built with a score encoder named {name!r}, which this follower "
                              f"does not know ({', '.join(SCORE_ENCODERS)}); {rebuild}")
        if "index_fingerprint" in self.header:
            if not bundle_config.has_score_encoder(name):
                raise BundleError(f"{index_path} was built with the {name} score encoder ({SCORE_ENCODERS[name]}), "
                                  f"which {bundle_path} does not carry; use the bundle that built it, or {rebuild}")
            want = bundle_config.index_fingerprint_for(name)
            if self.header["index_fingerprint"] != want:
                raise BundleError(
                    f"{index_path} was built with another score encoder or snippet settings "
                    f"({self.header['index_fingerprint']}) than {bundle_path}'s {name} one ({want}); {rebuild}")
        elif self.header.get("bundle_fingerprint") not in (bundle_config.fingerprint,
                                                           bundle_config.score_from or bundle_config.fingerprint):
            raise BundleError(
                f"{index_path} was built with bundle {self.header.get('bundle_fingerprint') or '(unknown)'} by an "
                f"older follower that did not record its score encoder, and {bundle_path} is "
                f"{bundle_config.fingerprint}; {rebuild}")
        if self.embeddings.shape[1] != bundle_config.embed_dim:
            raise BundleError(f"{index_path} holds {self.embeddings.shape[1]}-d embeddings but {bundle_path} "
                              f"makes {bundle_config.embed_dim}-d ones; rebuild the index with that bundle")


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


class ScoreEmbedder:
    """Batches unique roll windows through the score encoder; repeats are embedded once.

    ``encode`` is the bundle's score encoder (any callable from encoder input to
    embeddings). onnxruntime embeds each row of a batch as it embeds it alone, so the
    result does not depend on the batch size or on which pieces shared the cache.
    """

    def __init__(self, encode, snippet_config, batch: int = 64):
        self.encode = encode
        self.snippet_config = snippet_config
        self.batch = batch
        self.cache: dict = {}
        self.n_encoded = 0
        self.max_cache = 500_000

    def piece(self, roll: np.ndarray, centres: np.ndarray) -> np.ndarray:
        """Embeddings of one piece's snippets centred at ``centres`` of its (frames, C, P) roll.

        An encoder that embeds whole pieces (``embed_piece``: the shared trunk of
        follower.score_trunk) gets the roll; any other gets the windows, repeats once.
        """
        from .snippets import cut, roll_input

        width = self.snippet_config.roll_frames
        if hasattr(self.encode, "embed_piece"):
            x = roll_input(roll[None], self.snippet_config)[0]
            self.n_encoded += len(centres)
            return self.encode.embed_piece(x, np.asarray(centres) - width // 2, width).astype(np.float32)
        return self(cut(roll, centres, width))

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


@dataclass
class PieceRows:
    """One piece's rows of an index, as :func:`embed_piece` returns them (plain arrays: picklable)."""

    piece_id: str
    title: str
    duration_s: float
    embeddings: np.ndarray      # (m, embed_dim) in the index's dtype
    position_s: np.ndarray      # (m,) snippet centres, seconds of the MIDI timeline
    position_beats: np.ndarray  # (m,)
    n_encoded: int              # windows this piece sent through the encoder (the rest were repeats)
    note_onset_s: np.ndarray    # (notes,) the piece's notes, for the fine aligner (follower.aligner)
    note_end_s: np.ndarray
    note_pitch: np.ndarray      # (notes,) uint8


def embed_piece(path, piece_id: str, embed: ScoreEmbedder, bundle_config, hop_frames: int,
                dtype=np.float16) -> PieceRows:
    """Every snippet of one MIDI file, embedded; raises BadMidiError (one line) for an unreadable file.

    The unit of work of an index build: a build, serial or spread over workers, is these
    rows of every readable file in :func:`find_midi`'s order, stacked (:func:`assemble`).
    """
    from .midi import load_midi
    from .snippets import score_roll

    fps = bundle_config.features.frame_rate_hz
    score = load_midi(path)
    roll = score_roll(score, bundle_config.snippets, fps)
    centres = snippet_centres(len(roll), hop_frames)
    before = embed.n_encoded
    emb = embed.piece(roll, centres)
    pos_s = centres / fps
    notes = score.pitched
    # the title comes with the parse: reading the file again for it cost a fifth of a shared-trunk build
    return PieceRows(piece_id=piece_id, title=score.title or piece_id, duration_s=float(score.duration_s),
                     embeddings=emb.astype(dtype), position_s=pos_s.astype(np.float32),
                     position_beats=np.asarray(score.seconds_to_beats(pos_s), np.float32),
                     n_encoded=embed.n_encoded - before, note_onset_s=notes["start_s"].astype(np.float32),
                     note_end_s=notes["end_s"].astype(np.float32), note_pitch=notes["pitch"].astype(np.uint8))


class PartCache:
    """Finished pieces of an interrupted build, one ``.npz`` each, so that a rerun resumes.

    A part is keyed by the MIDI file's bytes, its piece id, the hop, the dtype and the
    index fingerprint (score encoder + settings): a changed file or setting is embedded again.
    """

    def __init__(self, folder, bundle_config, hop_frames: int, dtype, score_encoder: str = "full"):
        self.folder = Path(folder)
        self.salt = json.dumps([bundle_config.index_fingerprint_for(score_encoder), int(hop_frames),
                                np.dtype(dtype).name])
        self.hits = 0

    def _path(self, path, piece_id: str) -> Path:
        h = hashlib.blake2b(self.salt.encode() + piece_id.encode() + b"\0", digest_size=16)
        with open(path, "rb") as f:
            h.update(f.read())
        return self.folder / f"{h.hexdigest()}.npz"

    def get(self, path, piece_id: str) -> PieceRows | None:
        try:
            part = self._path(path, piece_id)
            with np.load(part, allow_pickle=False) as z:
                meta = json.loads(str(z["meta"]))
                rows = PieceRows(embeddings=z["embeddings"], position_s=z["position_s"],
                                 position_beats=z["position_beats"], note_onset_s=z["note_onset_s"],
                                 note_end_s=z["note_end_s"], note_pitch=z["note_pitch"], **meta)
        except (OSError, KeyError, ValueError, zipfile.BadZipFile, EOFError, json.JSONDecodeError, TypeError):
            return None  # not there yet, or cut short when the build was stopped: embed it again
        self.hits += 1
        return rows

    def put(self, path, rows: PieceRows) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        part = self._path(path, rows.piece_id)
        meta = {"piece_id": rows.piece_id, "title": rows.title, "duration_s": rows.duration_s,
                "n_encoded": rows.n_encoded}
        tmp = part.with_name(part.name + ".tmp")
        with open(tmp, "wb") as f:
            np.savez(f, meta=np.array(json.dumps(meta)), embeddings=rows.embeddings, position_s=rows.position_s,
                     position_beats=rows.position_beats, note_onset_s=rows.note_onset_s, note_end_s=rows.note_end_s,
                     note_pitch=rows.note_pitch)
        os.replace(tmp, part)


_WORKER: dict = {}


def _worker_init(bundle_dir: str, hop_frames: int, dtype_name: str, batch: int, score_encoder: str = "full") -> None:
    from .bundle import open_score_encoder, read_config

    cfg = read_config(bundle_dir)
    # one thread that sleeps between batches: the other workers need the cores (docs/benchmarks.md)
    score = open_score_encoder(bundle_dir, cfg, score_encoder, threads=1, spinning=False)
    _WORKER.update(cfg=cfg, hop=hop_frames, dtype=np.dtype(dtype_name),
                   embed=ScoreEmbedder(score, cfg.snippets, batch))


def _worker_piece(item):
    path, pid = item
    try:
        return embed_piece(path, pid, _WORKER["embed"], _WORKER["cfg"], _WORKER["hop"], _WORKER["dtype"])
    except BadMidiError as e:
        return e


def assemble(parts: list, header: dict) -> Index:
    """One index of the pieces' rows, in the order given; ``header`` gets the counts."""
    counts = np.array([len(p.embeddings) for p in parts], dtype=np.int64)
    header = {**header, "n_pieces": len(parts), "n_snippets": int(counts.sum()),
              "n_encoded": int(sum(p.n_encoded for p in parts))}
    return Index(
        header=header,
        embeddings=np.concatenate([p.embeddings for p in parts]),
        piece=np.repeat(np.arange(len(parts), dtype=np.int32), counts),
        position_s=np.concatenate([p.position_s for p in parts]).astype(np.float32),
        position_beats=np.concatenate([p.position_beats for p in parts]).astype(np.float32),
        piece_ids=np.array([p.piece_id for p in parts], dtype=str),
        titles=np.array([p.title for p in parts], dtype=str),
        piece_start=np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
        duration_s=np.array([p.duration_s for p in parts], dtype=np.float32),
        note_start=np.concatenate([[0], np.cumsum([len(p.note_onset_s) for p in parts])]).astype(np.int64),
        note_onset_s=np.concatenate([p.note_onset_s for p in parts]).astype(np.float32),
        note_end_s=np.concatenate([p.note_end_s for p in parts]).astype(np.float32),
        note_pitch=np.concatenate([p.note_pitch for p in parts]).astype(np.uint8),
    )


def build_index(paths, bundle, *, hop_frames: int = 4, dtype=np.float16, progress: bool = True,
                batch: int = 64, workers: int = 1, parts_dir=None) -> Index:
    """Embed every readable MIDI file under ``paths``; unreadable ones are skipped and listed.

    ``workers > 1`` runs that many processes with one onnxruntime thread each, which
    embeds faster than one process with as many threads (docs/benchmarks.md); pieces
    come back in order, so the index is the same either way. With ``parts_dir`` each
    finished piece is kept there (:class:`PartCache`) and a rerun of a stopped build
    embeds only the pieces it lacks.
    """
    from tqdm import tqdm

    if int(hop_frames) < 1:
        raise BundleError(f"hop_frames={hop_frames} must be a positive integer")
    cfg = bundle.config
    encoder_name = getattr(bundle, "score_encoder", "full")
    files = find_midi(paths)
    if not files:
        raise BadMidiError(f"no .mid/.midi files under {', '.join(map(str, paths))}")
    cache = PartCache(parts_dir, cfg, int(hop_frames), dtype, encoder_name) if parts_dir is not None else None
    done = {i: cache.get(*item) for i, item in enumerate(files)} if cache is not None else {}
    done = {i: rows for i, rows in done.items() if rows is not None}
    todo = [item for i, item in enumerate(files) if i not in done]
    t0 = time.time()
    pool = None
    if workers > 1 and len(todo) >= 4 * workers:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        # spawn, not fork: the parent already runs onnxruntime thread pools
        pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=_worker_init,
                                   initargs=(str(bundle.path), int(hop_frames), np.dtype(dtype).name, batch,
                                             encoder_name))
        fresh = pool.map(_worker_piece, todo, chunksize=2)
    else:
        embed = ScoreEmbedder(bundle.score, cfg.snippets, batch=batch)

        def local(item):
            try:
                return embed_piece(item[0], item[1], embed, cfg, int(hop_frames), dtype)
            except BadMidiError as e:
                return e

        fresh = map(local, todo)
    parts, skipped, n_snippets = [], [], 0
    try:
        bar = tqdm(total=len(files), desc="index", unit="piece", disable=not progress, dynamic_ncols=True)
        for i, (path, pid) in enumerate(files):
            if i in done:
                result = done[i]
            else:
                result = next(fresh)
                if cache is not None and not isinstance(result, BadMidiError):
                    cache.put(path, result)
            bar.update()
            if isinstance(result, BadMidiError):
                skipped.append({"file": str(path), "reason": str(result)})
                continue
            parts.append(result)
            n_snippets += len(result.embeddings)
            bar.set_postfix(snippets=n_snippets, skipped=len(skipped),
                            per_s=round(n_snippets / max(time.time() - t0, 1e-9)))
        bar.close()
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    if not parts:
        raise BadMidiError(f"none of the {len(files)} MIDI files could be read; first problem: "
                           f"{skipped[0]['reason']}")
    header = {
        "format": FORMAT, "format_version": FORMAT_VERSION,
        "index_fingerprint": cfg.index_fingerprint_for(encoder_name), "score_encoder": encoder_name,
        "bundle_fingerprint": cfg.fingerprint, "bundle": str(bundle.path),
        "embed_dim": int(cfg.embed_dim), "hop_frames": int(hop_frames), "frame_rate_hz": cfg.features.frame_rate_hz,
        "roll_frames": cfg.snippets.roll_frames, "sources": [str(p) for p in paths], "skipped": skipped,
        "resumed_pieces": len(done), "build_s": round(time.time() - t0, 1),
    }
    return assemble(parts, header)


def content_sha256(arrays: dict) -> str:
    """One checksum over every array of an index (name, dtype, shape and bytes; ARRAYS, then the notes if any)."""
    h = hashlib.sha256()
    for name in ARRAYS + tuple(n for n in NOTE_ARRAYS if n in arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"{name}:{a.dtype.str}:{a.shape};".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def save_index(index: Index, path) -> Path:
    """Write ``path`` atomically (a partial file never replaces a good one), with its arrays' sha256 in the header."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    names = ARRAYS + (NOTE_ARRAYS if index.has_notes else ())
    header = dict(index.header, sha256=content_sha256({name: getattr(index, name) for name in names}))
    with open(tmp, "wb") as f:  # a file object: numpy then does not append ".npz"
        extra = {} if index.ann is None else {"ann": index.ann}  # derived from the embeddings; not in the checksum
        np.savez(f, header=np.array(json.dumps(header)), **{name: getattr(index, name) for name in names}, **extra)
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
            if all(name in z.files for name in NOTE_ARRAYS):
                data.update({name: z[name] for name in NOTE_ARRAYS})
            if "ann" in z.files:
                data["ann"] = z["ann"]
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
    if want is not None and content_sha256({k: v for k, v in data.items() if k != "ann"}) != want:
        raise BundleError(f"{path}: its contents do not match the checksum in its header (changed or damaged "
                          "after it was built); rebuild it with `follower index build`")
    index = Index(header=header, **data)
    n, p = index.n_snippets, index.n_pieces
    if (index.embeddings.ndim != 2 or any(len(getattr(index, a)) != n for a in ("piece", "position_s",
                                                                                 "position_beats"))
            or len(index.piece_start) != p + 1 or index.piece_start[-1] != n or len(index.titles) != p):
        raise BundleError(f"{path}: its arrays disagree in length (damaged file); rebuild the index")
    if index.has_notes and (len(index.note_start) != p + 1 or index.note_start[-1] != len(index.note_onset_s)
                            or not len(index.note_onset_s) == len(index.note_end_s) == len(index.note_pitch)):
        raise BundleError(f"{path}: its note arrays disagree in length (damaged file); rebuild the index")
    return index
