"""`training blend`: a run between two runs of one architecture, read back like any run."""

import pytest
import torch

from follower.features import FeatureConfig
from follower.snippets import SnippetConfig
from training.cli import main as training_main
from training.model.encoders import DualEncoder, ModelConfig
from training.run_dir import load_best


def _run(folder, config, seed):
    torch.manual_seed(seed)
    model = DualEncoder(config)
    with torch.no_grad():                       # BatchNorm statistics away from their defaults too
        for name, buf in model.named_buffers():
            if buf.is_floating_point():
                buf.uniform_(0.5, 1.5)
    folder.mkdir()
    torch.save({"model_config": config.to_dict(), "model_state": model.state_dict(),
                "snippet_config": SnippetConfig().to_dict(), "feature_config": FeatureConfig().to_dict(),
                "training_info": {"seed": seed}}, folder / "best.pt")
    return model.state_dict()


def test_blend_is_the_weighted_mean_and_its_ends_are_the_runs(tmp_path):
    config = ModelConfig(base_filters=8)
    a, b = _run(tmp_path / "a", config, 0), _run(tmp_path / "b", config, 1)
    for weight in (0.0, 0.25, 1.0):
        out = tmp_path / f"w{weight}"
        assert training_main(["blend", str(tmp_path / "a"), str(tmp_path / "b"), "--weight", str(weight),
                              "-o", str(out)]) == 0
        model, _, _, info = load_best(out)
        state = model.state_dict()
        assert info["blend"]["weight_b"] == weight
        for name, value in state.items():
            if value.is_floating_point():
                expect = (1 - weight) * a[name].double() + weight * b[name].double()
                assert torch.allclose(value.double(), expect, atol=1e-6), name
        # the blended model embeds: one audio window in, one unit vector out
        x = torch.randn(1, 1, config.n_bins, config.audio_frames)
        assert torch.allclose(model.audio(x).norm(dim=-1), torch.ones(1), atol=1e-4)


def test_runs_of_different_architectures_are_refused_in_one_line(tmp_path, capsys):
    _run(tmp_path / "a", ModelConfig(base_filters=8), 0)
    _run(tmp_path / "b", ModelConfig(base_filters=12), 1)
    assert training_main(["blend", str(tmp_path / "a"), str(tmp_path / "b"), "-o", str(tmp_path / "c")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "one architecture" in err
    assert not (tmp_path / "c").exists()


@pytest.mark.parametrize("weight", ["-0.1", "1.5"])
def test_a_weight_outside_0_1_is_refused(tmp_path, capsys, weight):
    _run(tmp_path / "a", ModelConfig(base_filters=8), 0)
    assert training_main(["blend", str(tmp_path / "a"), str(tmp_path / "a"), "--weight", weight,
                          "-o", str(tmp_path / "c")]) == 2
    assert "between 0 and 1" in capsys.readouterr().err
