"""Re-ranking candidate pieces by aligning everything heard since the music began.

The vote cells and the path verification (:mod:`follower.votes`, :mod:`follower.verify`)
look back a few seconds; what was heard before is thrown away. The re-ranker keeps it:
for each of a few *candidate* pieces (the first stage's best, so the cost is bounded by
the number of candidates, never by the corpus) it runs an online **local alignment**
(subsequence DTW with free start, as Smith-Waterman) of the stream of audio queries
against the piece's snippet grid, on the learned similarities.

Steps. The piece's snippets lie one ``cell_s`` (0.2 s) apart; an alignment step is the
mean of the ``per_step`` audio queries (4 at 50 ms) that cover one cell of music at the
written tempo. A path moves 1 or 2 cells per step, or stays, but never stays twice in a
row: its tempo lies in [0.5, 2] of the written tempo, anywhere in the piece, and may
change along the way.

Score. Each step adds ``(z - offset_z) * step_s`` for the cell the path is on, ``z`` the
query's similarity with that snippet standardised against the whole index
(:meth:`follower.verify.PathVerifier.standardise`: 0 = a random snippet, 1 = one
standard deviation above). A path may start anywhere with nothing (local alignment),
so a piece's score is the best sum over the paths ending now, in z-seconds: it grows
by about ``z - offset_z`` per second while the music goes on matching the piece, and a
random alignment drifts down by ``offset_z`` per second, so wrong pieces stay low.
Evidence thus accumulates over everything heard, with tempo freedom, instead of
expiring with a window. Pauses (no query) do not step.

Note templates (optional). With a :class:`follower.note_evidence.TemplateScorer`, every
candidate is also aligned, the same way, against its notes' harmonic templates on the
audio's 0.2 s frame cells (:meth:`Reranker.add_frame`), and the ranking orders by
``embedding score + template_weight * template score``. A newcomer's templates are
built, and aligned over the audio cells kept so far, on a background thread, and
collected at the next cell step, which aligns its own cell; until then it ranks by its
embedding score.
The calibrated lock (:mod:`follower.confidence`) reads these scores: its shipped fit is
for the engine's weight, so another weight needs a refit (``python -m
studies.lock_calibration``).

History. A piece that enters the candidates late is aligned over the steps kept since
the last reset (up to ``history_s`` of voting audio), so its score is what it would have
been had it been a candidate from the start. The lock policy (:mod:`follower.policy`)
decides what a lead in this ranking is worth.
"""

from __future__ import annotations

from concurrent.futures import Future
from dataclasses import dataclass

import numba
import numpy as np

from .note_evidence import standardised_cosines
from .npsum import pairwise_sum
from .same_notes import same_notes


@numba.njit(cache=True, fastmath=True, nogil=True)
def _align(z, offset, weight, t_first, score, origin, best_out):
    """Advance one piece's alignment over the query rows of ``z`` (steps x sub-cells), in place.

    ``score[0, j]`` / ``score[1, j]``: the best path score ending on sub-cell ``j`` having
    arrived by a move / by staying; ``origin[k, j]`` = (step, sub-cell) where that path
    began. ``t_first`` is the step number of ``z[0]``. ``best_out`` receives (score,
    sub-cell, start step, start sub-cell) of the best path ending at the last step.
    Sub-cells are updated from the last to the first, so each reads its predecessors'
    (lower sub-cells') values of the previous step before they are overwritten.
    """
    n = score.shape[1]
    for t in range(z.shape[0]):
        for j in range(n - 1, -1, -1):
            s = (z[t, j] - offset) * weight
            # stay on j only after a move (never twice in a row: tempo >= 0.5)
            score[1, j] = s + score[0, j]
            origin[1, j, 0] = origin[0, j, 0]
            origin[1, j, 1] = origin[0, j, 1]
            # arrive by a move of 1 or 2 sub-cells, from a move or a stay, or start here
            best, ot, oj = 0.0, t_first + t, j
            for d in (1, 2):
                if j >= d:
                    for k in (0, 1):
                        if score[k, j - d] > best:
                            best, ot, oj = score[k, j - d], origin[k, j - d, 0], origin[k, j - d, 1]
            score[0, j] = s + best
            origin[0, j, 0] = ot
            origin[0, j, 1] = oj
    best, bj, bk = -np.inf, 0, 0
    for k in (0, 1):
        for j in range(n):
            if score[k, j] > best:
                best, bj, bk = score[k, j], j, k
    best_out[0] = best
    best_out[1] = bj
    best_out[2] = origin[bk, bj, 0]
    best_out[3] = origin[bk, bj, 1]


