"""How training and evaluation open a dataset folder (written by ``training dataset build``).

A thin layer over ``training.data.build.load_split`` that also recovers the feature and
snippet settings the dataset was cut with, since the bundle must record them.
"""

from __future__ import annotations

import json
from pathlib import Path

from follower.errors import ConfigError
from follower.features import FeatureConfig
from follower.snippets import SnippetConfig

SPLITS = ("train", "valid", "test", "test_slow", "test_fast")


def _find(d: dict, *names):
    for name in names:
        if isinstance(d.get(name), dict):
            return d[name]
    for value in d.values():  # one level down, e.g. {"settings": {"features": ...}}
        if isinstance(value, dict):
            for name in names:
                if isinstance(value.get(name), dict):
                    return value[name]
    return None


def dataset_info(dataset_dir) -> dict:
    path = Path(dataset_dir) / "dataset.json"
    if not path.is_file():
        raise ConfigError(f"{dataset_dir}: not a dataset (no dataset.json); build one with "
                          "`training dataset build -o DIR`")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ConfigError(f"{path}: not valid JSON ({e}); rebuild the dataset") from e


# Why both roll channels by default: a sustain-only roll cannot tell a held note from
# the same note repeated, while the audio shows every attack; the onset channel
# costs nothing but the first convolution's extra input channel.
DEFAULT_ROLL_CHANNELS = ("sustain", "onset")


def dataset_configs(dataset_dir, roll_channels=None) -> tuple[SnippetConfig, FeatureConfig]:
    """The FeatureConfig recorded in DATASET/dataset.json and the SnippetConfig to train with.

    The dataset stores every roll channel; which ones the score encoder reads is a
    model choice (``roll_channels``), unless dataset.json fixes snippet settings.
    """
    info = dataset_info(dataset_dir)
    feat = _find(info, "features", "feature_config", "FeatureConfig")
    if feat is None:
        raise ConfigError(f"{dataset_dir}/dataset.json lacks the feature settings; rebuild the dataset")
    snip = _find(info, "snippets", "snippet_config", "SnippetConfig")
    if snip is not None:
        snippets = SnippetConfig.from_dict(snip)
        if roll_channels:
            snippets = SnippetConfig.from_dict({**snippets.to_dict(), "roll_channels": list(roll_channels)})
    else:
        snippets = SnippetConfig(roll_channels=tuple(roll_channels or DEFAULT_ROLL_CHANNELS))
    return snippets, FeatureConfig.from_dict(feat)


def load_split(dataset_dir, split: str, snippet_config: SnippetConfig | None = None):
    from .build import load_split as _load

    if split not in SPLITS:
        raise ConfigError(f"split={split!r}; expected one of {SPLITS}")
    return _load(dataset_dir, split, snippet_config)
