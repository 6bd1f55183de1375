"""The re-ranker: online local alignment of the query stream against candidate pieces.

A made-up index of random unit embeddings stands in for a corpus (no audio, no bundle):
a "performance" of a piece is the sequence of its snippets' embeddings plus noise, one
query per 50 ms update, so the true alignment is known exactly.
"""

import numpy as np
import pytest

from follower.index import Index
from follower.rerank import Reranker
from follower.verify import PathVerifier

UPDATE_S = 0.05
CELL_S = 0.2          # hop 4 frames at 20 frames/s: 4 queries per alignment step
DIM = 32


def make_index(n_pieces=6, cells=150, seed=0) -> Index:
    rng = np.random.default_rng(seed)
    e = rng.standard_normal((n_pieces * cells, DIM)).astype(np.float32)
    e /= np.linalg.norm(e, axis=1, keepdims=True)
    positions = np.tile(np.arange(cells) * CELL_S, n_pieces).astype(np.float32)
    return Index(header={"hop_frames": 4, "frame_rate_hz": 20.0}, embeddings=e,
                 piece=np.repeat(np.arange(n_pieces), cells).astype(np.int32), position_s=positions,
                 position_beats=positions * 2, piece_ids=np.array([f"p{i}" for i in range(n_pieces)]),
                 titles=np.array([f"p{i}" for i in range(n_pieces)]),
                 piece_start=np.arange(n_pieces + 1) * cells, duration_s=np.full(n_pieces, cells * CELL_S))


def performance(index, piece, *, start_s, seconds, tempo=1.0, noise=0.6, seed=1):
    """Queries of ``piece`` played from ``start_s`` at ``tempo``: the snippet under each update, noisy."""
    rng = np.random.default_rng(seed)
    rows = index.rows(piece)
    t = np.arange(int(seconds / UPDATE_S)) * UPDATE_S
    cells = np.clip(np.round((start_s + tempo * t) / CELL_S).astype(int), 0, rows.stop - rows.start - 1)
    q = index.embeddings[rows][cells] + noise * rng.standard_normal((len(t), DIM)) / np.sqrt(DIM)
    return q / np.linalg.norm(q, axis=1, keepdims=True), start_s + tempo * t


def reranker(index, **kw) -> Reranker:
    verifier = PathVerifier(index, index.embeddings, update_s=UPDATE_S)
    r = Reranker(index, index.embeddings, verifier.standardise, update_s=UPDATE_S, **kw)
    r.warm_up()
    return r


def feed(r, queries, candidates):
    for q in queries:
        r.add(q)
        r.consider(candidates)
    return r.ranking()


@pytest.mark.parametrize("tempo", [0.55, 1.0, 1.8])
def test_the_played_piece_leads_at_its_position_and_tempo(tempo):
    index = make_index()
    queries, truth_s = performance(index, 2, start_s=6.0, seconds=8.0, tempo=tempo)
    ranking = feed(reranker(index), queries, [0, 1, 2, 3, 4, 5])
    piece, score, position_s, est_tempo = ranking[0]
    assert piece == 2
    assert score > 3 * max(s for p, s, _, _ in ranking[1:]) and score > 6.0
    assert position_s == pytest.approx(truth_s[-1], abs=0.5)
    assert est_tempo == pytest.approx(tempo, rel=0.2)


def test_random_queries_leave_every_score_low():
    index = make_index()
    rng = np.random.default_rng(5)
    q = rng.standard_normal((400, DIM)).astype(np.float32)
    ranking = feed(reranker(index), q / np.linalg.norm(q, axis=1, keepdims=True), range(6))
    assert max(s for _, s, _, _ in ranking) < 2.0  # 20 s of noise: far below a real lead


def test_a_late_candidate_is_scored_over_the_whole_history():
    index = make_index()
    queries, _ = performance(index, 3, start_s=2.0, seconds=6.0)
    early, late = reranker(index), reranker(index)
    feed(early, queries, [0, 3])
    feed(late, queries[:-1], [0])
    late.add(queries[-1])
    late.consider([3])  # arrives at the very end: aligned over the steps kept so far
    score = {p: s for p, s, _, _ in early.ranking()}
    assert {p: s for p, s, _, _ in late.ranking()}[3] == pytest.approx(score[3], rel=1e-6)


def test_a_candidate_dropped_a_moment_ago_comes_back_as_it_was():
    index = make_index()
    rng = np.random.default_rng(3)
    # piece 3 sounds somewhat like piece 2 (cosine ~0.8): it gathers a real path, below piece 2's
    e = index.embeddings[index.rows(2)] + 0.7 * rng.standard_normal((150, DIM)) / np.sqrt(DIM)
    index.embeddings[index.rows(3)] = e / np.linalg.norm(e, axis=1, keepdims=True)
    queries, _ = performance(index, 2, start_s=3.0, seconds=8.0)

    def run(gap):
        """Piece 3 left out of the candidates (so dropped, the pool holding one) for the updates in ``gap``."""
        r = reranker(index, candidates=1 if gap else 8, history_s=1.0)
        for i, q in enumerate(queries):
            r.add(q)
            r.consider([2] if i in gap else [2, 3], keep=2 if i in gap else 3)
        return {p: (s, pos, tempo) for p, s, pos, tempo in r.ranking()}

    stayed = run(range(0))
    # away for two steps, which the 1 s history still holds: back with the alignment it would have had
    assert run(range(80, 88))[3] == stayed[3]
    # away for longer than the history: aligned anew over the last second only
    assert run(range(40, 100))[3][0] < 0.5 * stayed[3][0]


