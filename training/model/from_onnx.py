"""Torch encoders back from a shipped ONNX bundle, to evaluate it as a run or to warm-start training.

The export folds each BatchNorm into the convolution before it (eval mode), so the
ONNX graph holds, per convolution, a weight ``W'`` and a bias ``b'`` where torch
had ``W`` and BatchNorm(γ, β, μ, σ²): ``W' = W·γ/σ``, ``b' = β - γ·μ/σ``. The split
back into ``W``, γ and σ is lost, but any split that gives the same eval-mode
function will do: the convolution gets ``W'``, and its BatchNorm the statistics
``m``, ``v`` of ``W'·x`` over real inputs (running mean/var ``m``, ``v``; scale
``sqrt(v + eps)``; shift ``m + b'``). In eval mode that is exactly ``W'·x + b'``
whatever ``m`` and ``v`` are; in train mode, where BatchNorm normalises by the
batch's own statistics, it is the same function as long as batches look like the
calibration inputs, so fine-tuning starts where the bundle stands.

Scale. BatchNorm makes the function blind to a per-channel factor ``k`` on the
convolution's weights (statistics scale by ``k`` and ``k²``, the BatchNorm scale by
``1/k``), but Adam is not: it moves every weight by about the learning rate, so
folded weights far smaller than a trained network's make a normal learning rate
wreck the model in a few steps. Each output channel's weights are therefore
rescaled to the norm of a He-initialised one (``sqrt(2)``), where the training
recipe's learning rates were tuned.

The result is checked against onnxruntime on the calibration inputs (atol 1e-4).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from follower.bundle import AUDIO_FLOAT_ONNX, AUDIO_ONNX, SCORE_ONNX, Encoder, read_config, verify
from follower.errors import BundleError

from .encoders import DualEncoder, ModelConfig

ATOL = 1e-4


def _conv_initializers(path: Path) -> list:
    """[(weight, bias)] of the graph's Conv nodes, in graph order."""
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(path)).graph
    inits = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    for node in graph.node:  # the exporter shares identical constants (e.g. zero biases) through Identity
        if node.op_type == "Identity" and node.input[0] in inits:
            inits[node.output[0]] = inits[node.input[0]]
    ops = [n.op_type for n in graph.node]
    if "BatchNormalization" in ops or "MatMul" in ops or "Gemm" in ops:
        raise BundleError(f"{path}: graph has {'BatchNormalization' if 'BatchNormalization' in ops else 'a CCA projection'}; "
                          "only bundles of the plain exported encoders (BatchNorm folded, no CCA) can be read back")
    convs = []
    for node in graph.node:
        if node.op_type == "Conv":
            names = list(node.input[1:])
            if not names or any(n not in inits for n in names if n):
                raise BundleError(f"{path}: Conv node {node.name} without constant weights; "
                                  "not an encoder exported by `training export`")
            weight = inits[names[0]]
            # an identity BatchNorm folds to no bias at all
            bias = inits[names[1]] if len(names) > 1 and names[1] else np.zeros(weight.shape[0], np.float32)
            convs.append((weight, bias))
    return convs


def _load_encoder(encoder: nn.Module, convs: list, path: Path) -> list:
    """Copy folded weights into ``encoder``; BatchNorms as identity + bias. Returns [(conv, bn, bias)]."""
    layers = list(encoder.features)
    pairs = [(m, layers[i + 1]) for i, m in enumerate(layers) if isinstance(m, nn.Conv2d)]
    if len(pairs) != len(convs) or any(c.weight.shape != tuple(w.shape) for (c, _), (w, _) in zip(pairs, convs)):
        raise BundleError(f"{path}: {len(convs)} convolutions of shapes {[tuple(w.shape) for w, _ in convs]} do not "
                          f"fit the {encoder.name} encoder ({[tuple(c.weight.shape) for c, _ in pairs]})")
    out = []
    with torch.no_grad():
        for (conv, bn), (w, b) in zip(pairs, convs):
            w = torch.from_numpy(np.array(w, dtype=np.float64))
            k = np.sqrt(2.0) / w.flatten(1).norm(dim=1).clamp_min(1e-12)   # per output channel
            conv.weight.copy_((w * k[:, None, None, None]).float())
            bias = torch.from_numpy(b.astype(np.float64))
            _set_bn(bn, k, torch.zeros_like(k), torch.ones_like(k), bias)
            out.append((conv, bn, bias, k))
    return out


