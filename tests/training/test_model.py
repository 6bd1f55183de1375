import pytest
import torch

from follower.errors import ConfigError
from follower.features import FeatureConfig
from follower.snippets import SnippetConfig
from training.model.encoders import DualEncoder, ModelConfig, build_model


def test_shapes_and_unit_length():
    model = build_model(seed=0).eval()
    with torch.no_grad():
        a, s = model(torch.rand(3, 1, 92, 42), (torch.rand(3, 2, 88, 42) < 0.1).float())  # sustain + onset
    assert a.shape == (3, 32) and s.shape == (3, 32)
    assert torch.allclose(a.norm(dim=1), torch.ones(3), atol=1e-5)
    assert torch.allclose(s.norm(dim=1), torch.ones(3), atol=1e-5)


def test_roll_channels_follow_snippet_config():
    assert ModelConfig().roll_shape == ModelConfig.for_snippets(SnippetConfig(), FeatureConfig()).roll_shape
    snip = SnippetConfig(roll_channels=("sustain",))
    cfg = ModelConfig.for_snippets(snip, FeatureConfig())
    assert cfg.roll_shape == (1, 88, 42) and cfg.audio_shape == (1, 92, 42)
    model = DualEncoder(cfg).eval()
    with torch.no_grad():
        assert model.score(torch.zeros(2, 1, 88, 42)).shape == (2, 32)


def test_paths_unshared_and_layout():
    model = build_model(seed=0)
    audio_ids = {id(p) for p in model.audio.parameters()}
    assert not audio_ids & {id(p) for p in model.score.parameters()}
    convs = [m for m in model.audio.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [24, 24, 48, 48, 96, 96, 96, 96, 32]
    assert all(c.bias is None for c in convs)
    assert convs[-1].kernel_size == (1, 1)


def test_seeded_weights_are_reproducible():
    a, b = build_model(seed=3), build_model(seed=3)
    for p, q in zip(a.parameters(), b.parameters()):
        assert torch.equal(p, q)


def test_wrong_input_shape_one_line():
    model = build_model(seed=0)
    with pytest.raises(ConfigError, match=r"audio encoder got input shape \(2, 1, 80, 42\); expected \(n, 1, 92, 42\)"):
        model.audio(torch.zeros(2, 1, 80, 42))
    with pytest.raises(ConfigError, match="score encoder"):
        model.score(torch.zeros(2, 1, 88, 42))


def test_bad_config_one_line():
    with pytest.raises(ConfigError, match="audio_frames=8 must be an integer >= 16"):
        ModelConfig(audio_frames=8)
    with pytest.raises(ConfigError, match="embed_dim=0 must be a positive integer"):
        ModelConfig(embed_dim=0)


def test_cca_layer_identity_until_fitted_then_projects():
    base = build_model(seed=0).eval()
    cca = DualEncoder(ModelConfig(cca=True)).eval()
    missing, _ = cca.load_state_dict(base.state_dict(), strict=False)
    assert sorted(k.split(".")[-1] for k in missing) == ["proj_matrix", "proj_matrix", "proj_mean", "proj_mean"]
    x = torch.rand(4, 1, 92, 42)
    with torch.no_grad():
        assert torch.allclose(cca.audio(x), base.audio(x), atol=1e-6)
        cca.audio.proj_matrix.copy_(torch.randn(32, 32))
        y = cca.audio(x)
        cca.audio.use_projection = False
        assert torch.allclose(cca.audio(x), base.audio(x), atol=1e-6)
    assert torch.allclose(y.norm(dim=1), torch.ones(4), atol=1e-5)
    assert not torch.allclose(y, base.audio(x).detach(), atol=1e-3)
