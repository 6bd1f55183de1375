"""`training student-audio`: a narrower audio encoder trained against a bundle's fixed score encoder,
resumable, written into a copy of the bundle whose indexes stay valid."""

from pathlib import Path

import numpy as np
import pytest

from follower.bundle import AUDIO_FLOAT_ONNX, AUDIO_ONNX, load_bundle, read_config
from follower.errors import BundleError, ConfigError

pytest.importorskip("onnx")
from training.cli import main as training_main  # noqa: E402
from training.data.toy import ToySplit  # noqa: E402
from training.fit.student_audio import StudentAudioConfig, train_student_audio, write_bundle  # noqa: E402
from training.model.from_onnx import _conv_initializers, model_from_bundle  # noqa: E402

SHIPPED = Path(__file__).resolve().parents[2] / "exported" / "default"


@pytest.fixture(scope="module")
def splits():
    snip = read_config(SHIPPED).snippets
    return ToySplit(120, seed=0, snippet_config=snip), ToySplit(40, seed=1, snippet_config=snip)


def test_the_student_trains_resumes_and_replaces_only_the_audio_encoder(splits, tmp_path):
    train, valid = splits
    run = tmp_path / "run"
    cfg = StudentAudioConfig(base_filters=4, batch=20, epoch_pairs=60, max_epochs=1)
    logs = []
    first = train_student_audio(cfg, SHIPPED, train, valid, run, log=logs.append, progress=False)
    assert first["epochs"] == 1 and first["stopped"] == "max_epochs" and 0 < first["teacher"] <= 1
    assert {"best.pt", "checkpoint.pt", "log.csv", "loss.png"} <= {p.name for p in run.iterdir()}
    # a later call with a higher epoch cap goes on; other settings are refused in one line
    logs.clear()
    again = train_student_audio(StudentAudioConfig(base_filters=4, batch=20, epoch_pairs=60, max_epochs=2),
                                SHIPPED, train, valid, run, log=logs.append, progress=False)
    assert logs[0].startswith(f"resuming {run} after epoch 1") and again["epochs"] == 2
    with pytest.raises(ConfigError, match="other settings"):
        train_student_audio(StudentAudioConfig(base_filters=6, batch=20, epoch_pairs=60, max_epochs=3),
                            SHIPPED, train, valid, run, log=logs.append, progress=False)
    assert (run / "log.csv").read_text().count("\n") == 3          # header + two epochs

    out = tmp_path / "b"
    info = write_bundle(SHIPPED, run, out)
    old, new = read_config(SHIPPED), read_config(out)
    assert new.fingerprint == info["fingerprint"] != old.fingerprint
    assert new.index_fingerprint == old.index_fingerprint            # every index of the bundle stays valid
    assert (out / "score_encoder.onnx").read_bytes() == (SHIPPED / "score_encoder.onnx").read_bytes()
    assert _conv_initializers(out / AUDIO_ONNX)[0][0].shape[0] == 4   # the student's first block
    assert not (out / AUDIO_FLOAT_ONNX).exists() and AUDIO_FLOAT_ONNX not in new.sha256
    assert info["max_abs_diff_onnx_vs_torch"] < 1e-4 and new.training["model"]["audio_base_filters"] == 4
    e = load_bundle(out).audio(valid.audio_batch(np.arange(4)))
    assert e.shape == (4, new.embed_dim) and np.allclose(np.linalg.norm(e, axis=1), 1, atol=1e-4)
    # the bundle reads back into torch at both widths (to fine-tune or evaluate it as a run)
    model, _, _, _ = model_from_bundle(out)
    assert model.audio.features[0].out_channels == 4 and model.score.features[0].out_channels == 32


def test_the_distillation_term_pulls_toward_the_bundles_audio_embedding(splits, tmp_path):
    train, valid = splits
    base = dict(base_filters=4, batch=20, epoch_pairs=200, max_epochs=3, lr=0.005)
    cos = {}
    for w in (0.0, 4.0):
        train_student_audio(StudentAudioConfig(distill_weight=w, **base), SHIPPED, train, valid, tmp_path / f"w{w}",
                            log=lambda s: None, progress=False)
        rows = (tmp_path / f"w{w}" / "log.csv").read_text().splitlines()
        cos[w] = float(rows[-1].split(",")[7])
    assert cos[4.0] > cos[0.0]


def test_cli_errors_are_one_line(tmp_path, capsys):
    assert training_main(["student-audio", str(SHIPPED), "-o", str(tmp_path / "r")]) == 2
    assert "give --dataset DATA" in capsys.readouterr().err
    assert training_main(["student-audio", str(SHIPPED), "-o", str(tmp_path / "r"), "--write", str(tmp_path / "b")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "train the student first" in err
    with pytest.raises(BundleError, match="trained against bundle"):
        (tmp_path / "x").mkdir()
        import torch

        torch.save({"bundle": "0" * 16, "config": StudentAudioConfig().to_dict()}, tmp_path / "x" / "best.pt")
        write_bundle(SHIPPED, tmp_path / "x", tmp_path / "y")
