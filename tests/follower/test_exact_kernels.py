"""The numba kernels of the update give exactly, bit for bit, what the numpy code they replaced gave.

The follower's output must not change when a hot loop moves into numba: each kernel is
checked here against the plain numpy computation (kept in this file as the reference)
on random inputs, including ties, padding and silence.
"""

import numpy as np
import pytest

from follower.aligner import FineAligner, FineConfig, score_templates
from follower.features import FeatureConfig
from follower.index import Index
from follower.npsum import pairwise_sum
from follower.rerank import SAME_CELLS, _mean_dot
from follower.verify import PathVerifier
from follower.votes import OffsetVotes


@pytest.mark.parametrize("n", list(range(0, 40)) + [127, 128, 129, 255, 256, 300, 1000, 4099])
def test_pairwise_sum_is_numpys_float32_and_float64_sum(n):
    rng = np.random.default_rng(n)
    for _ in range(20):
        a = (rng.standard_normal(n + 3) * rng.choice([1e-3, 1.0, 1e4])).astype(np.float32)
        assert pairwise_sum(a, 3, n) == a[3:].sum()
        assert pairwise_sum(a.astype(np.float64) / 3, 3, n) == (a.astype(np.float64) / 3)[3:].sum()


def test_mean_dot_is_numpys_mean_of_row_dots():
    rng = np.random.default_rng(0)
    e = rng.standard_normal((300, 32)).astype(np.float32)
    e /= np.linalg.norm(e, axis=1, keepdims=True)
    for _ in range(2000):
        a, b = rng.integers(0, 300, SAME_CELLS), rng.integers(0, 300, SAME_CELLS)
        if rng.random() < 0.3:
            b = a
        assert float(_mean_dot(e, a, b)) == float(np.mean(np.sum(e[a] * e[b], axis=1)))


@pytest.mark.parametrize("keyed", [False, True])
def test_best_cells_are_the_cells_by_mass_with_stable_ties(keyed):
    """Both kernels: keys found per update, and keys found once per vote (``bin_s`` given)."""
    rng = np.random.default_rng(1)
    for trial in range(120):
        votes = OffsetVotes(6, 40, bin_s=1.0 if keyed else None)
        n_pieces = int(rng.choice([1, 3, 50]))
        for i in range(int(rng.integers(0, 80))):
            n = 6 if rng.random() < 0.8 else int(rng.integers(1, 6))      # fewer neighbours: padded rows
            w = rng.dirichlet(np.ones(n)) if rng.random() < 0.8 else np.zeros(n)  # silence votes nothing
            offsets = np.round(rng.uniform(-5, 30, n), int(rng.integers(0, 3)))   # rounded: many ties
            votes.add(i * 0.05, rng.integers(0, n_pieces, n), offsets, w)
            if rng.random() < 0.01:
                votes.reset()
        t = i * 0.05 + rng.uniform(0, 20) if trial else 0.0
        for want in (1, 5, 16):
            piece, offset, mass, _ = votes.cells(t, 3.0, 1.0)
            best = np.argsort(-mass, kind="stable")[:want]
            got_piece, got_offset = votes.best_cells(t, 3.0, 1.0, want)
            assert np.array_equal(got_piece, piece[best]) and np.array_equal(got_offset, offset[best])
    assert len(votes.best_cells(t, 3.0, 1.0, 0)[0]) == 0


def test_best_cells_by_key_ids_over_a_long_run():
    """Keys found when each vote is added, kept across updates and started afresh when their ids run out
    (a small horizon and many distinct cells make that happen every few dozen updates): every update's
    best cells are those of the per-update kernel, bit for bit; another bin width falls back to it."""
    rng = np.random.default_rng(5)
    keyed, plain = OffsetVotes(5, 12, bin_s=0.5), OffsetVotes(5, 12)
    fresh = 0
    for i in range(3000):
        n = 5 if rng.random() < 0.9 else int(rng.integers(1, 5))
        w = rng.dirichlet(np.ones(n))
        pieces = rng.integers(0, int(rng.choice([2, 400])), n)
        offsets = np.round(rng.uniform(-40, 300, n), int(rng.integers(0, 3)))
        used = keyed._state[0]
        for v in (keyed, plain):
            v.add(i * 0.05, pieces, offsets, w)
        fresh += int(keyed._state[0] < used)
        if rng.random() < 0.005:
            keyed.reset(), plain.reset()
        t = i * 0.05 + (rng.uniform(0, 5) if rng.random() < 0.2 else 0.0)
        for want in (1, 16):
            got, ref = keyed.best_cells(t, 3.0, 0.5, want), plain.best_cells(t, 3.0, 0.5, want)
            assert all(np.array_equal(a, b) for a, b in zip(got, ref))
        other = keyed.best_cells(t, 3.0, 1.0, 16), plain.best_cells(t, 3.0, 1.0, 16)
        assert all(np.array_equal(a, b) for a, b in zip(*other))
    assert fresh > 10  # the ids ran out and the table started afresh many times


