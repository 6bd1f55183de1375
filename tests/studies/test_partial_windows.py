"""The partial-window study: what it silences, and one line for a dataset that is not there."""

import numpy as np

from studies import partial_windows


def test_partial_batch_silences_all_but_the_last_share():
    x = np.ones((2, 1, 3, 42), np.float32)
    y = partial_windows.partial_batch(x, 0.5)
    assert not y[..., :21].any() and (y[..., 21:] == 1).all() and (x == 1).all()
    assert (partial_windows.partial_batch(x, 1.0) == 1).all()


def test_a_missing_dataset_is_one_line(tmp_path, capsys):
    bundle = partial_windows.Path(__file__).resolve().parents[2] / "exported" / "default"
    assert partial_windows.main([str(bundle), "--dataset", str(tmp_path / "nothing")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "training dataset build" in err[0]
