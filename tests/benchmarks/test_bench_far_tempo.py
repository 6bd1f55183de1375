"""Players far from the written tempo: the ranges the command takes and the table it writes."""

import numpy as np
import pytest

from benchmarks.far_tempo import CONFIGS, far_tempo_table, parse_tempos
from benchmarks.material import Item
from benchmarks.metrics import ACCURACY_TIMES_S, ItemScores


def test_tempo_ranges_are_read_and_bad_ones_named():
    assert parse_tempos("0.35-0.5,1.6-2.0") == [(0.35, 0.5), (1.6, 2.0)]
    with pytest.raises(ValueError, match="'0.5' is not LO-HI"):
        parse_tempos("0.35-0.5,0.5")
    with pytest.raises(ValueError, match="'0.7-0.5' needs"):
        parse_tempos("0.7-0.5")


def test_the_command_refuses_a_bad_range_in_one_line(capsys):
    from benchmarks.far_tempo import main
    from follower.cliutil import module_main

    assert module_main(main, ["--tempos", "slow"]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--tempos" in err[0]


def scores(errors_s, stable_s=2.0):
    right = {str(int(t)): True for t in ACCURACY_TIMES_S} | {"end": True}
    return ItemScores(right, stable_s, np.asarray(errors_s), 1.0, np.array([2.0]), np.array([0.0]), np.array([True]))


def test_the_table_has_a_row_per_tempo_material_and_follower():
    items = [Item("a", "chorale", "a.flac", "a.json", "chorales", "p", "p.mid", "p", 30.0),
             Item("b", "piano", "b.flac", "b.json", "piano", "q", "q.mid", "q", 45.0)]
    per_config = {c: {"a": scores([0.1, 0.2, 0.6, 0.7]), "b": scores([0.1])} for c in CONFIGS}
    lines = far_tempo_table([((0.35, 0.5), per_config, items)]).splitlines()
    assert len(lines) == 2 + 2 * len(CONFIGS)
    assert lines[2].startswith("| 0.35-0.5 | Synthetic chorales | shipped (two speeds) | 2.0 s / 2.0 s | 100 % |")
    assert lines[2].endswith("| 50 % | 50 % |")  # 2 of 4 updates within 0.25 s and within 0.5 s
    assert lines[-1].startswith("| 0.35-0.5 | Synthetic piano | one engine |")
