"""Path verification and the HMM tracker on synthetic embeddings with a known path."""

import numpy as np
import pytest

from follower.index import Index
from follower.tracker import PieceTracker
from follower.verify import PathVerifier

CELL_S = 0.2


def synthetic_index(n_pieces=6, cells=200, dim=32, seed=0):
    rng = np.random.default_rng(seed)
    # a smooth random walk per piece: neighbouring snippets resemble each other, as real ones do
    steps = rng.standard_normal((n_pieces, cells, dim))
    e = np.cumsum(steps, axis=1) * 0.35 + rng.standard_normal((n_pieces, 1, dim)) * 1.5
    e = e.reshape(-1, dim)
    e /= np.linalg.norm(e, axis=1, keepdims=True)
    pos = np.tile(np.arange(cells) * CELL_S, n_pieces)
    return Index(header={}, embeddings=e.astype(np.float32), piece=np.repeat(np.arange(n_pieces), cells).astype(np.int32),
                 position_s=pos.astype(np.float32), position_beats=(2 * pos).astype(np.float32),
                 piece_ids=np.array([f"p{i}" for i in range(n_pieces)]), titles=np.array([f"P{i}" for i in range(n_pieces)]),
                 piece_start=np.arange(n_pieces + 1, dtype=np.int64) * cells,
                 duration_s=np.full(n_pieces, cells * CELL_S, np.float32))


def query_at(index, piece, position_s, rng, noise=0.6):
    e = index.embeddings[index.rows(piece)]
    j = position_s / CELL_S
    lo = int(np.clip(np.floor(j), 0, len(e) - 2))
    f = j - lo
    q = (1 - f) * e[lo] + f * e[lo + 1] + noise * rng.standard_normal(e.shape[1]) / np.sqrt(e.shape[1])
    return (q / np.linalg.norm(q)).astype(np.float32)


def test_the_true_path_and_its_tempo_score_best():
    index = synthetic_index()
    rng = np.random.default_rng(1)
    update_s = 0.05
    v = PathVerifier(index, index.embeddings, update_s=update_s)
    tempo, start = 1.1, 8.0
    for i in range(80):
        t = i * update_s
        v.add(t, query_at(index, 2, start + tempo * t, rng))
    now = 79 * update_s
    truth = start + tempo * now
    pieces = np.array([2, 2, 0, 3, 5])
    score, best_tempo, pos = v.score(pieces, np.array([truth, truth - 10, truth, truth, 12.0]), now)
    assert score[0] > 2.0 and score[0] > score[1:].max() + 0.5
    assert best_tempo[0] == pytest.approx(tempo)
    assert pos[0] == pytest.approx(truth, abs=0.21)
    assert np.abs(score[2:]).max() < 1.0  # other pieces score about what chance does


def test_tracker_follows_holds_in_silence_and_estimates_tempo():
    index = synthetic_index()
    rng = np.random.default_rng(2)
    rows = index.rows(4)
    e = index.embeddings[rows]
    tracker = PieceTracker(index.position_s[rows], cell_s=index.cell_s)
    tracker.reset(5.5)  # a guess 0.5 s off
    update_s, tempo, start = 0.05, 0.85, 5.0
    errors = []
    for i in range(200):
        t = i * update_s
        truth = start + tempo * t
        q = query_at(index, 4, truth, rng)
        z = (e @ q - (e @ q).mean()) / (e @ q).std()
        pos = tracker.step(z, update_s, t)
        errors.append(pos - truth)
    assert np.abs(errors[40:]).max() < 0.4
    assert tracker.tempo == pytest.approx(tempo, abs=0.05)
    held = tracker.position_s
    for i in range(40):  # a pause: nothing moves
        assert tracker.step(None, update_s, 10 + i * update_s, silent=True) == held


def test_the_tracker_does_not_run_ahead_of_the_music():
    """Between snippets the belief stands for its cell plus the carried fraction of a cell;
    observing the similarity at the cell's own snippet instead put the estimate ahead of
    the music by about half a cell on average (0.1 s at a 0.2 s grid)."""
    index = synthetic_index()
    rng = np.random.default_rng(7)
    rows = index.rows(1)
    tracker = PieceTracker(index.position_s[rows], cell_s=CELL_S)
    start, tempo, update_s = 6.0, 1.0, 0.05
    tracker.reset(start, tempo=tempo)
    errors = []
    for i in range(1, 400):
        truth = start + tempo * i * update_s
        q = query_at(index, 1, truth, rng, noise=0.3)
        position = tracker.step(index.embeddings[rows] @ q * 8.0, update_s, i * update_s)
        if i > 40:
            errors.append(position - truth)
    assert abs(np.mean(errors)) < 0.03, np.mean(errors)
    assert np.mean(np.abs(errors) <= 0.1) > 0.8


