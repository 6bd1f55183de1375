"""The wrong-follow measure over a follower's JSON-lines records."""

import pytest

from studies.wrong_follow import longest_wrong_s, main


def rec(t, state, piece):
    return {"t": t, "state": state, "piece": piece}


def test_the_longest_run_following_a_wrong_piece_counts_only_following_records():
    recs = ([rec(0.05 * k, "searching", None) for k in range(1, 20)]
            + [rec(1.0 + 0.05 * k, "following", "b") for k in range(30)]   # 1.5 s on b (wrong)
            + [rec(2.5 + 0.05 * k, "lost", "b") for k in range(40)]         # lost: not following
            + [rec(4.5 + 0.05 * k, "following", "b") for k in range(10)]    # 0.5 s more, apart
            + [rec(5.0 + 0.05 * k, "following", "a") for k in range(50)])
    assert longest_wrong_s(recs, "a") == pytest.approx(1.5)
    assert longest_wrong_s(recs, "b") == pytest.approx(2.5)  # the run on a to the end
    assert longest_wrong_s([rec(0.05, "searching", None)], "a") == 0.0


def test_it_wants_pairs_of_result_and_logs(capsys):
    assert main(["only_one.json"]) == 2
    assert "usage" in capsys.readouterr().err


def test_a_missing_result_is_one_line_not_a_traceback(tmp_path, capsys):
    assert main([str(tmp_path / "nope.json"), str(tmp_path)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and len(err.splitlines()) == 1
