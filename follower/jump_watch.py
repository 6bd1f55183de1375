"""Has the player jumped? The newest frames aligned against the locked piece's notes.

The embedding path hears a jump (a repeat taken, a skip back) only once its 2.1 s window
is mostly past it: its window centre crosses the jump a second after it, and its path
needs most of another second to move (1.8 s after the jump, median, on validation renders).
Meanwhile the fine aligner keeps following the old place, whose notes are no longer
being played, and every update until the coarse path moves reports it.

:class:`JumpWatch` compares, every update, the last ``frames`` sounding frames with the
note templates of the piece within ``span_s`` of the aligner's place (centred cosines, as
the fine aligner's emission), by a Viterbi at the tempo with the aligner's own step
kernel. A path may begin at any of those frames, bringing what the aligner's own path
(its place at each frame, as it went: waiting where a chord was held; each frame's best
cosine within ``match_window_s`` of it) gained before: only the frames since a jump decide, however
few. Where a path ending further than ``far_s`` from the aligner's place has beaten the
aligner's own by ``margin`` summed cosine for ``updates`` updates in a row, at one place
advancing with the music, the player is there, and the engine moves the aligner to it; not
while the aligner has advanced less than ``moving`` times the tempo over those frames (a held
chord matches every place the piece writes it long better than the aligner's own wait).
Of places within ``tie`` of the best (music written out twice) the nearest is taken, as
the tracker's jumps take it (follower.tracker, ``jump_local_s``), and :attr:`JumpWatch.tied`
says so. A literal repeat of where the aligner is never moves it (both copies match
alike: no margin).

A lead between ``confirm_margin`` and ``margin`` is settled by a second view, the engine's
``confirm`` (:meth:`follower.engine.Engine._tail_place`): the newest audio embedded alone names a
place of the piece; where the frames' paths also lead there by ``confirm_margin``, that place
counts as this update's far place (and of two copies of the notes it is the one named, not the
nearer). Frames of 50 ms tell neighbouring chorale chords apart by little, so the frames alone
reach ``margin`` a second or more after many jumps; two views rarely agree on a wrong place.

Cost per update: one (2 ``span_s`` of score frames x bands) product for the newest frame
(the older frames' rows are kept) and ``frames`` x 5 vector maxima over those score frames,
bounded by ``span_s``, not by the piece: a jump further than that is left to the coarse path.
The second view costs an embedding and a product with the piece's snippets, only in the
updates whose lead falls between the two margins (66 of 21,194 updates on validation renders).
"""

from __future__ import annotations

from collections import deque

import numba
import numpy as np


@numba.njit(cache=True, nogil=True)
def _paths(rows, owns, log_k, near):
    """The Viterbi of :meth:`JumpWatch.check` over ``rows`` (frames x score frames, oldest first).

    Returns, for every score frame, the best path's score ending there (a path begins at any frame,
    bringing the own path's gain before it), that path's own cosine sum and frame count since it
    began, and the own path's score: each frame's best cosine within ``near`` of ``owns`` (the
    aligner's place at that frame)."""
    m, n = rows.shape
    v = np.empty(n)
    seg_gain = np.empty(n)
    seg_n = np.empty(n)
    nv = np.empty(n)
    ng = np.empty(n)
    nn = np.empty(n)
    own_gain = 0.0
    for k in range(m):
        row = rows[k]
        if k == 0:
            for j in range(n):
                v[j] = row[j]
                seg_gain[j] = row[j]
                seg_n[j] = 1.0
        else:
            for j in range(n):
                best, src = -np.inf, j
                for d in range(min(len(log_k), j + 1)):
                    c = v[j - d] + log_k[d]
                    if c > best:
                        best, src = c, j - d
                # a far path may begin at any frame: the player jumped there, and what the own path
                # gained before is what it brings; so only the frames since the jump decide
                if own_gain >= best:
                    nv[j], ng[j], nn[j] = own_gain + row[j], row[j], 1.0
                else:
                    nv[j], ng[j], nn[j] = best + row[j], seg_gain[src] + row[j], seg_n[src] + 1.0
            v[:], seg_gain[:], seg_n[:] = nv, ng, nn
        lo, hi = max(owns[k] - near, 0), min(owns[k] + near + 1, n)
        if lo < hi:
            own_gain += row[lo:hi].max()
    return v, seg_gain, seg_n, own_gain