def numpy_path_scores(v: PathVerifier, pieces, positions_s, now_s):
    """The verification's scores as the numpy code computed them before the kernels."""
    recent = np.nonzero(now_s - v._t <= v.window_s + 1e-9)[0]
    n = len(pieces)
    if n == 0 or len(recent) == 0:
        return np.zeros(n), np.ones(n), positions_s
    dt = now_s - v._t[recent]
    r, s = np.meshgrid(v._tempi, v._shifts, indexing="ij")
    r, s = r.ravel(), s.ravel()
    pos = positions_s[:, None, None] + s[None, :, None] - r[None, :, None] * dt[None, None, :]
    cell = np.rint(pos / v._cell_s).astype(np.int64)
    q, bias = v._q[recent], v._bias[recent]
    denom = max(len(recent), v._min_queries)
    cols = np.arange(len(recent))[None, :]
    z = np.zeros((n, len(r)))
    for i in range(n):
        c = cell[i]
        start = int(v.index.piece_start[pieces[i]])
        length = int(v.index.piece_start[pieces[i] + 1]) - start
        lo, hi = max(int(c.min()), 0), min(int(c.max()) + 1, length)
        if hi <= lo:
            continue
        sims = v._E[start + lo:start + hi] @ q.T - bias
        vals = sims[np.clip(c - lo, 0, hi - lo - 1), cols]
        z[i] = np.where((c >= lo) & (c < hi), vals, 0.0).sum(axis=1) / denom
    best = np.argmax(z, axis=1)
    return z[np.arange(n), best], r[best], positions_s + s[best]


def test_path_scores_are_the_numpy_ones():
    rng = np.random.default_rng(2)
    lengths = [40, 3, 120, 75]
    starts = np.concatenate([[0], np.cumsum(lengths)])
    n = int(starts[-1])
    e = rng.standard_normal((n, 16)).astype(np.float32)
    e /= np.linalg.norm(e, axis=1, keepdims=True)
    piece = np.repeat(np.arange(len(lengths)), lengths).astype(np.int32)
    pos = np.concatenate([np.arange(m) * 0.2 for m in lengths]).astype(np.float32)
    index = Index(header={"hop_frames": 4, "frame_rate_hz": 20.0}, embeddings=e, piece=piece, position_s=pos,
                  position_beats=2 * pos, piece_ids=np.array(["a", "b", "c", "d"]), titles=np.array(["a", "b", "c", "d"]),
                  piece_start=starts.astype(np.int64), duration_s=np.array([m * 0.2 for m in lengths], np.float32))
    v = PathVerifier(index, e, update_s=0.05)
    v.warm_up()
    for step in range(400):
        if rng.random() < 0.9:   # some updates do not vote (silence)
            v.add(step * 0.05, e[rng.integers(n)] + 0.2 * rng.standard_normal(16).astype(np.float32))
        if step % 150 == 0:
            v.reset()
        k = int(rng.integers(0, 30))
        pieces = rng.integers(0, len(lengths), k).astype(np.int64)
        positions = rng.uniform(-8, 30, k)
        want = numpy_path_scores(v, pieces, positions, step * 0.05)
        got = v.score(pieces, positions, step * 0.05)
        assert all(np.array_equal(a, b) for a, b in zip(want, got))


def test_path_rows_are_numpys_rounded_and_clipped_steps():
    from follower.rerank import _path_rows

    rng = np.random.default_rng(3)
    for _ in range(3000):
        start, n, j = int(rng.integers(0, 1000)), int(rng.integers(1, 200)), int(rng.integers(-20, 220))
        tempo = max(float(rng.choice([0.5, 1.0, 1.25, 1.5, rng.uniform(0, 3)])), 0.5)  # exact halves: ties
        want = start + np.clip(j - np.round(np.arange(SAME_CELLS) * tempo).astype(int), 0, n - 1)
        got = np.empty(SAME_CELLS, np.int64)
        _path_rows(start, n, j, tempo, got)
        assert np.array_equal(got, want)


