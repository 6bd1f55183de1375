"""Write a model bundle: two ONNX encoders, config.json and metrics.json (see follower/bundle.py).

The graphs include the length normalisation, take a dynamic batch axis, and are
checked against torch with onnxruntime before the config is written, so a bundle
on disk always reproduces the model that made it (atol 1e-4).
"""

from __future__ import annotations

import json
import platform
import warnings
from pathlib import Path

import numpy as np
import torch

from follower.bundle import (AUDIO_ONNX, CONFIG_JSON, METRICS_JSON, SCORE_ONNX, BundleConfig,
                             sha256_file, write_config)
from follower.errors import BundleError, ConfigError
from follower.features import FeatureConfig
from follower.snippets import SnippetConfig

from .model.encoders import DualEncoder, ModelConfig, build_model

OPSET = 17
ATOL = 1e-4


def package_versions() -> dict:
    import onnx
    import onnxruntime

    return {"torch": torch.__version__, "onnx": onnx.__version__, "onnxruntime": onnxruntime.__version__,
            "numpy": np.__version__, "python": platform.python_version()}


def _export_one(encoder: torch.nn.Module, example: torch.Tensor, input_name: str, path: Path) -> None:
    # The TorchScript exporter (dynamo=False) handles these plain conv nets and writes a
    # single self-contained file; the dynamo exporter in torch 2.13 also works but splits
    # weights into an external-data file for nothing and is much slower.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(encoder, (example,), str(path), input_names=[input_name],
                          output_names=["embedding"], opset_version=OPSET, do_constant_folding=True,
                          dynamic_axes={input_name: {0: "n"}, "embedding": {0: "n"}}, dynamo=False)


def check_onnx(path: Path, encoder: torch.nn.Module, inputs: np.ndarray, *, atol: float = ATOL) -> float:
    """Largest |onnxruntime - torch| over ``inputs``; raises BundleError beyond ``atol``."""
    from follower.bundle import Encoder

    with torch.no_grad():
        want = encoder(torch.from_numpy(inputs)).numpy()
    got = Encoder(path)(inputs)
    err = float(np.abs(got - want).max())
    if not err <= atol:
        raise BundleError(f"{path}: onnxruntime differs from torch by {err:.2e} (> {atol}); "
                          "the export is broken, do not ship it")
    return err


def replace_audio_encoder(encoder: torch.nn.Module, check: np.ndarray, out_dir: Path, live: str, float_name: str,
                          sha: dict) -> tuple:
    """Write ``encoder`` as ``out_dir/live`` (float ONNX, checked against onnxruntime on ``check``) and
    remove ``float_name``, the float original of an earlier encoder's int8 copy, which `training quantize`
    would start from. Returns (max |onnxruntime - torch|, the bundle's checksums updated)."""
    tmp = out_dir / (live + ".tmp.onnx")
    _export_one(encoder, torch.from_numpy(check[:1]), "audio", tmp)
    err = check_onnx(tmp, encoder, check)
    tmp.replace(out_dir / live)
    (out_dir / float_name).unlink(missing_ok=True)
    sha = {k: v for k, v in sha.items() if k != float_name}
    sha[live] = sha256_file(out_dir / live)
    return err, sha


def _check_shapes(model: DualEncoder, snippets: SnippetConfig, features: FeatureConfig) -> None:
    c = model.config
    want = ModelConfig.for_snippets(snippets, features, embed_dim=c.embed_dim, base_filters=c.base_filters,
                                    cca=c.cca)
    if want != c:
        raise ConfigError(f"model inputs {c.audio_shape} / {c.roll_shape} do not match the snippet "
                          f"settings {want.audio_shape} / {want.roll_shape}; export with the dataset's "
                          "SnippetConfig and FeatureConfig")


def export_bundle(model: DualEncoder, out_dir, *, snippet_config: SnippetConfig | None = None,
                  feature_config: FeatureConfig | None = None, metrics: dict | None = None,
                  training_info: dict | None = None, check_inputs: dict | None = None,
                  seed: int = 0) -> BundleConfig:
    """Write the bundle to ``out_dir`` and return its config.

    ``check_inputs`` may hold real encoder inputs ({"audio": ..., "roll": ...}) to
    compare onnxruntime with torch on, besides seeded random ones.
    """
    snippets = snippet_config or SnippetConfig()
    features = feature_config or FeatureConfig()
    _check_shapes(model, snippets, features)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model = model.eval().cpu()
    rng = np.random.default_rng(seed)
    c = model.config
    random_audio = rng.gamma(1.0, 0.5, (5,) + c.audio_shape).astype(np.float32)
    random_roll = (rng.random((5,) + c.roll_shape) < 0.05).astype(np.float32)
    errors = {}
    for encoder, name, fname, random_x in ((model.audio, "audio", AUDIO_ONNX, random_audio),
                                           (model.score, "roll", SCORE_ONNX, random_roll)):
        _export_one(encoder, torch.from_numpy(random_x[:2]), name, out / fname)
        errors[name] = check_onnx(out / fname, encoder, random_x)
        real = (check_inputs or {}).get(name)
        if real is not None and len(real):
            errors[name + "_real"] = check_onnx(out / fname, encoder, np.asarray(real, np.float32))
    info = dict(training_info or {})
    info["model"] = c.to_dict()
    info["onnx_max_abs_diff"] = errors
    (out / METRICS_JSON).write_text(json.dumps(metrics or {}, indent=2, sort_keys=True) + "\n")
    config = BundleConfig(features=features, snippets=snippets, embed_dim=c.embed_dim,
                          versions=package_versions(),
                          sha256={f: sha256_file(out / f) for f in (AUDIO_ONNX, SCORE_ONNX, METRICS_JSON)},
                          training=info)
    write_config(out, config)
    assert (out / CONFIG_JSON).is_file()
    return config


def untrained_bundle(out_dir, *, seed: int = 0, snippet_config: SnippetConfig | None = None,
                     feature_config: FeatureConfig | None = None) -> BundleConfig:
    """A seeded, untrained model's bundle: lets runtime code be built before training ends."""
    snippets = snippet_config or SnippetConfig()
    features = feature_config or FeatureConfig()
    model = build_model(ModelConfig.for_snippets(snippets, features), seed=seed)
    return export_bundle(model, out_dir, snippet_config=snippets, feature_config=features,
                         metrics={}, training_info={"untrained": True, "seed": seed}, seed=seed)