@numba.njit(cache=True, nogil=True)  # no fastmath: numpy's order of additions (follower.npsum)
def _mean_dot(E, rows_a, rows_b):
    """``float32(np.mean(np.sum(E[rows_a] * E[rows_b], axis=1)))``, bit for bit, without the copies."""
    m, d = len(rows_a), E.shape[1]
    prod = np.empty(d, np.float32)
    sums = np.empty(m, np.float32)
    for r in range(m):
        for c in range(d):
            prod[c] = np.float32(E[rows_a[r], c] * E[rows_b[r], c])
        sums[r] = pairwise_sum(prod, 0, d)
    return np.float32(pairwise_sum(sums, 0, m) / np.float32(m))


@numba.njit(cache=True, nogil=True)
def _path_rows(start, n, j, tempo, out):
    """``start + clip(j - round(arange(len(out)) * tempo), 0, n - 1)`` (round half to even, as numpy)."""
    for i in range(len(out)):
        out[i] = start + min(max(j - np.int64(np.rint(i * tempo)), 0), n - 1)


# dropped candidates kept to come back as they were (follower.rerank.Reranker._back): the pool's
# capacity (8) several times over; each is two arrays of its piece's cells
DROPPED_KEPT = 32
# ... if they missed at most this many alignment steps (a step at a time costs more than a newcomer's
# alignment over the whole history once there are many)
BACK_STEPS = 10

# two candidates hold the same music when their scores are this close and the snippets
# along the ends of their best paths are this alike (a re-voiced or transposed setting is
# far below it: identical notes give ~1.0, another chorale 0.4), or their notes along the
# paths are the same (follower.same_notes: a re-quantised copy's snippets differ more)
SAME_SCORE = 0.9
SAME_CELLS = 10
SAME_COSINE = 0.98


@dataclass
class Candidate:
    """One piece's alignment state and its best path now."""

    piece: int
    score: np.ndarray        # (2, n_cells): best path score ending on each cell, by a move / a stay
    origin: np.ndarray       # (2, n_cells, 2): (step, cell) where each of those paths began
    best: np.ndarray         # (4,): score, cell, start step, start cell of the best path now
    notes: "Candidate | None" = None  # the same alignment against the piece's note templates
    notes_pending: "Future | None" = None  # its template alignment so far, being made on the template thread