def _set_bn(bn: nn.BatchNorm2d, k, mean, var, bias) -> None:
    """BatchNorm after a convolution scaled by ``k`` whose unscaled output has ``mean``, ``var``,
    so that conv + BatchNorm compute the folded ``W'·x + bias`` in eval mode."""
    bn.running_mean.copy_((k * mean).float())
    bn.running_var.copy_((k * k * var).float())
    bn.weight.copy_((torch.sqrt(k * k * var + bn.eps) / k).float())
    bn.bias.copy_((mean + bias).float())


def _calibrate(encoder: nn.Module, layers: list, x: np.ndarray) -> None:
    """Set each BatchNorm to the statistics of its convolution's output on ``x`` (eval function kept)."""
    stats = {}
    hooks = [conv.register_forward_hook(lambda m, i, o, j=j: stats.__setitem__(j, o.detach()))
             for j, (conv, _, _, _) in enumerate(layers)]
    try:
        encoder.eval()
        with torch.no_grad():
            encoder(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)))
    finally:
        for h in hooks:
            h.remove()
    with torch.no_grad():
        for j, (_, bn, bias, k) in enumerate(layers):
            y = stats[j].double() / k[None, :, None, None]   # the folded convolution's own output
            _set_bn(bn, k, y.mean(dim=(0, 2, 3)), y.var(dim=(0, 2, 3), unbiased=False), bias)


def model_from_bundle(bundle_dir, *, calibration: dict | None = None, seed: int = 0):
    """(DualEncoder in eval mode, SnippetConfig, FeatureConfig, training info) of a bundle.

    ``calibration``: real encoder inputs {"audio": (n, 1, bins, frames), "roll": (n, C, 88,
    frames)} for the BatchNorm statistics (a few hundred snippets); without them the
    BatchNorms are identity + bias (exact in eval mode, not for fine-tuning).
    """
    bundle_dir = Path(bundle_dir)
    config = read_config(bundle_dir)
    verify(bundle_dir, config)
    recorded = dict((config.training or {}).get("model") or {})
    if recorded.get("cca"):
        raise BundleError(f"{bundle_dir}: the encoders end with a CCA layer; reading those back is not supported")
    mc = ModelConfig.for_snippets(config.snippets, config.features, embed_dim=config.embed_dim,
                                  base_filters=int(recorded.get("base_filters", ModelConfig().base_filters)))
    audio_filters = int(recorded.get("audio_base_filters", mc.base_filters))
    if audio_filters != mc.base_filters:   # a narrower audio encoder (training student-audio)
        mc = ModelConfig.from_dict({**mc.to_dict(), "audio_base_filters": audio_filters})
    model = DualEncoder(mc)
    rng = np.random.default_rng(seed)
    checks = {}
    # a quantised bundle keeps its float audio encoder beside the int8 one (training quantize):
    # the int8 graph has no float weights to read back, and the float one is what was trained
    audio_onnx = AUDIO_FLOAT_ONNX if (bundle_dir / AUDIO_FLOAT_ONNX).is_file() else AUDIO_ONNX
    for encoder, fname, key in ((model.audio, audio_onnx, "audio"), (model.score, SCORE_ONNX, "roll")):
        path = bundle_dir / fname
        layers = _load_encoder(encoder, _conv_initializers(path), path)
        x = (calibration or {}).get(key)
        if x is not None and len(x):
            _calibrate(encoder, layers, x)
        else:
            shape = (8,) + tuple(encoder.input_shape)
            x = (rng.gamma(1.0, 0.5, shape) if key == "audio" else rng.random(shape) < 0.05).astype(np.float32)
        encoder.eval()
        with torch.no_grad():
            got = encoder(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))).numpy()
        err = float(np.abs(got - Encoder(path)(x)).max())
        if not err <= ATOL:
            raise BundleError(f"{path}: the torch encoder read back differs from onnxruntime by {err:.2e} "
                              f"(> {ATOL}); this bundle cannot be used as a starting point")
        checks[key] = err
    info = dict(config.training or {})
    info["from_bundle"] = {"path": str(bundle_dir.resolve()), "fingerprint": config.fingerprint,
                           "max_abs_diff_vs_onnx": checks, "calibrated": calibration is not None}
    return model.eval(), config.snippets, config.features, info
