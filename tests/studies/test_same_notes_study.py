"""The study behind the note test's threshold (studies/same_notes.py), on made-up chorales."""

import numpy as np

from studies import same_notes as study
from tests.follower.test_same_notes import chorale, reharmonised, requantised


def as_study(notes):
    onset, end, pitch = notes
    return onset.astype(np.float64), end.astype(np.float64), pitch.astype(np.int64)


def test_copies_are_found_over_whole_pieces_at_their_transposition():
    a, other = as_study(chorale(seed=0)), as_study(chorale(seed=5))
    copy = as_study(requantised(chorale(seed=0)))
    up3 = (copy[0], copy[1], copy[2] + 3)  # written in another key, as some roll-set copies are
    found = study.find_copies([study.whole_roll(a)], [study.whole_roll(n) for n in (other, up3, copy)], 0.5)
    assert found == [(0, 1, -3), (0, 2, 0)]
    assert study.shifted(up3, -3)[2].tolist() == copy[2].tolist()


def test_the_best_local_overlap_separates_a_copy_from_another_setting():
    rng = np.random.default_rng(0)
    a = as_study(chorale(seed=0))
    copy = study.best_local(a, as_study(requantised(chorale(seed=0))), 4, 8.0, rng)
    setting = study.best_local(a, as_study(reharmonised(chorale(seed=0))), 4, 8.0, rng)
    assert min(copy) >= study.SAME_NOTES > max(setting)


def test_missing_inputs_are_one_clear_line(tmp_path, capsys):
    assert study.main(["--rolls", str(tmp_path), "--chorales", str(tmp_path)]) == 2
    assert "splits.csv not found" in capsys.readouterr().err
    (tmp_path / "splits.csv").write_text("file,split,tune_family\n")
    assert study.main(["--rolls", str(tmp_path / "none"), "--chorales", str(tmp_path)]) == 2
    assert "no .mid files" in capsys.readouterr().err