def repeat_similarities(positions, at_s):
    """The audio matches two places of the piece equally (a literal repeat 18 s apart), nowhere else."""
    return np.where((np.abs(positions - at_s) < 0.4) | (np.abs(positions - (at_s - 18.0)) < 0.4), 3.0, -1.0)


def after_a_jump(local_s, start_s):
    """Where a tracker following at ``start_s`` is after 2 s of music that sounds at 44 s and at 26 s alike."""
    from follower.tracker import TrackerConfig

    positions = np.arange(0.0, 100.0, 0.2)
    tracker = PieceTracker(positions, TrackerConfig(jump_local_s=local_s), cell_s=0.2)
    tracker.reset(start_s)
    for k in range(40):  # 2 s at the written tempo
        tracker.step(repeat_similarities(positions, 44.0 + 0.05 * k), 0.05, 0.05 * k)
    return tracker.position_s


@pytest.mark.parametrize("start_s, expected_s", [(60.0, 44.0), (10.0, 26.0)])
def test_after_a_jump_the_nearer_of_two_places_that_sound_alike_wins(start_s, expected_s):
    assert after_a_jump(30.0, start_s) == pytest.approx(expected_s + 2.0, abs=0.5)


def test_uniform_jump_mass_knows_no_distance():
    # the same tie from either side ends at the same place
    assert after_a_jump(0.0, 60.0) == pytest.approx(after_a_jump(0.0, 10.0), abs=0.5)


def two_copies_flickering(stay_ratio):
    """A tracker at 60 s, then audio that sounds at two places alike (music written out twice, 18 s
    apart), each a little more like it by turns: the positions it reports, and its jumps after the first."""
    from follower.tracker import TrackerConfig

    positions = np.arange(0.0, 100.0, 0.2)
    tracker = PieceTracker(positions, TrackerConfig(stay_ratio=stay_ratio), cell_s=0.2)
    tracker.reset(60.0)
    reported, jumps = [], []
    for k in range(200):  # 10 s at the written tempo, from 20.0 s (and 38.0 s)
        at = 20.0 + 0.05 * k
        sims = repeat_similarities(positions, at + 18.0)
        favoured = at + 18.0 if (k // 10) % 2 else at  # a small difference, changing every half second
        sims = sims + 0.1 * (np.abs(positions - favoured) < 0.4)
        reported.append(tracker.step(sims, 0.05, 0.05 * k))
        if tracker.jumped:
            jumps.append(k)
    return np.array(reported), len(jumps) - 1


def test_the_estimate_stays_on_its_copy_of_music_written_out_twice():
    _, flips = two_copies_flickering(0.0)
    assert flips >= 4  # without the rule: a jump to the other copy whichever is a little more alike now
    steady, flips = two_copies_flickering(0.5)
    assert flips == 0
    truth = 20.0 + 0.05 * np.arange(200)
    off = np.minimum(np.abs(steady - truth), np.abs(steady - truth - 18.0))[20:]
    assert off.max() < 0.5  # on one of the copies, throughout


def test_a_real_jump_still_moves_the_estimate_at_once():
    from follower.tracker import TrackerConfig

    positions = np.arange(0.0, 100.0, 0.2)
    moved_at = {}
    for stay in (0.0, 0.5):
        tracker = PieceTracker(positions, TrackerConfig(stay_ratio=stay), cell_s=0.2)
        tracker.reset(60.0)
        for k in range(80):  # 2 s at 60 s, then the player skips back to 30 s
            at = 60.0 + 0.05 * k if k < 40 else 30.0 + 0.05 * (k - 40)
            sims = np.where(np.abs(positions - at) < 0.4, 3.0, -1.0)
            tracker.step(sims, 0.05, 0.05 * k)
            if tracker.jumped:
                moved_at[stay] = k
                break
        assert tracker.position_s == pytest.approx(at, abs=0.5)
    assert moved_at[0.5] <= moved_at[0.0] + 1  # an update later at most


def test_bad_stay_settings_are_one_clear_error():
    from follower.errors import ConfigError
    from follower.tracker import TrackerConfig

    with pytest.raises(ConfigError, match="stay_ratio"):
        TrackerConfig(stay_ratio=1.5)
    with pytest.raises(ConfigError, match="stay_s"):
        TrackerConfig(stay_s=0.0)