# -- the live update's front end: the same bits as before, with less work per block ---------------------

def test_cached_window_is_numpys_hann_window():
    from follower.features import _window

    for n in (2048, 1024, 7):
        assert np.array_equal(_window(n), np.hanning(n).astype(np.float32))
        assert _window(n) is _window(n) and not _window(n).flags.writeable


def test_one_channel_blocks_are_validated_as_the_mean_did():
    from follower.errors import BadAudioError
    from follower.features import valid_audio

    rng = np.random.default_rng(4)
    for _ in range(200):
        x = rng.standard_normal((int(rng.integers(0, 600)), 1)).astype(np.float32) * rng.choice([1e-3, 1.0, 1e4])
        x[rng.random(len(x)) < 0.1] = -0.0
        want = x.mean(axis=1).astype(np.float32, copy=False)  # valid_audio as it was
        if len(want) and float(np.abs(want).max()) > 1e3:
            want = np.clip(want, -1e3, 1e3)
        got = valid_audio(x)
        assert got.dtype == np.float32 and np.array_equal(got, want)
        assert np.array_equal(np.signbit(got), np.signbit(want))  # -0.0 becomes 0.0 as in mean()
    for bad in (np.nan, np.inf, -np.inf):
        x = np.zeros((10, 1), np.float32)
        x[3] = bad
        with pytest.raises(BadAudioError):
            valid_audio(x)


def test_embed_window_is_the_encoders_call_on_one_window(chroma_bundle):
    """The engine's one-window path through a bound buffer gives what the batch call gives, for the
    test bundle's encoder and, where it is there, the shipped int8 one; windows come from a ring, as
    the engine's (views that are not contiguous in the transposed layout)."""
    from follower.bundle import AUDIO_ONNX, Encoder
    from follower.snippets import audio_input
    from conftest import REPO

    paths = [chroma_bundle / AUDIO_ONNX] + [p for p in [REPO / "exported" / "default" / AUDIO_ONNX] if p.is_file()]
    rng = np.random.default_rng(6)
    for path in paths:
        enc = Encoder(path)
        frames, bins = enc.session.get_inputs()[0].shape[3], enc.session.get_inputs()[0].shape[2]
        ring = rng.uniform(0, 3, (2 * frames, bins)).astype(np.float32)
        for start in range(frames):
            window = ring[start:start + frames]
            want = enc(audio_input(window[None]))[0]
            got = enc.embed_window(window)
            assert np.array_equal(got, want)
            ring[start] += 1.0  # the next call must not see a stale buffer


def test_tempo_fit_over_arrays_is_the_deque_ones():
    """The tracker's tempo fit keeps its points in two arrays instead of a deque of tuples turned into an
    (n, 2) array each update: every position and tempo is the same, bit for bit, across jumps, silence,
    and the arrays' compaction."""
    from collections import deque

    from follower.tracker import PieceTracker, TrackerConfig

    class DequeTracker(PieceTracker):  # the fit as it was
        def reset(self, centre_s, *, tempo=1.0):
            super().reset(centre_s, tempo=tempo)
            self._history = deque()

        def _update_tempo(self, audio_time_s):
            c, h = self.config, self._history
            h.append((audio_time_s, self.position_s))
            while h and audio_time_s - h[0][0] > c.tempo_window_s:
                h.popleft()
            if len(h) < 10 or h[-1][0] - h[0][0] < 1.5:
                return
            a = np.array(h)
            t, p = a[:, 0] - a[:, 0].mean(), a[:, 1] - a[:, 1].mean()
            slope = float(np.dot(t, p) / max(np.dot(t, t), 1e-9))
            slope = min(max(slope, c.tempo_min), c.tempo_max)
            self.tempo = c.tempo_smoothing * self.tempo + (1 - c.tempo_smoothing) * slope

    rng = np.random.default_rng(8)
    positions = np.arange(400) * 0.2
    for window_s in (6.0, 40.0):  # 40 s: more points than the arrays hold at first (they grow)
        config = TrackerConfig(tempo_window_s=window_s)
        new, old = PieceTracker(positions, config, cell_s=0.2), DequeTracker(positions, config, cell_s=0.2)
        t, fits = 0.0, 0
        for step in range(3000):
            if step % 700 == 0:
                centre, tempo = float(rng.uniform(0, 60)), float(rng.uniform(0.7, 1.3))
                for tr in (new, old):
                    tr.reset(centre, tempo=tempo)
            t += 0.05
            z = None if rng.random() < 0.1 else rng.standard_normal(len(positions)) * 0.5
            if z is not None and rng.random() < 0.7:
                z[int(min(len(positions) - 1, (new.position_s + 0.3 * step % 7) / 0.2))] += 4.0
            silent = rng.random() < 0.05
            a = new.step(z, 0.05, t, silent=silent)
            b = old.step(z, 0.05, t, silent=silent)
            assert a == b and new.tempo == old.tempo and new.jumped == old.jumped
            fits += new.tempo != tempo
        assert fits > 1000  # the fit ran (the tempo moved off its reset value) most of the time


