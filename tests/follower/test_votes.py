"""The two vote tallies: offset cells and the accumulated piece evidence."""

import numpy as np
import pytest

from follower.votes import OffsetVotes, PieceEvidence


def test_evidence_decays_before_each_new_vote():
    e = PieceEvidence(3, decay_s=2.0)
    e.add(np.array([0]), np.array([1.0]), 1.0)
    e.add(np.array([1]), np.array([1.0]), 1.0)
    assert e.totals == pytest.approx([np.exp(-0.5), 1.0, 0.0])
    lead, ratio, heard_s = e.leader()
    assert lead == 1 and ratio == pytest.approx(np.exp(0.5)) and heard_s == 2.0


def test_evidence_sums_the_neighbours_of_one_update_per_piece():
    e = PieceEvidence(4, decay_s=30.0)
    e.add(np.array([2, 2, 0, 3]), np.array([0.4, 0.3, 0.2, 0.1]), 0.05)
    assert e.totals == pytest.approx([0.2, 0.0, 0.7, 0.1])
    assert e.leader() == (2, pytest.approx(3.5), 0.05)


def test_evidence_ratio_is_infinite_when_only_one_piece_was_voted_for():
    e = PieceEvidence(5, decay_s=30.0)
    e.add(np.array([4, 4]), np.array([0.5, 0.5]), 0.05)
    assert e.leader() == (4, float("inf"), 0.05)
    one = PieceEvidence(1, decay_s=30.0)   # a corpus of one piece
    one.add(np.array([0]), np.array([1.0]), 0.05)
    assert one.leader() == (0, float("inf"), 0.05)


def test_exact_ties_give_ratio_one():
    e = PieceEvidence(6, decay_s=30.0)
    e.add(np.array([1, 4, 2]), np.array([0.4, 0.4, 0.2]), 0.05)
    lead, ratio, _ = e.leader()
    assert lead in (1, 4) and ratio == 1.0


def test_nothing_heard_and_reset_give_no_leader():
    e = PieceEvidence(3, decay_s=30.0)
    assert e.leader() == (None, 0.0, 0.0)
    e.add(np.array([1]), np.array([1.0]), 0.05)
    e.reset()
    assert e.leader() == (None, 0.0, 0.0) and not e.totals.any()


def test_offset_votes_are_soft_binned_between_the_two_nearest_cells():
    v = OffsetVotes(k=2, horizon_updates=10)
    v.add(0.0, np.array([3]), np.array([1.25]), np.array([1.0]))  # bins of 1 s centred on 0.5, 1.5, ...
    piece, offset, mass, total = v.cells(0.0, decay_s=3.0, bin_s=1.0)
    assert piece.tolist() == [3, 3] and offset.tolist() == [0.5, 1.5]
    assert mass == pytest.approx([0.25, 0.75]) and total == pytest.approx(1.0)


def test_offset_votes_decay_and_fall_out_of_the_horizon():
    v = OffsetVotes(k=1, horizon_updates=2)
    v.add(0.0, np.array([0]), np.array([-2.5]), np.array([1.0]))
    piece, offset, mass, total = v.cells(3.0, decay_s=3.0, bin_s=1.0)
    # a vote on a cell centre keeps all its mass there (its other bin gets 0)
    assert offset[np.argmax(mass)] == -2.5 and mass.max() == pytest.approx(np.exp(-1.0))
    assert total == pytest.approx(np.exp(-1.0))
    v.add(3.0, np.array([1]), np.array([0.5]), np.array([1.0]))
    v.add(3.05, np.array([1]), np.array([0.5]), np.array([1.0]))   # overwrites the oldest update
    piece, offset, mass, _ = v.cells(3.05, decay_s=3.0, bin_s=1.0)
    assert set(piece.tolist()) == {1}
    v.reset()
    assert v.cells(3.05, decay_s=3.0, bin_s=1.0)[3] == 0.0