class Reranker:
    """Online local alignment of the query stream against a bounded set of candidate pieces."""

    def __init__(self, index, search: np.ndarray, standardise, *, update_s: float, candidates: int = 8,
                 offset_z: float = 1.0, history_s: float = 30.0, max_new: int = 2,
                 templates=None, template_weight: float = 0.0, template_offset_z: float = 1.0):
        self.index = index
        self._E = search
        self._standardise = standardise
        self.capacity = candidates
        self.offset_z = offset_z
        self.max_new = max_new
        self.cell_s = float(index.cell_s)
        # queries per alignment step: a step is one cell of music at the written tempo
        self.per_step = max(1, int(round(self.cell_s / update_s)))
        self.step_s = self.per_step * update_s               # audio per step
        h = max(1, int(round(history_s / self.step_s)))
        self._q = np.zeros((h, search.shape[1]), np.float64)  # mean scaled query of each step, ring buffer
        self._bias = np.zeros(h, np.float64)
        self._templates = templates if template_weight > 0 else None
        self.template_weight = template_weight
        self.template_offset_z = template_offset_z
        if self._templates is not None:
            from .note_evidence import CELL_FRAMES
            self._cell_frames = CELL_FRAMES
            self._cells = np.zeros((h, templates.cells(0).shape[1]), np.float64)  # unit audio cells, ring
            self._cell_mean = np.zeros(h)
            self._cell_sd = np.ones(h)
        self.reset()

    def reset(self) -> None:
        self.steps = 0                   # alignment steps since the reset
        self._pool: dict = {}
        # candidates dropped from the pool: piece -> (candidate, steps, cell steps) when dropped
        self._dropped: dict = {}
        self.duplicates: dict = {}       # piece left out of the ranking -> the candidate it duplicates
        self._acc_q = np.zeros(self._q.shape[1])
        self._acc_bias = 0.0
        self._acc_n = 0
        if self._templates is not None:
            self.cell_steps = 0                       # template alignment steps since the reset
            self._frames = np.zeros((self._cell_frames, self._cells.shape[1]))
            self._frames_loud = np.zeros(self._cell_frames, bool)
            self._frames_n = 0

    def warm_up(self) -> None:
        """Compile (or load) the alignment kernel before audio starts."""
        cand = Candidate(0, np.full((2, 3), -np.inf), np.zeros((2, 3, 2), np.int64), np.zeros(4))
        _align(np.zeros((2, 3)), self.offset_z, self.step_s, 0, cand.score, cand.origin, cand.best)
        _mean_dot(self._E, np.zeros(SAME_CELLS, np.int64), np.zeros(SAME_CELLS, np.int64))
        _path_rows(0, 1, 0, 1.0, np.zeros(SAME_CELLS, np.int64))
        if self.index.has_notes:  # the note test's kernel, for the index's dtypes
            same_notes(self.index.notes(0), (1.0, 1.0), self.index.notes(0), (1.0, 1.0), 8.0)

    # -- the query stream -------------------------------------------------------------
    def add(self, q: np.ndarray, hops: int = 1, standard: tuple[float, float] | None = None) -> None:
        """One audio query; every ``per_step`` queries, their mean advances every candidate by a step.

        z-scores are linear in the scaled query, so the mean query's z-scores are the mean of
        the queries' (consecutive windows overlap almost entirely: averaging loses nothing
        the alignment could use, and costs a step per cell instead of per query).
        ``hops``: the updates this query stands for -- more than one when the runner skipped
        updates to keep up with the audio (follower.pacing): it counts that many times, so
        a step still covers one cell of music and the paths' tempi stay true.
        ``standard``: the query's (scale, bias) where the caller has them already.
        """
        scale, bias = standard if standard is not None else self._standardise(q)
        self._acc_q += q * (scale * hops)
        self._acc_bias += bias * hops
        self._acc_n += hops
        while self._acc_n >= self.per_step:
            mean_q, mean_bias = self._acc_q / self._acc_n, self._acc_bias / self._acc_n
            i = self.steps % len(self._q)
            self._q[i], self._bias[i] = mean_q, mean_bias
            for cand in self._pool.values():
                z = self._z(cand.piece, self._q[i:i + 1], self._bias[i:i + 1])
                _align(z, self.offset_z, self.step_s, self.steps, cand.score, cand.origin, cand.best)
            self.steps += 1
            rest = self._acc_n - self.per_step  # what a long skip leaves over counts towards the next step
            self._acc_q, self._acc_bias, self._acc_n = mean_q * rest, mean_bias * rest, rest

    def add_frame(self, frame: np.ndarray, loud: bool) -> None:
        """One spectrogram frame; every cell of frames, a sounding cell advances every candidate's
        template alignment by a step (no-op without templates)."""
        if self._templates is None:
            return
        from .note_evidence import cell_means
        self._frames[self._frames_n] = frame
        self._frames_loud[self._frames_n] = loud
        self._frames_n += 1
        if self._frames_n < self._cell_frames:
            return
        self._frames_n = 0
        cell, steps = cell_means(self._frames, self._frames_loud, self._cell_frames)
        if not steps[0]:
            return
        i = self.cell_steps % len(self._cells)
        self._cells[i] = cell[0]
        mean, sd = self._templates.standardise(cell)
        self._cell_mean[i], self._cell_sd[i] = mean[0], sd[0]
        self.cell_steps += 1
        for cand in self._pool.values():
            if cand.notes_pending is not None:  # aligned meanwhile over the cells before this one
                cand.notes = self._templates.collect(cand.piece, cand.notes_pending)
                cand.notes_pending = None
            self._align_notes(cand, [i], self.cell_steps - 1)

    def _catch_up_later(self, piece: int):
        """Align ``piece``'s templates, on the template thread, over the audio cells that will still be
        kept at the next cell step (the newest ``history - 1`` of those kept now); the next cell step
        collects the result and aligns its own cell, as for every candidate (:meth:`add_frame`)."""
        h = len(self._cells)
        first = max(self.cell_steps + 1 - h, 0)
        ring = np.arange(first, self.cell_steps) % h
        audio, mean, sd = self._cells[ring], self._cell_mean[ring], self._cell_sd[ring]  # copies
        offset, cell_s = self.template_offset_z, self.cell_s

        def job(cells):
            m = len(cells)
            notes = Candidate(piece, np.full((2, m), -np.inf), np.zeros((2, m, 2), np.int64),
                              np.array([0.0, 0.0, first, 0.0]))
            if len(audio):
                z = standardised_cosines(audio, cells, mean, sd)  # as TemplateScorer.z
                _align(z, offset, cell_s, first, notes.score, notes.origin, notes.best)
            return notes

        return self._templates.later(piece, job)

    def _align_notes(self, cand: Candidate, ring, first: int) -> None:
        z = self._templates.z(self._cells[ring], cand.piece, self._cell_mean[ring], self._cell_sd[ring])
        n = cand.notes
        _align(z, self.template_offset_z, self.cell_s, first, n.score, n.origin, n.best)

    def _z(self, piece: int, q: np.ndarray, bias: np.ndarray) -> np.ndarray:
        """(steps, n_cells) z-scores of mean scaled queries with the piece's snippets.

        The product in float32, as the search matrix is stored: with the float64 queries numpy
        copied the piece's rows to float64 first, 0.9 ms per step for a 3,000-snippet piece against
        0.03 ms (docs/improvements.md (cc)); the z-scores stay float64 for the alignment's sums."""
        return (q.astype(np.float32) @ self._E[self.index.rows(piece)].T) - bias[:, None]

    def _history(self) -> tuple[np.ndarray, int]:
        """Ring positions of the kept steps (oldest first), and the step number of the first."""
        n = min(self.steps, len(self._q))
        first = self.steps - n
        return np.arange(first, self.steps) % len(self._q), first

    # -- the candidates ---------------------------------------------------------------
    def consider(self, pieces, *, keep=None) -> None:
        """Make ``pieces`` (best first) candidates, aligning a newcomer over the kept history (at
        most ``max_new`` newcomers per call); beyond ``capacity``, the lowest-scoring candidates
        other than ``keep`` are dropped."""
        new = [int(p) for p in dict.fromkeys(pieces) if int(p) not in self._pool][: self.max_new]
        fresh = [p for p in new if not self._back(p)]
        if fresh and self.steps:
            idx, first = self._history()
        for p in fresh:
            rows = self.index.rows(p)
            n = rows.stop - rows.start
            cand = Candidate(p, np.full((2, n), -np.inf), np.zeros((2, n, 2), np.int64),
                             np.array([0.0, 0.0, self.steps, 0.0]))
            if self.steps:
                _align(self._z(p, self._q[idx], self._bias[idx]), self.offset_z, self.step_s, first,
                       cand.score, cand.origin, cand.best)
            if self._templates is not None:  # built and caught up off the update thread, collected at the next cell
                cand.notes_pending = self._catch_up_later(p)
            self._pool[p] = cand
        # a newcomer still waiting for its templates is not judged on half its evidence, nor counted:
        # the pool holds ``capacity`` judged candidates, plus the newcomers of the last cell (at most
        # max_new an update); counting them would drop judged ones, the leader too, to make room
        judged = [p for p in self._pool if self._pool[p].notes_pending is None]
        if len(judged) > self.capacity:
            ranked = sorted(judged, key=lambda p: self._score(self._pool[p]))
            for p in ranked[: len(judged) - self.capacity]:
                if p != keep:
                    cell_steps = self.cell_steps if self._templates is not None else 0
                    self._dropped[p] = (self._pool.pop(p), self.steps, cell_steps)  # (never there: see _back)
                    while len(self._dropped) > DROPPED_KEPT:  # the least recently dropped go first
                        del self._dropped[next(iter(self._dropped))]

    def _back(self, piece: int) -> bool:
        """Put a candidate dropped a moment ago back in the pool as it was, advanced over the steps (and
        note-template cells) it missed: the alignment it would have had had it stayed. Like a
        newcomer, it is judged from the next note-template cell on (where the index has notes).
        False where it was not dropped, or where that would not be cheap (it is then aligned anew
        as a newcomer).

        Votes bring the same few pieces back again and again at the edge of the pool (at 10^6
        snippets four of five newcomers had left it moments before): aligning each anew over the
        whole history cost an update up to 2 ms, and the pieces' note templates as much again on
        the template thread."""
        saved = self._dropped.pop(piece, None)
        if saved is None:
            return False
        cand, steps, cell_steps = saved
        # only where that is cheap: a few steps missed, and the piece's template cells still at hand
        # (building them is the template thread's work, as for a newcomer)
        if self.steps - steps > min(BACK_STEPS, len(self._q)) or (
                self._templates is not None and (cand.notes is None or not self._templates.cached(piece)
                                                 or self.cell_steps - cell_steps > min(BACK_STEPS, len(self._cells)))):
            return False
        # a step at a time, as the pool's candidates were advanced (the products of several at once
        # would round differently)
        for k in range(steps, self.steps):
            i = k % len(self._q)
            _align(self._z(piece, self._q[i:i + 1], self._bias[i:i + 1]), self.offset_z, self.step_s, k,
                   cand.score, cand.origin, cand.best)
        if self._templates is not None:
            for k in range(cell_steps, self.cell_steps):
                self._align_notes(cand, [k % len(self._cells)], k)
            # judged from the next cell on, as a newcomer is: its template alignment handed over as a
            # newcomer's comes from the template thread
            done = Future()
            done.set_result((self._templates.cells(piece), cand.notes))
            cand.notes, cand.notes_pending = None, done
        self._pool[piece] = cand
        return True

    def ranking(self) -> list[tuple[int, float, float, float]]:
        """(piece, score in z-seconds, position of the newest query's window centre (s), tempo), best first.

        The tempo is the best path's average since it began (1.0 for a path one step old).
        A candidate whose path plays the same music as a better candidate's (a corpus
        can hold one harmonisation under two names, or a re-quantised copy) is left out: it is the same
        evidence, and would otherwise tie with the leader for ever
        (:attr:`duplicates` names it).
        """
        out = []
        for cand in self._pool.values():
            score, j, t0, j0 = cand.best
            steps = self.steps - 1 - t0
            # MIDI seconds moved over audio seconds heard, along the best path
            tempo = float((j - j0) * self.cell_s / (steps * self.step_s)) if steps > 0 else 1.0
            # the last step averaged queries centred (per_step - 1) / 2 queries before its last
            # one; the queries since then are newer still
            behind_s = ((self.per_step - 1) / 2 + self._acc_n) * self.step_s / self.per_step
            position_s = float(self.index.position_s[self.index.rows(cand.piece).start] + j * self.cell_s
                               + tempo * behind_s)
            out.append((cand.piece, max(self._score(cand), 0.0), position_s, tempo))
        out.sort(key=lambda c: -c[1])
        kept, self.duplicates = [], {}
        ends: dict = {}  # piece -> rows of the end of its best path (each computed once per ranking)
        for c in out:
            # the notes are compared with the leader's only (whose twins the lock policy must know;
            # at most one test per candidate and update), and not while it has nothing to its name
            twin = next((k for k in kept if c[1] >= SAME_SCORE * k[1]
                         and self._same_music(k, c, ends, notes=k is kept[0] and k[1] > 0)), None)
            if twin is None:
                kept.append(c)
            else:
                self.duplicates[c[0]] = twin[0]
        return kept

    def _score(self, cand: Candidate) -> float:
        """The ranking's score (z-s): the embedding alignment's, plus the weighted template alignment's."""
        s = float(cand.best[0])  # -inf for a path not yet started: such candidates are dropped first
        if cand.notes is not None:
            s = max(s, 0.0) + self.template_weight * max(float(cand.notes.best[0]), 0.0)
        elif cand.notes_pending is not None:
            s = max(s, 0.0)
        return s

    def _path_end(self, c) -> np.ndarray:
        """Index rows of the last ``SAME_CELLS`` snippets along candidate ``c``'s best path."""
        piece, _, position_s, tempo = c
        rows = self.index.rows(piece)
        j = int(round((position_s - self.index.position_s[rows.start]) / self.cell_s))
        back = np.empty(SAME_CELLS, np.int64)
        _path_rows(rows.start, rows.stop - rows.start, j, max(tempo, 0.5), back)
        return back

    def _same_music(self, a, b, ends: dict, notes: bool = True) -> bool:
        """Do both best paths play the same music: alike snippets along their last ``SAME_CELLS``
        cells, or (``notes``, where the index carries them) the same notes over the audio both aligned?"""
        for c in (a, b):
            if c[0] not in ends:
                ends[c[0]] = self._path_end(c)
        if float(_mean_dot(self._E, ends[a[0]], ends[b[0]])) >= SAME_COSINE:
            return True
        if not (notes and self.index.has_notes):
            return False
        # a re-quantised copy (the roll sets' chorales) has other snippets than the original, but its notes
        heard_s = min(self.steps - 1 - self._pool[c[0]].best[2] for c in (a, b)) * self.step_s
        return same_notes(self.index.notes(a[0]), (a[2], a[3]), self.index.notes(b[0]), (b[2], b[3]), heard_s,
                          slack_s=self.cell_s)
