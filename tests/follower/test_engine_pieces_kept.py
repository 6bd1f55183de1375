"""The engine keeps trackers and fine aligners for a few recently locked pieces only.

Every piece it ever locked used to keep its tracker and score templates for the rest of
the run: music outside the corpus, "followed" as one chorale after another, grew an hour's
soak by 6 MB. Bounded now, least recently locked first out.
"""

from follower import engine as engine_mod
from follower.bundle import load_bundle
from follower.engine import FOLLOWING, Engine
from follower.index import load_index


def test_only_the_most_recently_locked_pieces_are_kept(chroma_bundle, corpus_index, monkeypatch):
    monkeypatch.setattr(engine_mod, "PIECES_KEPT", 3)
    engine = Engine(load_bundle(chroma_bundle, threads=1), load_index(corpus_index), input_rate_hz=22050)
    for piece in (0, 1, 2, 3, 1, 4):
        engine._lock(piece, 2.0, 1.0)
        assert engine.piece == piece and engine.state == FOLLOWING
        assert engine.tracker is engine._trackers[piece]
        assert len(engine._trackers) <= 3
    assert list(engine._trackers) == [3, 1, 4]  # 1 was locked again, so 2 went before it
    if engine._fine_on:
        assert list(engine._aligners) == [3, 1, 4] and engine.aligner is engine._aligners[4]
    kept = engine._trackers[1]
    engine._lock(1, 5.0, 1.0)
    assert engine.tracker is kept  # a kept piece is not rebuilt
    engine._lock(0, 3.0, 1.0)  # a piece let go is built again, and follows from where it is put
    assert engine.piece == 0 and list(engine._trackers) == [4, 1, 0]
    assert abs(engine.tracker.position_s - 3.0) < 0.5
