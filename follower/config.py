"""``to_dict`` / ``from_dict`` for the frozen dataclass configs saved next to models, runs and datasets.

Every config of the project (features, snippets, bundle, model, training, augmentation,
dataset) is a frozen dataclass written as JSON (config.json of a bundle, run.json and
checkpoints of a run, dataset.json). :class:`JsonConfig` gives them one conversion:

* ``to_dict()``: field by field; a nested config becomes its own dict, tuples become
  lists (what JSON holds, so a dict read back from a file compares equal to a fresh one);
* ``from_dict(d)``: the inverse; unknown keys are refused in one line (a file written by
  a newer version, or a typo), missing keys take the field's default, a nested config
  field is rebuilt from its dict and a list becomes a tuple where the default is one.
  ``__post_init__`` then validates the values as for any construction.
"""

from __future__ import annotations

import dataclasses
import typing

from .errors import ConfigError


def _plain(value):
    if dataclasses.is_dataclass(value) and not isinstance(value, type):  # a nested config, too
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _tuples(value):
    return tuple(_tuples(v) for v in value) if isinstance(value, list) else value


class JsonConfig:
    """Mixin for frozen dataclasses; see the module docstring."""

    def to_dict(self) -> dict:
        return {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls, d: dict):
        if not isinstance(d, dict):
            raise ConfigError(f"{cls.__name__} settings must be a mapping, got {type(d).__name__}")
        fields = {f.name: f for f in dataclasses.fields(cls)}
        unknown = set(d) - set(fields)
        if unknown:
            raise ConfigError(f"unknown {cls.__name__} settings {sorted(unknown)}; "
                              f"expected a subset of {sorted(fields)}")
        hints = typing.get_type_hints(cls)
        kw = {}
        for name, value in d.items():
            kind = hints.get(name)
            if isinstance(kind, type) and issubclass(kind, JsonConfig) and isinstance(value, dict):
                value = kind.from_dict(value)
            elif isinstance(value, list) and isinstance(fields[name].default, tuple):
                value = _tuples(value)
            kw[name] = value
        return cls(**kw)
