"""Seconds-long train -> export -> onnxruntime load on 16 synthetic pairs (the CI smoke run)."""

import csv

import numpy as np
import pytest
import torch

from follower.bundle import load_bundle
from follower.errors import ConfigError
from follower.features import FeatureConfig
from follower.snippets import SnippetConfig
from training.run_dir import load_best
from training.cli import main as training_main
from training.model.encoders import ModelConfig
from training.data.toy import ToySplit
from training.fit.loop import TrainConfig, train

CFG = TrainConfig(batch_size=8, epoch_pairs=16, valid_pairs=8, patience=1, refinements=1, max_epochs=2)


def run_train(run, cfg=CFG, **kw):
    return train(ToySplit(16, seed=0), ToySplit(8, seed=1), run, cfg, model_config=ModelConfig(),
                 snippet_config=SnippetConfig(), feature_config=FeatureConfig(), progress=False, **kw)


def test_train_export_load(tmp_path):
    run = tmp_path / "run"
    summary = run_train(run)
    assert summary["epochs"] == 2 and summary["best_epoch"] in (1, 2)
    rows = list(csv.DictReader(open(run / "log.csv")))
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    assert all(np.isfinite(float(r[k])) for r in rows for k in ("train_loss", "valid_loss", "valid_mrr"))
    assert (run / "loss.png").stat().st_size > 1000
    assert training_main(["export", str(run), "-o", str(tmp_path / "bundle")]) == 0
    bundle = load_bundle(tmp_path / "bundle")
    model, snip, feat, info = load_best(run)
    assert info["best_epoch"] == summary["best_epoch"]
    x = ToySplit(4, seed=5).audio_batch(np.arange(4))
    with torch.no_grad():
        want = model.audio(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(bundle.audio(x), want, atol=1e-4)


def test_resume_continues_from_checkpoint(tmp_path, capsys):
    run = tmp_path / "run"
    run_train(run, TrainConfig(**{**CFG.to_dict(), "max_epochs": 1}))
    summary = run_train(run)  # same settings, higher cap: resumes at epoch 2
    assert "resuming" in capsys.readouterr().out
    assert summary["epochs"] == 2
    assert len(list(csv.DictReader(open(run / "log.csv")))) == 2


def test_a_run_from_before_the_loss_was_a_setting_resumes(tmp_path, capsys):
    run = tmp_path / "run"
    cfg = TrainConfig(**{**CFG.to_dict(), "loss": "infonce", "max_epochs": 1})
    run_train(run, cfg, info={"variant": {"loss": "infonce", "temperature": 0.1}})
    ck = torch.load(run / "checkpoint.pt", weights_only=False)
    for key in ("loss", "temperature"):  # as such checkpoints were written
        del ck["train_config"][key]
    torch.save(ck, run / "checkpoint.pt")
    summary = run_train(run, TrainConfig(**{**cfg.to_dict(), "max_epochs": 2}),
                        info={"variant": {"loss": "infonce", "temperature": 0.1}})
    assert "resuming" in capsys.readouterr().out and summary["epochs"] == 2
    with pytest.raises(ConfigError, match="other settings"):  # the hinge loss on it is still refused
        run_train(run, TrainConfig(**{**CFG.to_dict(), "max_epochs": 3}))


def test_resume_with_other_settings_refused(tmp_path):
    run = tmp_path / "run"
    run_train(run, TrainConfig(**{**CFG.to_dict(), "max_epochs": 1}))
    with pytest.raises(ConfigError, match="other settings"):
        run_train(run, TrainConfig(**{**CFG.to_dict(), "lr": 0.01}))


def test_bad_train_config_one_line():
    with pytest.raises(ConfigError, match="batch_size=1 must be >= 2"):
        TrainConfig(batch_size=1)
    with pytest.raises(ConfigError, match="lr=0 must be positive"):
        TrainConfig(lr=0)


def test_export_cli_errors_are_one_line(tmp_path, capsys):
    assert training_main(["export", str(tmp_path / "nope"), "-o", str(tmp_path / "b")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "no best.pt" in err


def test_early_stopping_and_lr_halving_rounds(tmp_path, monkeypatch):
    import training.fit.loop as train_mod

    scripted = iter([0.5, 0.4, 0.6, 0.3, 0.2])
    monkeypatch.setattr(train_mod, "validate",
                        lambda *a, **k: {"valid_loss": 1.0, "valid_mrr": next(scripted), "valid_r@1": 0.0})
    cfg = TrainConfig(**{**CFG.to_dict(), "patience": 1, "refinements": 1, "max_epochs": 10})
    summary = run_train(tmp_path / "run", cfg)
    rows = list(csv.DictReader(open(tmp_path / "run" / "log.csv")))
    assert [int(r["round"]) for r in rows] == [0, 0, 1, 1]
    assert [float(r["lr"]) for r in rows] == [0.002, 0.002, 0.001, 0.001]
    assert summary == {"best_epoch": 3, "best_valid_mrr": 0.6, "epochs": 4, "stopped": "early_stopping"}
