"""The time-to-identification study on a made-up trace."""

from follower.policy import SEARCHING, Scores
from studies.early_id import item_row, stable_from


def test_stable_from_is_the_start_of_the_last_run_to_the_end():
    assert stable_from([0, 1, 2, 3], [True, False, True, True]) == 2
    assert stable_from([0, 1, 2], [True, True, True]) == 0
    assert stable_from([0, 1, 2], [True, True, False]) == float("inf")


def test_item_row_times_the_right_piece_through_the_stages():
    from follower.engine import EngineConfig

    def scores(ranked, reranked):
        return Scores(state=SEARCHING, piece=None, ranked=ranked, support={p: 1.0 for p in ranked},
                      where={p: (1.0, 1.0) for p in ranked}, history_s=1.0, last_sound_t_s=0.0,
                      reranked=tuple((p, z, 1.0, 1.0) for p, z in reranked))

    steps = [(0.5, scores([], []), (None, 0.0, 0.0)),
             (1.0, scores([5, 3], [(5, 2.0)]), (5, 1.0, 0.5)),
             (1.5, scores([3, 5], [(5, 3.0), (3, 2.5)]), (3, 1.0, 1.0)),
             (2.0, scores([3, 5], [(3, 4.0), (5, 3.0)]), (3, 1.2, 1.5))]
    row = item_row({"piece": 3, "steps": steps}, EngineConfig(calibration=None))
    assert (row["first_window_s"], row["verified_s"], row["candidate_s"], row["rerank_lead_s"]) == (1.0, 1.0, 1.5, 2.0)
    assert row["lock_s"] == float("inf")  # no rule reaches its threshold on such weak evidence