def test_the_pool_is_bounded_and_keeps_the_locked_piece():
    index = make_index()
    queries, _ = performance(index, 1, start_s=0.0, seconds=4.0)
    r = reranker(index, candidates=2, max_new=1)
    for i, q in enumerate(queries):
        r.add(q)
        r.consider([i % 6], keep=5)
    assert len(r.ranking()) <= 3 and 5 in [p for p, *_ in r.ranking()]


def test_reset_forgets_everything():
    index = make_index()
    r = reranker(index)
    feed(r, performance(index, 0, start_s=0.0, seconds=3.0)[0], [0])
    r.reset()
    assert r.ranking() == [] and r.steps == 0


def test_a_piece_stored_twice_is_one_candidate_not_a_rival():
    index = make_index()
    twin = index.rows(4)
    index.embeddings[twin] = index.embeddings[index.rows(3)]  # the corpus holds piece 3 again as piece 4
    queries, _ = performance(index, 3, start_s=5.0, seconds=8.0)
    r = reranker(index)
    ranking = feed(r, queries, [3, 4, 0, 1])
    named = [p for p, *_ in ranking]
    assert named[0] in (3, 4) and not {3, 4} <= set(named)
    assert r.duplicates == {7 - named[0]: named[0]}
    assert ranking[0][1] > 3 * ranking[1][1]  # the margin is over another piece, not over the twin


def with_notes(index, notes_of) -> Index:
    """``index`` carrying each piece's notes, ``notes_of(piece)`` -> (onset_s, end_s, pitch)."""
    import dataclasses

    notes = [notes_of(p) for p in range(index.n_pieces)]
    return dataclasses.replace(
        index, note_start=np.concatenate([[0], np.cumsum([len(n[0]) for n in notes])]).astype(np.int64),
        note_onset_s=np.concatenate([n[0] for n in notes]).astype(np.float32),
        note_end_s=np.concatenate([n[1] for n in notes]).astype(np.float32),
        note_pitch=np.concatenate([n[2] for n in notes]).astype(np.uint8))


@pytest.mark.parametrize("copy_notes", [True, False])
def test_a_requantised_copy_is_known_by_its_notes(copy_notes):
    from tests.follower.test_same_notes import chorale, requantised

    index = make_index()
    rng = np.random.default_rng(9)
    # piece 4 holds piece 3's music written out again: alike snippets, but not alike enough for
    # the embedding test (cosine ~0.95 < SAME_COSINE), and its notes on a 16th grid, 0.15 s later
    e = index.embeddings[index.rows(3)] + 0.33 * rng.standard_normal((150, DIM)) / np.sqrt(DIM)
    index.embeddings[index.rows(4)] = e / np.linalg.norm(e, axis=1, keepdims=True)
    music = {p: chorale(seed=p, chords=60) for p in range(6)}
    music[4] = requantised(music[3]) if copy_notes else chorale(seed=40, chords=60)
    index = with_notes(index, music.get)
    queries, _ = performance(index, 3, start_s=5.0, seconds=10.0)
    r = reranker(index)
    named = [p for p, *_ in feed(r, queries, [3, 4, 0, 1])]
    if copy_notes:  # the same music: one candidate, the other its duplicate
        assert named[0] in (3, 4) and not {3, 4} <= set(named)
        assert r.duplicates == {7 - named[0]: named[0]}
    else:  # other notes: a rival, as close as its snippets make it
        assert named[:2] in ([3, 4], [4, 3]) and r.duplicates == {}


@pytest.mark.parametrize("hops", [2, 3, 8])
def test_after_skipped_updates_a_query_counts_for_the_audio_it_stands_for(hops):
    """The runner computes one update per few hops when the machine is busy (follower.pacing): the
    paths must still see the music's own tempo, not `hops` times it."""
    index = make_index()
    queries, truth_s = performance(index, 2, start_s=6.0, seconds=10.0, tempo=1.0)
    r = reranker(index)
    for q in queries[hops - 1::hops]:  # only every hops-th update was computed
        r.add(q, hops)
        r.consider([0, 1, 2, 3, 4, 5])
    piece, score, position_s, tempo = r.ranking()[0]
    assert piece == 2
    assert r.steps == len(queries[hops - 1::hops]) * hops // 4  # a step per cell of music, as without skipping
    assert tempo == pytest.approx(1.0, rel=0.2)
    assert position_s == pytest.approx(truth_s[-1], abs=0.6)


def test_z_scores_of_the_float32_product_are_those_of_float64():
    index = make_index()
    r = reranker(index)
    rng = np.random.default_rng(4)
    q, bias = rng.standard_normal((30, DIM)) * 8.0, rng.uniform(0.0, 2.0, 30)  # scaled queries, as the steps hold
    z = r._z(2, q, bias)
    exact = q @ index.embeddings[index.rows(2)].astype(np.float64).T - bias[:, None]
    assert z.dtype == np.float64 and z.shape == (30, 150)
    np.testing.assert_allclose(z, exact, atol=1e-4)
