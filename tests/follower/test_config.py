"""One to_dict / from_dict for every frozen config (follower.config.JsonConfig)."""

import json

import pytest

from follower.bundle import BundleConfig
from follower.errors import ConfigError
from follower.features import FeatureConfig
from follower.snippets import SnippetConfig


@pytest.mark.parametrize("config", [FeatureConfig(), FeatureConfig(hop_samples=1024, fmax_hz=5000.0),
                                    SnippetConfig(), SnippetConfig(roll_channels=("onset",), audio_frames=40),
                                    BundleConfig(embed_dim=12, sha256={"a.onnx": "00"}, training={"x": [1, 2]})])
def test_a_config_survives_json_unchanged(config):
    d = config.to_dict()
    back = type(config).from_dict(json.loads(json.dumps(d)))
    assert back == config
    assert back.to_dict() == d  # tuples are written as lists, so a file read back compares equal


def test_nested_configs_become_dicts_and_come_back():
    b = BundleConfig(snippets=SnippetConfig(roll_channels=("sustain",)))
    d = b.to_dict()
    assert d["snippets"]["roll_channels"] == ["sustain"] and d["features"]["hop_samples"] == 1102
    assert BundleConfig.from_dict(d).snippets.roll_channels == ("sustain",)


def test_unknown_or_missing_settings_are_one_clear_line():
    with pytest.raises(ConfigError, match=r"unknown SnippetConfig settings \['roll_chanels'\]"):
        SnippetConfig.from_dict({"roll_chanels": ["sustain"]})
    with pytest.raises(ConfigError, match="FeatureConfig settings must be a mapping"):
        FeatureConfig.from_dict(["sample_rate_hz"])
    with pytest.raises(ConfigError, match="bundle config lacks the key 'embed_dim'"):
        BundleConfig.from_dict({"features": {}, "snippets": {}})
    with pytest.raises(ConfigError, match="hop_samples"):  # values are still validated
        FeatureConfig.from_dict({"hop_samples": 4096})


def test_missing_settings_take_their_defaults():
    assert FeatureConfig.from_dict({"fmax_hz": 5000.0}) == FeatureConfig(fmax_hz=5000.0)
