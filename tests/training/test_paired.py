import numpy as np
import pytest

from training.evaluate.paired import mrr_difference, paired_rows, paired_table


def test_a_clear_gain_is_better_and_noise_is_a_tie():
    rng = np.random.default_rng(1)
    base = rng.integers(1, 20, size=2000)
    better = np.maximum(1, base - 3)  # every pair ranked up to 3 places higher
    d = mrr_difference(base, better)
    assert d["diff"] == pytest.approx(np.mean(1 / better) - np.mean(1 / base))
    assert 0 < d["lo"] < d["diff"] < d["hi"] and d["n"] == 2000
    shuffled = rng.permutation(base)  # the same ranks on other pairs: no systematic difference
    d = mrr_difference(base, shuffled)
    assert d["lo"] < 0 < d["hi"]


def test_the_interval_is_reproducible_and_refuses_other_pairs():
    a, b = [1, 2, 3, 4, 5] * 40, [1, 1, 3, 5, 5] * 40
    assert mrr_difference(a, b) == mrr_difference(a, b)
    with pytest.raises(ValueError, match="same pairs"):
        mrr_difference(a, b[:-1])


def test_the_table_compares_every_later_run_with_the_first():
    ranks = {"test": {"audio2score": [1, 2, 4] * 50, "score2audio": [1, 1, 2] * 50}}
    worse = {"test": {"audio2score": [2, 3, 8] * 50, "score2audio": [1, 1, 2] * 50}}
    results = {"runs/shipped": {"pair_ranks": ranks}, "runs/new": {"pair_ranks": worse},
               "runs/other_pairs": {"pair_ranks": {"test": {"audio2score": [1, 2], "score2audio": [1, 2]}}}}
    rows = paired_rows(results)
    assert [(r["run"], r["direction"]) for r in rows] == [("runs/new", "audio2score"), ("runs/new", "score2audio")]
    table = paired_table(results).splitlines()
    assert table[0].startswith("Paired against shipped")
    assert table[4].startswith("| new | test | audio2score |") and table[4].endswith("worse |")
    assert table[5].endswith("+0.000 [+0.000, +0.000] tie |")
    assert paired_table({"runs/only": {"pair_ranks": ranks}}) == ""