def _numpy_fine_step(al, frames, loud, coarse_s, tempo):
    """The belief update of FineAligner.step as numpy code (before its kernel): (belief, its first frame)."""
    c = al.config
    steps = np.arange(c.max_step + 1, dtype=np.float64)
    kernel = np.exp(-0.5 * ((steps - tempo) / c.step_sd_frames) ** 2)
    kernel /= kernel.sum()
    waits = al._gap is not None
    if waits:
        crossing = c.onset_wait * np.append(np.cumsum(kernel[::-1])[::-1], 0.0)
    b, b_lo = al._belief, al._lo
    for frame, is_loud, anchor_s in zip(frames, loud, coarse_s):
        if not is_loud:
            continue
        lo, hi = al._band(anchor_s)
        cos = al.emission_cosines(frame, lo, hi)
        moved = np.zeros(hi - lo)
        if waits:
            gap = al._gap[b_lo:b_lo + len(b)]
            wait_at = al._wait[b_lo:b_lo + len(b)]
            i, j = wait_at - lo, wait_at + 1 - lo
            inside = (i >= 0) & (j < hi - lo)
            moved_on = np.zeros(len(b), bool)
            moved_on[inside] = cos[j[inside]] > cos[i[inside]]
            held = b * crossing[np.minimum(gap, len(kernel))] * ~moved_on
            dest = np.clip(wait_at, lo, hi - 1) - lo
            moved += np.bincount(dest, held, minlength=hi - lo)
        for d, k in enumerate(kernel):
            src_lo, src_hi = max(lo - d, b_lo), min(hi - d, b_lo + len(b))
            if src_lo < src_hi:
                src = b[src_lo - b_lo:src_hi - b_lo]
                if waits:
                    sl = slice(src_lo - b_lo, src_hi - b_lo)
                    src = src * np.where((gap[sl] <= d) & ~moved_on[sl], 1.0 - c.onset_wait, 1.0)
                moved[src_lo + d - lo:src_hi + d - lo] += k * src
        banded = moved * np.exp(c.sharpness * (cos - cos.max()))
        total = banded.sum()
        anchor = al._gauss(anchor_s, lo, hi)
        banded = banded / total if total > 0 else anchor
        b, b_lo = (1 - c.anchor_weight) * banded + c.anchor_weight * anchor, lo
    return b, b_lo


@pytest.mark.parametrize("onset_wait", [0.3, 0.0])
def test_fine_aligner_belief_is_the_numpy_one(onset_wait):
    """Holds at onsets or none, silent frames, several frames a step, tempi 0.3-3x, anchors that jump away
    (the old belief then reaches nothing of the new band)."""
    fc, rng = FeatureConfig(), np.random.default_rng(7)
    cfg = FineConfig(onset_wait=onset_wait)
    onsets = np.sort(rng.uniform(0, 60, 150))
    pitch = rng.integers(40, 90, len(onsets))
    ends = onsets + rng.uniform(0.1, 2.0, len(onsets))
    templates = score_templates(onsets, ends, pitch, fc, cfg)
    a = FineAligner(templates, fc.frame_rate_hz, cfg, onsets_s=onsets)
    b = FineAligner(templates, fc.frame_rate_hz, cfg, onsets_s=onsets)
    for al in (a, b):
        al.reset(3.0)
    pos = 3.0
    for step in range(400):
        n = int(rng.choice([1, 1, 1, 2, 4]))
        tempo = float(rng.uniform(0.3, 3.0))
        if rng.random() < 0.03:
            pos = float(rng.uniform(0, 62))            # the coarse path jumps
        anchors = pos + np.arange(n) * tempo / fc.frame_rate_hz + rng.normal(0, 0.3)
        pos = float(anchors[-1])
        at = np.clip((anchors * fc.frame_rate_hz).astype(int), 0, len(templates) - 1)
        frames = (templates[at] + rng.uniform(0, 0.3, (n, templates.shape[1]))).astype(np.float32)
        loud = rng.random(n) > 0.1
        want, want_lo = _numpy_fine_step(a, frames, loud, anchors, tempo)
        a._belief, a._lo = want, want_lo
        b.step(frames, loud, anchors, tempo)
        assert b._lo == want_lo and np.array_equal(b._belief, want), step


