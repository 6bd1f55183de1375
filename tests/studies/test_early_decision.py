"""The early-decision study's bookkeeping, on made-up updates."""

from types import SimpleNamespace

from studies.early_decision import item_times, stable_from


def test_stable_from_is_the_start_of_the_final_run_of_truths():
    assert stable_from([0, 1, 2, 3, 4], [True, False, True, True, True]) == 2
    assert stable_from([0, 1, 2], [True, True, False]) == float("inf")
    assert stable_from([0, 1], [True, True]) == 0


def test_item_times_reads_candidates_reranking_and_lock():
    def u(t, cands, rer, state, piece):
        return SimpleNamespace(t=t, candidates=[(c, 1.0) for c in cands], reranked=[(r, 1.0) for r in rer],
                               state=state, piece=piece)

    ups = [u(1, ["b"], [], "searching", None), u(2, ["b", "a"], ["a"], "searching", None),
           u(3, ["a", "b"], ["a"], "searching", None), u(4, ["a"], ["a"], "following", "a"),
           u(5, ["a"], ["a"], "following", "a")]
    times = item_times(ups, "a")
    assert times == {"in_candidates_s": 2, "verified_leader_s": 3, "reranked_leader_s": 2, "locked_s": 4}
