"""Note-template evidence for the re-ranking: audio cells against each candidate's notes.

The re-ranker (:mod:`follower.rerank`) aligns learned 2.1 s embeddings. The index also
carries every piece's notes; the fine aligner turns them into harmonic templates seen
through the front end's own filterbank (:func:`follower.aligner.score_templates`). Here
the same templates, pooled to the re-ranker's 0.2 s cells, give a second, independent
view of "is this the piece": the audio's frames, pooled likewise (silent frames left
out; a cell with fewer than two sounding frames does not step), are compared with every
template cell of a candidate by cosine, standardised against the cosines of the same
audio cell with 512 template cells of random excerpts of random pieces (0 = chance), and
aligned exactly as the embeddings are (local alignment, free start, tempo 0.5-2x).

Cost: one (template cells x bands) product per candidate per 0.2 s cell, plus the null
set's; templates are built once per piece that becomes a candidate (bounded by the
candidates, never the corpus), on a background thread (:meth:`TemplateScorer.later`):
the longest piano piece's take ~0.1 s, too long for an update. The same thread aligns a
newcomer over the audio cells kept so far (a (kept cells x template cells) product: up
to ~8 ms for a long piece, where a step is ~0.05 ms). The re-ranker collects both at the
next cell, 0.2 s of audio later, so the result never depends on the thread's timing.
``studies.template_rerank`` measured what it is worth.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future, ThreadPoolExecutor

import numba
import numpy as np

from .npsum import pairwise_sum
from .recent import recently_used

CELL_FRAMES = 4          # 50 ms frames per 0.2 s cell
MIN_SOUNDING = 2         # sounding frames a cell needs to step


def cell_means(frames: np.ndarray, loud: np.ndarray, per: int = CELL_FRAMES):
    """(cells, bins) unit means of each ``per`` frames' sounding frames, and which cells step."""
    n = len(frames) // per
    f = frames[: n * per].reshape(n, per, -1).astype(np.float64)
    w = loud[: n * per].reshape(n, per).astype(np.float64)
    m = np.einsum("cf,cfb->cb", w, f)
    norm = np.linalg.norm(m, axis=1, keepdims=True)
    return m / np.maximum(norm, 1e-9), w.sum(axis=1) >= MIN_SOUNDING


def template_cells(templates: np.ndarray, per: int = CELL_FRAMES) -> np.ndarray:
    """A piece's 50 ms templates as unit 0.2 s cells (a trailing partial cell kept, silence zero).

    float32: every cell step reads all of every candidate's cells (a long piano piece's ~6,600), and
    in float64 that product was memory-bound at three times the cost (docs/improvements.md (cc))."""
    return _pooled_unit_cells(np.ascontiguousarray(templates), per)


