"""Note-template evidence in the re-ranking, on a made-up index and made-up templates.

The embedding queries are noise (they name no piece); the spectrogram frames are one
piece's template cells, four frames a cell: only the template alignment can name it.
"""

import numpy as np
import pytest

from follower.note_evidence import TemplateScorer, standardised_cosines, template_cells

from test_rerank import UPDATE_S, make_index, reranker

BINS = 24


class FakeNotes(TemplateScorer):
    """Random unit template cells per piece (no MIDI, no filterbank); the real null and z."""

    def __init__(self, n_pieces, cells, seed=3):
        rng = np.random.default_rng(seed)
        t = np.abs(rng.standard_normal((n_pieces, cells, BINS)))
        self._start_cache()
        self._cells = {p: (t[p] / np.linalg.norm(t[p], axis=1, keepdims=True)).astype(np.float32)
                       for p in range(n_pieces)}  # float32, as template_cells stores them
        self._null = t.reshape(-1, BINS)[rng.choice(n_pieces * cells, 256)]
        self._null /= np.linalg.norm(self._null, axis=1, keepdims=True)


def play(r, notes, piece, *, start_cell, seconds, candidates, late=()):
    rng = np.random.default_rng(5)
    n = int(seconds / UPDATE_S)
    for k in range(n):
        q = rng.standard_normal(r._E.shape[1])
        r.add(q / np.linalg.norm(q))
        cell = notes.cells(piece)[start_cell + k // 4]
        r.add_frame(cell + 0.05 * np.abs(rng.standard_normal(BINS)), True)
        r.consider(list(candidates) + (list(late) if k >= n // 2 else []))
    return r.ranking()


def test_templates_name_the_piece_the_embeddings_cannot():
    index = make_index()
    notes = FakeNotes(index.n_pieces, 150)
    on = play(reranker(index, templates=notes, template_weight=1.0), notes, 3, start_cell=20, seconds=6.0,
              candidates=[0, 1, 2, 3, 4, 5])
    assert on[0][0] == 3 and on[0][1] > 10.0
    off = play(reranker(index, templates=notes, template_weight=0.0), notes, 3, start_cell=20, seconds=6.0,
               candidates=[0, 1, 2, 3, 4, 5])
    assert max(s for _, s, _, _ in off) < on[0][1] / 3       # weight 0: no template evidence at all


def test_a_late_candidate_gets_the_template_score_of_everything_heard():
    index = make_index()
    notes = FakeNotes(index.n_pieces, 150)
    kw = dict(templates=notes, template_weight=1.0)
    early = play(reranker(index, **kw), notes, 3, start_cell=20, seconds=6.0, candidates=[0, 1, 3])
    late = play(reranker(index, **kw), notes, 3, start_cell=20, seconds=6.0, candidates=[0, 1], late=[3])
    assert dict((p, s) for p, s, _, _ in late)[3] == pytest.approx(dict((p, s) for p, s, _, _ in early)[3], rel=0.05)


def test_a_candidate_back_from_a_moment_away_has_the_template_alignment_it_would_have_had():
    index = make_index()
    notes = FakeNotes(index.n_pieces, 150)
    rng = np.random.default_rng(8)
    # piece 4's templates sound somewhat like piece 3's, which is played: a real template path, below 3's
    t = notes._cells[3] + 0.6 * np.abs(rng.standard_normal(notes._cells[3].shape))
    notes._cells[4] = (t / np.linalg.norm(t, axis=1, keepdims=True)).astype(np.float32)

    def run(gap):
        """Piece 4 left out (so dropped, the pool holding one) for the updates in ``gap``."""
        r = reranker(index, templates=notes, template_weight=1.0, candidates=1 if gap else 8)
        rng = np.random.default_rng(5)
        for k in range(int(6.0 / UPDATE_S)):
            q = rng.standard_normal(r._E.shape[1])
            r.add(q / np.linalg.norm(q))
            r.add_frame(notes.cells(3)[20 + k // 4] + 0.05 * np.abs(rng.standard_normal(BINS)), True)
            r.consider([3] if k in gap else [3, 4], keep=3 if k in gap else 4)
            if k == gap.stop:  # back, and waiting for the next cell as a newcomer does
                assert r._pool[4].notes_pending is not None
        return {p: (s, pos, tempo) for p, s, pos, tempo in r.ranking()}

    stayed, back = run(range(0)), run(range(60, 70))
    assert back[4] == stayed[4] and back[4][0] > 5.0


def test_newcomers_waiting_for_templates_never_crowd_out_the_leader():
    # every update offers a stream of new pieces (more than the pool holds): the newcomers waiting
    # for their templates do not count against the pool, so they never crowd out judged candidates
    index = make_index(n_pieces=20)
    notes = FakeNotes(index.n_pieces, 150)
    r = reranker(index, templates=notes, template_weight=1.0, candidates=4, max_new=2)
    rng = np.random.default_rng(5)
    for k in range(int(6.0 / UPDATE_S)):
        q = rng.standard_normal(r._E.shape[1])
        r.add(q / np.linalg.norm(q))
        r.add_frame(notes.cells(3)[20 + k // 4] + 0.05 * np.abs(rng.standard_normal(BINS)), True)
        r.consider([3] + [4 + (2 * k + j) % 16 for j in range(6)])
        waiting = sum(c.notes_pending is not None for c in r._pool.values())
        assert len(r._pool) - waiting <= 4 and waiting <= 2 * 4  # max_new an update, one cell of updates
        if k > 20:
            assert r.ranking()[0][0] == 3  # the played piece, once it leads, stays in the pool and leads


def test_the_engine_with_template_evidence_names_a_render(chroma_bundle, corpus_index, rendered):
    """End to end: frames reach the re-ranker, the templates come from the index's notes."""
    from follower.bundle import load_bundle
    from follower.engine import FOLLOWING, Engine, EngineConfig
    from follower.index import load_index
    from studies.decoders import read_audio

    bundle, index = load_bundle(chroma_bundle), load_index(corpus_index)
    assert index.has_notes
    signal, rate = read_audio(rendered["path"])
    engine = Engine(bundle, index, input_rate_hz=rate, config=EngineConfig(rerank_template_weight=0.5))
    ups = []
    for start in range(0, len(signal), 1024):
        ups += engine.push(signal[start:start + 1024], last=start + 1024 >= len(signal))
    assert engine._reranker.cell_steps > 0
    assert ups[-1].reranked[0][0] == rendered["piece"]
    assert any(u.state == FOLLOWING and u.piece == rendered["piece"] for u in ups)
    assert not any(u.state == FOLLOWING and u.piece != rendered["piece"] for u in ups)


def test_a_newcomer_ranks_by_its_embeddings_until_the_next_cell_then_has_its_templates():
    index = make_index()
    notes = FakeNotes(index.n_pieces, 150)
    r = reranker(index, templates=notes, template_weight=1.0)
    rng = np.random.default_rng(5)
    for k in range(40):  # 2 s of piece 3's cells, 10 cells; nothing is a candidate yet
        q = rng.standard_normal(r._E.shape[1])
        r.add(q / np.linalg.norm(q))
        r.add_frame(notes.cells(3)[20 + k // 4], True)
    r.consider([3])
    cand = r._pool[3]
    assert cand.notes_pending is not None and cand.notes is None
    assert r._score(cand) == max(float(cand.best[0]), 0.0)  # no template score yet, none made up
    for k in range(4):  # the next cell: collected, and aligned over the 10 kept cells and this one
        r.add_frame(notes.cells(3)[30], True)
    assert cand.notes_pending is None and cand.notes is not None
    assert cand.notes.best[0] > 5.0 and r._score(cand) >= cand.notes.best[0]


def test_templates_built_in_the_background_are_those_built_at_once(chroma_bundle, corpus_index):
    from follower.bundle import load_bundle
    from follower.index import load_index

    bundle, index = load_bundle(chroma_bundle), load_index(corpus_index)
    ahead, now = TemplateScorer(index, bundle.config.features), TemplateScorer(index, bundle.config.features)
    built = {p: ahead.later(p, lambda cells: None) for p in range(index.n_pieces)}
    for p in range(index.n_pieces):
        ahead.collect(p, built[p])
        np.testing.assert_array_equal(ahead.cells(p), now.cells(p))
    assert set(ahead._cells) == set(range(index.n_pieces))  # every build collected


def test_templates_off_restores_the_lock_rules_fitted_without_them_unless_the_config_has_its_own():
    from follower.confidence import FITTED, FITTED_EMBEDDINGS
    from follower.engine import EngineConfig, templates_off

    assert EngineConfig().calibration == FITTED and EngineConfig().rerank_template_weight > 0
    off = templates_off()
    assert (off.rerank_template_weight, off.calibration, off.rerank_min_p) == (0.0, FITTED_EMBEDDINGS, 0.0)
    # the re-rank rule not backed by P holds its lead, among the top 4 offered, as it shipped then
    assert (off.rerank_lock_s, off.rerank_offered, off.rerank_min_zs) == (0.25, 4, 8.0)
    own = templates_off(EngineConfig(calibration=None, rerank_min_p=0.5))
    assert (own.rerank_template_weight, own.calibration, own.rerank_min_p) == (0.0, None, 0.5)


def test_the_scorer_keeps_the_most_recently_used_pieces_and_rebuilds_a_dropped_one_the_same(monkeypatch):
    from follower import note_evidence as ne

    monkeypatch.setattr(ne, "PIECES_KEPT", 2)
    built = []
    scorer = ne.TemplateScorer.__new__(ne.TemplateScorer)
    scorer._start_cache()
    scorer._make = lambda p: built.append(p) or np.full((3, 4), float(p))
    first = scorer.cells(0).copy()
    scorer.cells(1)
    scorer.cells(0)  # 0 used again: 1 is now the least recent
    scorer.cells(2)
    assert list(scorer._cells) == [0, 2]
    np.testing.assert_array_equal(scorer.cells(0), first)
    scorer.cells(1)  # dropped, built again
    assert built == [0, 1, 2, 1]


@pytest.mark.parametrize("cells_before", [0, 10, 200])  # none yet, some, more than the history keeps
def test_the_catch_up_made_on_the_template_thread_is_the_alignment_over_the_kept_cells(cells_before):
    from follower.rerank import Candidate, _align

    index = make_index()
    notes = FakeNotes(index.n_pieces, 150)
    r = reranker(index, templates=notes, template_weight=1.0, history_s=20.0)
    rng = np.random.default_rng(5)
    frames = [notes.cells(3)[(20 + k // 4) % 150] + 0.05 * np.abs(rng.standard_normal(BINS))
              for k in range(4 * (cells_before + 1))]
    for f in frames[:-4]:
        r.add_frame(f, True)
    r.consider([3])
    for f in frames[-4:]:  # the next cell: collected, then this cell aligned as for every candidate
        r.add_frame(f, True)
    cand = r._pool[3]
    # the reference: every kept cell aligned at once, on the update thread
    kept = min(r.cell_steps, len(r._cells))
    ring = np.arange(r.cell_steps - kept, r.cell_steps) % len(r._cells)
    m = len(notes.cells(3))
    ref = Candidate(3, np.full((2, m), -np.inf), np.zeros((2, m, 2), np.int64), np.zeros(4))
    z = notes.z(r._cells[ring], 3, r._cell_mean[ring], r._cell_sd[ring])
    _align(z, r.template_offset_z, r.cell_s, r.cell_steps - kept, ref.score, ref.origin, ref.best)
    assert cand.notes_pending is None
    # the products' last bits may differ (float32 products, one of many rows against one of one)
    np.testing.assert_allclose(cand.notes.score, ref.score, rtol=1e-6, atol=1e-5)
    np.testing.assert_array_equal(cand.notes.origin, ref.origin)
    np.testing.assert_allclose(cand.notes.best, ref.best, rtol=1e-6, atol=1e-5)


def test_template_cells_are_float32_and_their_z_scores_those_of_float64_products():
    rng = np.random.default_rng(8)
    cells = template_cells(np.abs(rng.standard_normal((4 * 300 + 2, BINS))))
    assert cells.dtype == np.float32 and len(cells) == 301
    np.testing.assert_allclose(np.linalg.norm(cells, axis=1), 1.0, atol=1e-6)
    audio = np.abs(rng.standard_normal((20, BINS)))
    audio /= np.linalg.norm(audio, axis=1, keepdims=True)
    mean, sd = rng.uniform(0.3, 0.6, 20), rng.uniform(0.05, 0.2, 20)
    z = standardised_cosines(audio, cells, mean, sd)
    exact = (audio @ cells.astype(np.float64).T - mean[:, None]) / sd[:, None]
    assert z.dtype == np.float64 and z.shape == (20, 301)
    np.testing.assert_allclose(z, exact, atol=1e-4)  # a cosine to float32's 1e-7, over an sd of 0.05 or more


def test_built_cells_are_built_once_for_every_engine_and_thread_and_kept_within_a_budget():
    import threading
    import time

    from follower.note_evidence import BuiltCells

    calls = []

    def make(p):  # 40 frames of 50 ms templates: 10 cells of 4 bands, 160 bytes
        calls.append(p)
        time.sleep(0.05)  # long enough for the other threads to ask meanwhile
        if p == 99:
            raise ValueError("a bad piece")
        return np.full((40, 4), float(p + 1), np.float32)

    built = BuiltCells(make, budget_bytes=3 * 160)
    got = []
    threads = [threading.Thread(target=lambda: got.append(built.get(7))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert calls == [7] and len(got) == 4 and all(g is got[0] for g in got)  # one build, one array for all
    np.testing.assert_array_equal(got[0], template_cells(make(7)))
    calls.remove(7)
    for p in (1, 2, 3):
        built.get(p)
    assert list(built._cells) == [1, 2, 3] and built.builds == 4  # 7, least recently asked for, went first
    built.get(7)
    assert calls == [7, 1, 2, 3, 7]  # ... and is built again, the same
    with pytest.raises(ValueError):
        built.get(99)
    with pytest.raises(ValueError):
        built.get(99)  # not remembered as being built: asked again, built again
    assert calls.count(99) == 2


def test_templates_built_ahead_are_handed_over_when_ready_and_never_waited_for():
    from concurrent.futures import ThreadPoolExecutor

    from follower import note_evidence as ne

    gate, calls = __import__("threading").Event(), []

    def make(p):
        calls.append(p)
        gate.wait(5)
        return np.full((8, 4), float(p), np.float32)

    built = ne.BuiltCells(make)
    thread = ThreadPoolExecutor(max_workers=1)
    built.ahead(5, thread.submit)
    assert built.templates(5) is None  # still being built: not waited for
    built.ahead(5, thread.submit)  # asked again: not built twice
    gate.set()
    thread.shutdown(wait=True)
    np.testing.assert_array_equal(built.templates(5), make(5))
    assert calls == [5, 5]  # (the second: this test's own call)
    with ThreadPoolExecutor(max_workers=1) as other:
        for p in range(ne.AHEAD_KEPT + 1):
            built.ahead(10 + p, other.submit)
    assert built.templates(5) is None and len(built._ahead) == ne.AHEAD_KEPT  # the oldest went first
    assert built.templates(123) is None


def test_the_engines_of_a_pair_and_of_later_files_share_the_built_cells(chroma_bundle, corpus_index):
    from follower.bundle import load_bundle
    from follower.index import load_index
    from follower.note_evidence import built_cells
    from follower.two_speeds import TwoSpeedEngine

    bundle, index = load_bundle(chroma_bundle), load_index(corpus_index)
    first = TwoSpeedEngine(bundle, index, input_rate_hz=22050)
    later = TwoSpeedEngine(bundle, index, input_rate_hz=22050)  # the next file of a replay
    store = built_cells(index, bundle.config.features)
    scorers = [e.main._reranker._templates for e in (first, later)] + [first.slow._reranker._templates]
    before = store.builds  # (the re-rankers have asked for piece 0, to learn the cells' size)
    cells = [s.cells(3) for s in scorers]
    assert store.builds == before + 1 and all(c is cells[0] for c in cells)
    assert built_cells(load_index(corpus_index), bundle.config.features) is not store  # another index: its own


def test_the_fine_aligner_gets_templates_at_its_own_settings_and_the_re_ranking_keeps_its_own(chroma_bundle,
                                                                                            corpus_index):
    """The re-ranking's cells (and so the lock calibration's evidence) are built with RERANK_HARMONIC_DECAY;
    a lock's fine aligner takes templates built ahead at its own FineConfig, never the re-ranking's."""
    from concurrent.futures import Future

    from follower.aligner import FineConfig, score_templates, template_key
    from follower.bundle import load_bundle
    from follower.index import load_index
    from follower.note_evidence import built_cells, rerank_template_config

    def at_once(job):
        done = Future()
        done.set_result(job())
        return done

    bundle, index = load_bundle(chroma_bundle), load_index(corpus_index)
    features, fine, rerank = bundle.config.features, FineConfig(), rerank_template_config()
    assert template_key(fine) != template_key(rerank)
    store = built_cells(index, features)
    np.testing.assert_array_equal(store.get(3), template_cells(score_templates(*index.notes(3), features, rerank)))
    store.ahead(3, at_once, fine)
    np.testing.assert_array_equal(store.templates(3, fine), score_templates(*index.notes(3), features, fine))
    assert store.templates(3, rerank) is None and store.templates(3) is None  # other settings: not these
