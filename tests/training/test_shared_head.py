"""`training shared-head`: the head learns to give, from trunk columns in context, the full
encoder's embedding of the window alone, and joins the bundle without renaming it."""

from pathlib import Path

import numpy as np
import pytest

from follower.bundle import SCORE_HEAD_ONNX, SCORE_ONNX, SCORE_TRUNK_ONNX, load_bundle, read_config
from follower.index import build_index

pretty_midi = pytest.importorskip("pretty_midi")
pytest.importorskip("onnx")
from training.fit.shared_head import SharedHeadConfig, add_to_bundle, train_head  # noqa: E402

SHIPPED = Path(__file__).resolve().parents[2] / "exported" / "default"


def _piece(path: Path, seed: int, n_chords: int = 60) -> None:
    """Four-voice chords of random length: enough texture for the trunk's edges to matter."""
    rng = np.random.default_rng(seed)
    pm = pretty_midi.PrettyMIDI(initial_tempo=100)
    inst = pretty_midi.Instrument(program=0)
    t = 0.0
    for _ in range(n_chords):
        d = float(rng.choice([0.25, 0.5, 0.75, 1.0]))
        root = int(rng.integers(48, 67))
        for p in (root, root + 4, root + 7, root + 12 + int(rng.integers(0, 5))):
            inst.notes.append(pretty_midi.Note(velocity=80, pitch=p, start=t, end=t + d))
        t += d
    pm.instruments.append(inst)
    pm.write(str(path))


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus")
    rows = ["file,split"]
    for i in range(8):
        _piece(root / f"p{i}.mid", seed=i)
        rows.append(f"p{i}.mid,{'valid' if i >= 6 else 'train'}")
    (root / "splits.csv").write_text("\n".join(rows) + "\n")
    return root


def test_the_head_moves_towards_the_full_encoder_and_the_bundle_builds_with_it(corpus, tmp_path):
    cfg = read_config(SHIPPED)
    head_cfg = SharedHeadConfig(corpora=(str(corpus),), windows_per_piece=40, max_train_windows=240,
                                max_valid_windows=80, epochs=4, batch=16)
    result = train_head(head_cfg, SHIPPED / SCORE_ONNX, cfg.snippets, cfg.features.frame_rate_hz,
                        log=lambda s: None, progress=False)
    m = result["measured"]
    assert m["train_windows"] == 240 and m["valid_windows"] == 80
    assert m["valid_cosine_mean"] > m["valid_cosine_mean_before"]
    info = add_to_bundle(SHIPPED, tmp_path / "b", result)
    new = read_config(tmp_path / "b")
    assert new.shared_trunk == {"stride_frames": 4, "reach_frames": 17}
    assert new.fingerprint == cfg.fingerprint  # a build-only pair: the bundle keeps its name and its runs
    assert new.index_fingerprint == cfg.index_fingerprint
    assert info["shared_index_fingerprint"] == new.index_fingerprint_for("shared") != new.index_fingerprint
    assert info["max_abs_diff_onnx_vs_torch"] < 1e-4
    assert (tmp_path / "b" / SCORE_TRUNK_ONNX).is_file() and (tmp_path / "b" / SCORE_HEAD_ONNX).is_file()
    index = build_index([corpus], load_bundle(tmp_path / "b", score_encoder="shared"), progress=False, workers=1)
    full = build_index([corpus], load_bundle(tmp_path / "b"), progress=False, workers=1)
    cos = (index.embeddings.astype(np.float32) * full.embeddings.astype(np.float32)).sum(1)
    assert cos.mean() > 0.97


def test_a_head_below_the_agreement_floor_is_not_written(corpus, tmp_path, capsys):
    from training.cli import main

    rc = main(["shared-head", str(SHIPPED), "-o", str(tmp_path / "o"), "--corpus", str(corpus), "--windows", "40",
               "--epochs", "1", "--min-cosine", "1.01", "--quiet"])
    assert rc != 0 and "mean cosine" in capsys.readouterr().err
    assert not (tmp_path / "o" / SCORE_HEAD_ONNX).exists()