# No fastmath: the numpy expression it replaced (kept in tests/follower/test_exact_kernels.py) added
# each cell's frames in turn and its squares in numpy's pairwise order (follower.npsum)
@numba.njit(cache=True, nogil=True)
def _pooled_unit_cells(templates, per):
    """:func:`template_cells`: each ``per`` frames summed in float64, scaled to unit length, as float32."""
    n_frames, b = templates.shape
    n = -(-n_frames // per)
    out = np.zeros((n, b), np.float32)
    m = np.empty(b)
    sq = np.empty(b)
    for i in range(n):
        for c in range(b):
            m[c] = np.float64(templates[i * per, c])
        for k in range(1, per):
            f = i * per + k
            for c in range(b):
                m[c] = m[c] + (np.float64(templates[f, c]) if f < n_frames else 0.0)
        for c in range(b):
            sq[c] = m[c] * m[c]
        norm = np.sqrt(pairwise_sum(sq, 0, b))
        if norm > 0:
            d = max(norm, 1e-9)
            for c in range(b):
                out[i, c] = np.float32(m[c] / d)
    return out


def standardised_cosines(audio_cells: np.ndarray, cells: np.ndarray, mean: np.ndarray, sd: np.ndarray) -> np.ndarray:
    """(audio cells, template cells) float64 z-scores ``(cos - mean) / sd``; the product in float32, as
    the template cells are stored (a float64 audio operand would make numpy copy them to float64)."""
    return (np.asarray(audio_cells, np.float32) @ cells.T - mean[:, None]) / sd[:, None]


# template cells kept for this many recently used pieces: well above the re-ranking's candidates (8)
PIECES_KEPT = 32
# ... and, shared by every engine over one index, the most recently built up to this many bytes
BUILT_BYTES = 64 << 20
# the 50 ms templates built ahead for the pieces a lock may take next (the re-rankings' leaders)
AHEAD_KEPT = 4
# the re-ranking's note templates (and their null set) weigh each partial harmonic_decay ** (h - 1): the
# lock calibration (follower.confidence) was fitted on their evidence with 0.6. The fine aligner's are
# FineConfig's (0.7 since 2026-12-06: real low notes sound their fundamental weaker); with 0.7 here too,
# stable identification on validation renders came later on 17 items and sooner on 6 of 106
# (docs/improvements.md (eee))
RERANK_HARMONIC_DECAY = 0.6


def rerank_template_config():
    """The :class:`follower.aligner.FineConfig` the re-ranking's note templates are built with."""
    from .aligner import FineConfig

    return FineConfig(harmonic_decay=RERANK_HARMONIC_DECAY)


class BuiltCells:
    """Pieces' template cells as built, shared by every engine over one index (:func:`built_cells`).

    A piece's cells depend on its notes alone, and engines over one index meet the same pieces: the
    two of a pair (follower.two_speeds) take mostly the same candidates, and the files replayed in
    one process (``follower replay a.wav b.wav ...``) the same repertoire. Built once each, not once
    per engine. Any thread may ask (each engine's template thread, or its update thread); a piece
    being built is waited for, not built twice. The most recently asked for are kept, up to
    ``budget_bytes``; each engine keeps its own recently used ones besides (:data:`PIECES_KEPT`).

    ``make(piece)`` gives the piece's 50 ms templates (:func:`follower.aligner.score_templates`), which
    the cells pool. A lock's fine aligner needs the piece's templates at its own settings
    (``make_for(piece, fine_config)``; by default ``make``'s), and building a long piece's on the
    update thread held that update up (a piano piece of 8 minutes: 34 ms; of 22: 127 ms): the engines
    have the re-ranking's leader's built :meth:`ahead`, on their template thread, and a lock takes them
    from :meth:`templates` where they are ready."""

    def __init__(self, make, budget_bytes: int = BUILT_BYTES, make_for=None):
        self._make, self._budget = make, int(budget_bytes)
        self._make_for = make_for if make_for is not None else (lambda piece, config: make(piece))
        self._lock = threading.Lock()
        self._cells: dict = {}     # piece -> cells, least recently asked for first
        self._bytes = 0
        self._building: dict = {}  # piece -> Future of its cells, while a thread builds them
        self._ahead: dict = {}     # piece -> Future of its 50 ms templates, the least recently asked first
        self.builds = 0

    def get(self, piece: int) -> np.ndarray:
        with self._lock:
            cells = self._cells.pop(piece, None)
            if cells is not None:
                self._cells[piece] = cells  # now the most recent
                return cells
            waiting = self._building.get(piece)
            if waiting is None:
                self._building[piece] = mine = Future()
        if waiting is not None:
            return waiting.result()
        try:
            cells = template_cells(self._make(piece))
        except BaseException as e:
            with self._lock:
                del self._building[piece]
            mine.set_exception(e)
            raise
        with self._lock:
            del self._building[piece]
            self.builds += 1
            self._cells[piece] = cells
            self._bytes += cells.nbytes
            while self._bytes > self._budget and len(self._cells) > 1:
                self._bytes -= self._cells.pop(next(iter(self._cells))).nbytes
        mine.set_result(cells)
        return cells

    def ahead(self, piece: int, submit, config=None) -> None:
        """Have the piece's 50 ms templates at the fine aligner's settings ``config`` (a
        :class:`follower.aligner.FineConfig`; None: ``make``'s) built by ``submit(job) -> Future`` (a template
        thread), unless they are built or being built; the :data:`AHEAD_KEPT` most recently asked for are kept."""
        key = _ahead_key(piece, config)
        with self._lock:
            done = self._ahead.pop(key, None)
            self._ahead[key] = done if done is not None else submit(
                (lambda: self._make(piece)) if config is None else (lambda: self._make_for(piece, config)))
            while len(self._ahead) > AHEAD_KEPT:
                del self._ahead[next(iter(self._ahead))]

    def templates(self, piece: int, config=None) -> np.ndarray | None:
        """The piece's 50 ms templates at ``config``'s settings where :meth:`ahead` has them ready (never
        waits, never builds)."""
        with self._lock:
            future = self._ahead.get(_ahead_key(piece, config))
        if future is None or not future.done() or future.exception() is not None:
            return None
        return future.result()


def _ahead_key(piece: int, config) -> tuple:
    from .aligner import template_key

    return piece, (None if config is None else template_key(config))


def built_cells(index, features) -> BuiltCells:
    """The :class:`BuiltCells` of ``index`` for a front end (made on first use, kept with the index)."""
    from .aligner import score_templates

    rerank = rerank_template_config()
    return index.kept(("built_cells", features), lambda: BuiltCells(
        lambda p: score_templates(*index.notes(p), features, rerank),
        make_for=lambda p, config: score_templates(*index.notes(p), features, config)))


class TemplateScorer:
    """Per-piece template cells (built on first use, cached) and a random null set."""

    def __init__(self, index, features, *, null_pieces: int = 64, per_piece: int = 8, excerpt_s: float = 10.0,
                 seed: int = 0):
        self._start_cache()
        self._built = built_cells(index, features)
        self._make = self._built.get
        # the null: template cells of random excerpts of random pieces (built from the excerpt's
        # notes only, so a corpus of long pieces costs no more at start than one of chorales); seeded,
        # so made once per index and kept with it for every engine over it
        self._null = index.kept(("template_null", features, null_pieces, per_piece, excerpt_s, seed),
                                lambda: self._null_cells(index, features, null_pieces, per_piece, excerpt_s, seed))

    @staticmethod
    def _null_cells(index, features, null_pieces: int, per_piece: int, excerpt_s: float, seed: int) -> np.ndarray:
        from .aligner import score_templates

        rerank = rerank_template_config()
        rng = np.random.default_rng(seed)
        rows = []
        for p in rng.choice(index.n_pieces, null_pieces):
            onset, end, pitch = index.notes(int(p))
            if not len(onset):
                continue
            t0 = rng.uniform(0.0, max(float(onset.max()) - excerpt_s, 0.0))
            keep = (onset >= t0) & (onset < t0 + excerpt_s)
            if not keep.any():
                continue
            c = template_cells(score_templates(onset[keep] - t0, end[keep] - t0, pitch[keep], features, rerank))
            c = c[np.linalg.norm(c, axis=1) > 0]
            rows += list(c[rng.choice(len(c), min(per_piece, len(c)), replace=False)])
        return np.array(rows, np.float64)

    def _start_cache(self) -> None:
        self._cells: dict = {}  # piece -> template cells, least recently used first
        self._built: BuiltCells | None = None  # the index's built cells (none for a scorer made without one)
        self._builder: ThreadPoolExecutor | None = None  # started by the first :meth:`later`

    def cells(self, piece: int) -> np.ndarray:
        """The piece's template cells: cached (from :meth:`collect`), or built now.

        The ``PIECES_KEPT`` most recently used pieces are kept (least recent dropped first): keeping
        every candidate ever seen grew a long run by each new one (a 20-minute soak with music outside
        the corpus: +5 MB); a dropped piece is rebuilt the same if it comes back."""
        return recently_used(self._cells, piece, lambda: self._make(piece), keep=PIECES_KEPT)

    def cached(self, piece: int) -> bool:
        """Whether the piece's template cells are at hand (:meth:`cells` would not build them)."""
        return piece in self._cells

    def templates_ahead(self, piece: int, config) -> None:
        """Build the piece's 50 ms templates at the fine aligner's settings ``config`` on the template thread,
        for a lock's fine aligner (:meth:`BuiltCells.templates`)."""
        if self._built is not None:
            self._built.ahead(piece, lambda job: self._thread().submit(job), config)

    def templates(self, piece: int, config) -> np.ndarray | None:
        """The piece's 50 ms templates at ``config``'s settings where :meth:`templates_ahead` has them ready,
        else None."""
        return self._built.templates(piece, config) if self._built is not None else None

    def _thread(self) -> ThreadPoolExecutor:
        if self._builder is None:  # one thread: jobs queue behind each other, never the update
            self._builder = ThreadPoolExecutor(max_workers=1, thread_name_prefix="note-templates")
        return self._builder

    def later(self, piece: int, job) -> Future:
        """Run ``job(cells)`` on the template thread with the piece's template cells (the cached ones,
        or built there); the future gives ``(cells, job's result)``, for :meth:`collect`."""
        cached = self._cells.get(piece)  # read here, on the update thread that owns the cache

        def run():
            cells = cached if cached is not None else self._make(piece)
            return cells, job(cells)

        return self._thread().submit(run)

    def collect(self, piece: int, future: Future):
        """The result of a :meth:`later` job (waiting for it); its cells join the cache as just used."""
        cells, result = future.result()
        recently_used(self._cells, piece, lambda: cells, keep=PIECES_KEPT)
        return result

    def standardise(self, audio_cells: np.ndarray):
        """(mean, sd) of each audio cell's cosines with the null set: z = (cos - mean) / sd."""
        null = audio_cells @ self._null.T
        return null.mean(axis=1), np.maximum(null.std(axis=1), 1e-6)

    def z(self, audio_cells: np.ndarray, piece: int, mean=None, sd=None) -> np.ndarray:
        """(cells, piece cells) standardised cosines: 0 = a random template, 1 = one sd above."""
        if mean is None:
            mean, sd = self.standardise(audio_cells)
        return standardised_cosines(audio_cells, self.cells(piece), mean, sd)