def _numpy_score_templates(onset_s, end_s, pitch, features, config):
    """score_templates as numpy expressions (before its kernels)."""
    from follower.aligner import pitch_templates

    fps = features.frame_rate_hz
    onset_s, end_s = np.asarray(onset_s, np.float64), np.asarray(end_s, np.float64)
    n = int(np.ceil((end_s.max() if len(end_s) else 0.0) * fps)) + 1
    pt = pitch_templates(features, config)
    pitch = np.asarray(pitch, np.int64)
    first = np.clip(np.floor(onset_s * fps).astype(np.int64), 0, n)
    last = np.minimum(np.maximum(np.ceil(end_s * fps).astype(np.int64), first + 1), n)
    fade = np.exp(-np.arange(1, int(4 * config.release_s * fps) + 1) / max(config.release_s * fps, 1e-9))
    used, col = np.unique(pitch, return_inverse=True)
    u = len(used)
    held = (np.bincount(first * u + col, minlength=(n + 1) * u)
            - np.bincount(last * u + col, minlength=(n + 1) * u)).reshape(n + 1, u)
    act = np.cumsum(held[:n], axis=0).astype(np.float64)
    after = (last[:, None] + np.arange(len(fade))).ravel()
    keep = after < n
    act += np.bincount(after[keep] * u + np.repeat(col, len(fade))[keep], np.tile(fade, len(last))[keep],
                       minlength=n * u).reshape(n, u)
    lin = (act @ pt[used].astype(np.float64)).astype(np.float32)
    t = np.log1p(config.compression * lin)
    norm = np.linalg.norm(t, axis=1, keepdims=True)
    return np.where(norm > 0, t / np.maximum(norm, 1e-9), 0.0).astype(np.float32)


def _numpy_template_cells(templates, per=4):
    n = -(-len(templates) // per)
    pad = np.zeros((n * per, templates.shape[1]), np.float64)
    pad[: len(templates)] = templates
    m = pad.reshape(n, per, -1).sum(axis=1)
    norm = np.linalg.norm(m, axis=1, keepdims=True)
    return np.where(norm > 0, m / np.maximum(norm, 1e-9), 0.0).astype(np.float32)


@pytest.mark.parametrize("release_s", [0.2, 1e-6, 1.0])
def test_note_templates_and_their_cells_are_the_numpy_ones(release_s):
    """Notes of one pitch overlapping, chords, gaps of silence (zero rows), notes fading past the end,
    pieces of one note and of none, frame counts that leave a partial last cell."""
    from follower.note_evidence import template_cells

    fc, cfg = FeatureConfig(), FineConfig(release_s=release_s)
    rng = np.random.default_rng(11)
    pieces = [([], [], []), ([0.3], [0.35], [60])]
    for _ in range(30):
        n = int(rng.integers(1, 400))
        onset = np.sort(rng.uniform(0, rng.uniform(1, 120), n))
        onset[rng.random(n) < 0.2] += 30.0  # a gap: silent frames
        pieces.append((onset, onset + rng.exponential(0.6, n), rng.integers(21, 109, n)))
    for onset, end, pitch in pieces:
        want = _numpy_score_templates(onset, end, pitch, fc, cfg)
        got = score_templates(onset, end, pitch, fc, cfg)
        assert got.dtype == want.dtype and np.array_equal(got, want)
        for per in (4, 3):
            assert np.array_equal(template_cells(got, per), _numpy_template_cells(want, per))
