"""`training distill`: a small score encoder learns the shipped one's embeddings and joins the bundle."""

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from follower.bundle import SCORE_ONNX, SCORE_SMALL_ONNX, Encoder, load_bundle, read_config
from follower.errors import ConfigError
from follower.snippets import roll_input
from training.cli.distill import parse_corpus
from training.fit.distill import DistillConfig, add_to_bundle, embed, train_student
from training.fit.distill_data import DistillDataConfig, split_windows, teacher_embeddings
from training.model.student import StudentConfig, StudentScoreEncoder

REPO = Path(__file__).resolve().parents[2]
SHIPPED = REPO / "exported" / "default"
CHORALES = REPO.parent / "shared" / "data" / "midi" / "bach-chorales"


def test_the_student_maps_rolls_to_unit_vectors_and_refuses_other_shapes():
    model = StudentScoreEncoder(StudentConfig()).eval()
    x = (torch.rand(5, 2, 88, 42) < 0.05).float()
    z = model(x)
    assert z.shape == (5, 32)
    np.testing.assert_allclose(z.norm(dim=1).detach().numpy(), 1.0, atol=1e-5)
    with pytest.raises(ConfigError, match="expected \\(n, 2, 88, 42\\)"):
        model(torch.zeros(1, 1, 88, 42))
    with pytest.raises(ConfigError, match="four positive integers"):
        StudentConfig(widths=(16, 32, 64))


def test_corpus_arguments_take_an_optional_cap():
    assert parse_corpus(["a/b", "c.mat:20"]) == (("a/b", "c.mat"), (0, 20))
    with pytest.raises(ConfigError, match="whole number"):
        parse_corpus(["a:x"])


@pytest.fixture(scope="module")
def windows(tmp_path_factory):
    if not (SHIPPED / SCORE_ONNX).is_file() or not CHORALES.is_dir():
        pytest.skip("the shipped bundle or the chorale corpus is not there")
    root = tmp_path_factory.mktemp("corpus")
    # six training and two validation chorales (per the corpus's splits.csv), copied with it
    import csv

    rows = list(csv.DictReader(open(CHORALES / "splits.csv")))
    pick = [r for r in rows if r["split"] == "train"][:6] + [r for r in rows if r["split"] == "valid"][:2]
    with open(root / "splits.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(pick)
    for r in pick:
        shutil.copyfile(CHORALES / r["file"], root / r["file"])
    cfg = read_config(SHIPPED)
    data_cfg = DistillDataConfig(corpora=(str(root),), max_per_piece=(60,))
    teacher = Encoder(SHIPPED / SCORE_ONNX)
    out = {}
    for split in ("train", "valid"):
        w = split_windows(data_cfg, split, cfg.snippets, cfg.features.frame_rate_hz, progress=False)
        assert len(w.pieces) == (6 if split == "train" else 2)
        out[split] = {"rolls": w.rolls, "teacher": teacher_embeddings(teacher, w.rolls, cfg.snippets, progress=False)}
    assert set(np.unique(out["train"]["rolls"])) <= {0, 1}
    return cfg, out


def test_distillation_moves_the_student_towards_the_teacher_and_the_bundle_serves_it(windows, tmp_path):
    cfg, data = windows
    model, rows = train_student(data["train"], data["valid"], cfg.snippets, StudentConfig(),
                                DistillConfig(minutes=0.3, batch=64, eval_every=20), log=lambda s: None)
    assert rows[0]["step"] == 0 and rows[-1]["step"] > 20
    best = max(r["valid_cosine"] for r in rows)
    assert best > rows[0]["valid_cosine"] + 0.1  # it learned something of the teacher's space
    cos = (embed(model, data["valid"]["rolls"], cfg.snippets) * data["valid"]["teacher"]).sum(1)
    assert cos.mean() == pytest.approx(best, abs=1e-4)  # the best validation weights are the ones kept
    check = roll_input(data["valid"]["rolls"][:16], cfg.snippets)
    m = add_to_bundle(SHIPPED, tmp_path / "b", model, {"valid_cosine_mean": float(cos.mean())}, check)
    new = read_config(tmp_path / "b")
    assert new.index_fingerprint == cfg.index_fingerprint  # the full encoder's indexes stay valid
    assert new.score_from == (cfg.score_from or cfg.fingerprint)
    assert new.training["score_small"]["architecture"]["widths"] == [16, 32, 64, 64]
    assert m["small_index_fingerprint"] == new.index_fingerprint_for("small")
    bundle = load_bundle(tmp_path / "b", score_encoder="small")
    with torch.no_grad():
        want = model(torch.from_numpy(check)).numpy()
    np.testing.assert_allclose(bundle.score(check), want, atol=1e-4)
    # a small graph: well under a third of the full encoder's weights
    assert (tmp_path / "b" / SCORE_SMALL_ONNX).stat().st_size < (SHIPPED / SCORE_ONNX).stat().st_size / 3


def test_a_student_below_the_agreement_floor_is_not_written(windows, tmp_path, capsys):
    from training.cli import main

    out = tmp_path / "o"
    rc = main(["distill", str(SHIPPED), "-o", str(out), "--corpus", f"{CHORALES}:2", "--minutes", "0.02",
               "--batch", "16", "--widths", "4,4,4,4", "--min-cosine", "0.999", "--quiet"])
    assert rc != 0 and "mean cosine" in capsys.readouterr().err
    assert not (out / SCORE_SMALL_ONNX).exists()
    rc = main(["distill", str(SHIPPED), "-o", str(out), "--corpus", "x", "--widths", "a"])
    assert rc != 0 and "--widths a" in capsys.readouterr().err