class JumpWatch:
    """Watches one piece (the aligner's templates) for the player being elsewhere."""

    def __init__(self, aligner, *, frames: int, margin: float, far_s: float, updates: int, span_s: float = 60.0,
                 min_cos: float = 0.5, same_place_s: float = 0.5, tie: float = 0.5, moving: float = 0.5,
                 confirm_margin: float = 0.0, confirm=None):
        self.aligner = aligner
        self.frames, self.margin, self.updates, self.tie = int(frames), float(margin), int(updates), float(tie)
        self.far = int(round(far_s * aligner.fps))
        self.span = int(round(span_s * aligner.fps))
        self.moving, self.min_cos = moving, min_cos
        self.near = int(round(aligner.config.match_window_s * aligner.fps))  # as the dispute rule's match()
        self.same_place = int(round(same_place_s * aligner.fps))
        self._rows: deque = deque(maxlen=self.frames)  # (engine frame number, aligner's frame, lo, cosines[lo:])
        self._run, self._last = 0, None  # updates in a row the same far place has won, and that place
        # at a move: the engine's frame count of the far path's first frame (where the player jumped); the
        # frames before it were played elsewhere (Engine._weigh_back)
        self.since_n = -1
        self._since_n = -1  # the same for this update's far place
        self.tied = False  # whether the newest far place had others as good (music written out twice)
        # a far path that beats the aligner's own by confirm_margin but not by margin counts where the
        # engine's second view agrees: ``confirm(own_s, tempo)`` is the place (score seconds of the newest
        # frame) the audio embedding of the newest frames names, if it names one far from ``own_s``
        self.confirm_margin = min(float(confirm_margin), self.margin) if confirm is not None and confirm_margin > 0 \
            else self.margin
        self.confirm = confirm

    @staticmethod
    def warm_up() -> None:
        """Compile (or load) the path kernel for the types :meth:`check` gives it."""
        _paths(np.zeros((2, 3), np.float32), np.zeros(2, np.int64), np.zeros(2), 1)

    def clear(self) -> None:
        self._rows.clear()
        self._run, self._last = 0, None

    def listen(self, frame: np.ndarray, loud: bool, frame_n: int, own_s: float) -> None:
        """Keep the cosines of a sounding frame (``frame_n``: the engine's count of frames) with the score
        frames within ``span_s`` of ``own_s``, the aligner's place for that frame."""
        if loud:
            own = min(max(int(own_s * self.aligner.fps), 0), self.aligner.n - 1)
            lo, hi = max(own - self.span, 0), min(own + self.span + 1, self.aligner.n)
            self._rows.append((frame_n, own, lo, self.aligner.emission_cosines(frame, lo, hi)))

    def check(self, own_s: float, tempo: float, frame_n: int) -> float | None:
        """The place (score seconds of the newest frame) the player has jumped to, or None.

        ``own_s``: the aligner's place of the newest frame; ``frame_n``: the engine's count of
        frames now (rows older than twice ``frames`` are not this passage's)."""
        j = self._far_place(own_s, tempo, frame_n)
        if j is None:
            self._run, self._last = 0, None
            return None
        same = self._last is not None and abs(j - self._last) <= self.same_place + self.aligner.config.max_step
        self._run = self._run + 1 if same else 1
        self._last = j
        if self._run < self.updates:
            return None
        # the frames so far were heard before the move, along the aligner's old path: they would ask to
        # move back
        self.clear()
        self.since_n = self._since_n
        return (j + 0.5) / self.aligner.fps

    def _far_place(self, own_s: float, tempo: float, frame_n: int) -> int | None:
        """The score frame of this update's far place (see the module docstring), or None."""
        recent = [row for row in self._rows if row[0] > frame_n - 2 * self.frames]
        counts = [n for n, _, _, _ in recent]  # (the engine's frame count of each row)
        kept = [(at, lo, r) for _, at, lo, r in recent]
        # the score frames every row has (they follow the aligner's place, which moves with the music)
        base = max((lo for _, lo, _ in kept), default=0)
        end = min((lo + len(r) for _, lo, r in kept), default=0)
        own = int(own_s * self.aligner.fps) - base  # (score frames from base on)
        if len(kept) < self.frames or end - base <= 2 * self.far or not 0 <= own < end - base:
            return None
        rows = [r[base - lo:end - lo] for _, lo, r in kept]
        owns = [at - base for at, _, _ in kept]  # (the aligner's place at each frame)
        if owns[-1] - owns[0] < self.moving * tempo * (len(owns) - 1):
            # the aligner has been waiting (a chord held longer than written, a breath): no decision. A
            # held chord sounds like every place the piece has it, and the places it is written long
            # match a hold better than the aligner's own, which waits at the onset after it
            return None
        c, n = self.aligner.config, end - base
        steps = np.arange(c.max_step + 1, dtype=np.float64)
        log_k = -0.5 * ((steps - tempo) / c.step_sd_frames) ** 2
        log_k -= log_k.max()  # a path at the tempo pays nothing
        v, seg_gain, seg_n, own_score = _paths(np.stack(rows), np.asarray(owns, np.int64), log_k, self.near)
        far = v  # (a fresh array of the kernel's)
        far[max(own - self.far, 0):min(own + self.far + 1, n)] = -np.inf
        # and the far path must sound like the music since it began, not merely less unlike it than the
        # aligner's place: frames that match nothing (a breath, a bow change, noise) favour any place
        far[seg_gain < self.min_cos * seg_n] = -np.inf
        j = int(np.argmax(far))
        if not np.isfinite(far[j]) or far[j] - own_score < self.confirm_margin:
            return None
        if far[j] - own_score < self.margin:
            # a lead the frames alone do not settle: the place the newest audio's embedding names, where the
            # frames' paths also lead there by confirm_margin (two views agreeing on one place)
            tail_s = self.confirm(own_s, tempo)
            if tail_s is None:
                return None
            t = int(tail_s * self.aligner.fps) - base
            lo, hi = max(t - self.same_place, 0), min(t + self.same_place + 1, n)
            if lo >= hi:
                return None
            k = lo + int(np.argmax(far[lo:hi]))
            if not far[k] - own_score >= self.confirm_margin:
                return None
            self.tied = False
            self._since_n = counts[len(counts) - int(seg_n[k])]
            return base + k
        # places the frames cannot tell apart (music written out twice) are told apart by distance, as
        # the coarse path's jumps are (follower.tracker, jump_local_s): players skip back a few bars
        # more often than across the piece; then the best frame around the nearest such place
        tied = np.flatnonzero(far >= far[j] - self.tie)
        self.tied = bool(np.ptp(tied) > 2 * self.same_place)
        c_near = int(tied[np.argmin(np.abs(tied - own))])
        lo, hi = max(c_near - self.same_place, 0), min(c_near + self.same_place + 1, n)
        k = lo + int(np.argmax(far[lo:hi]))
        self._since_n = counts[len(counts) - int(seg_n[k])]
        return base + k
