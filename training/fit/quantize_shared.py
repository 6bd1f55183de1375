"""An int8 shared-trunk score encoder for index builds (``training quantize-shared``).

An index build with the shared trunk (``follower index build --score-encoder shared``,
:mod:`follower.score_trunk`) spends about 80 % of its time in two onnxruntime
sessions: the trunk over each piece's roll and the head over each snippet's columns.
Static QDQ quantisation of their convolutions (int8 weights per output channel, uint8
activations, min/max ranges calibrated on the inputs a real build feeds them; the
same recipe as the int8 audio encoder, :mod:`training.fit.quantize`) makes a build
about 1.6x cheaper per CPU-second (docs/improvements.md (x)).

The pair is written beside the float one as ``score_trunk.int8.onnx`` and
``score_head.shared.int8.onnx`` (score encoder "shared-int8"). Like the other
index-build encoders it is left out of the bundle's fingerprint, and its indexes
carry their own index fingerprint: they are never taken for the float pair's.

Calibration and check use different pieces: the MIDI files given are sorted and
alternate between the two. Nothing is written unless the int8 embeddings of the
check pieces agree with the float pair's to a mean cosine of ``min_cosine``.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from follower.config import JsonConfig
from follower.errors import BadMidiError, BundleError, ConfigError


@dataclass(frozen=True)
class QuantizeSharedConfig(JsonConfig):
    max_files: int = 60            # MIDI files used (half calibrate, half check), evenly over the sorted list
    max_feeds: int = 200           # calibration inputs per session (trunk chunks, head batches)
    min_cosine: float = 0.995      # mean cosine (int8 vs float) on the check pieces needed to write
    per_channel: bool = True
    hop_frames: int = 4            # snippet spacing of the check and calibration builds

    def __post_init__(self):
        if self.max_files < 2 or self.max_feeds < 1 or self.hop_frames < 1:
            raise ConfigError(f"max_files={self.max_files} (at least 2), max_feeds={self.max_feeds} and "
                              f"hop_frames={self.hop_frames} must be positive")
        if not 0 < self.min_cosine <= 1:
            raise ConfigError(f"min_cosine={self.min_cosine} must be in (0, 1]")


class _Recorder:
    """Wraps an onnxruntime session, keeping every input it is fed (the calibration data)."""

    def __init__(self, session):
        self.session, self.feeds = session, []

    def run(self, outputs, feed):
        self.feeds.append(dict(feed))
        return self.session.run(outputs, feed)

    def __getattr__(self, name):
        return getattr(self.session, name)


def _embeddings(files, bundle, hop_frames: int) -> np.ndarray:
    from follower.index import build_index

    return build_index(files, bundle, hop_frames=hop_frames, workers=1, progress=False).embeddings.astype(np.float32)


def quantize_shared(bundle_dir, out_dir, midi_paths, config: QuantizeSharedConfig | None = None) -> dict:
    """Write ``out_dir``: ``bundle_dir`` plus the int8 trunk + head pair; return what was measured.
    ``out_dir`` may be ``bundle_dir``."""
    from follower.bundle import (SCORE_HEAD_INT8_ONNX, SCORE_HEAD_ONNX, SCORE_TRUNK_INT8_ONNX, SCORE_TRUNK_ONNX,
                                 copy_bundle, load_bundle, onnx_session, read_config, sha256_file, write_config)
    from follower.index import find_midi

    from .quantize import quantize_convs

    config = config or QuantizeSharedConfig()
    bundle_dir, out_dir = Path(bundle_dir), Path(out_dir)
    cfg = read_config(bundle_dir)
    if not cfg.has_score_encoder("shared"):
        raise BundleError(f"{bundle_dir} has no shared trunk + head to quantise; make them first with: "
                          "training shared-head BUNDLE")
    files = [f for f, _ in find_midi(midi_paths)]
    if len(files) < 2:
        raise BadMidiError(f"{len(files)} MIDI file(s) under {', '.join(map(str, midi_paths))}; give at least 2 "
                           "(half calibrate, half check)")
    pick = np.unique(np.linspace(0, len(files) - 1, min(config.max_files, len(files))).round().astype(int))
    chosen = [files[i] for i in pick]
    calibrate, check = chosen[0::2], chosen[1::2]

    bundle = load_bundle(bundle_dir, score_encoder="shared")
    enc = bundle.score
    enc.trunk, enc.head = _Recorder(enc.trunk), _Recorder(enc.head)
    _embeddings(calibrate, bundle, config.hop_frames)          # records what a build feeds the pair
    feeds = {"trunk": enc.trunk.feeds, "head": enc.head.feeds}
    enc.trunk, enc.head = enc.trunk.session, enc.head.session
    reference = _embeddings(check, bundle, config.hop_frames)

    staged = {}
    with tempfile.TemporaryDirectory() as tmp:
        for key, src, dst in (("trunk", SCORE_TRUNK_ONNX, SCORE_TRUNK_INT8_ONNX),
                              ("head", SCORE_HEAD_ONNX, SCORE_HEAD_INT8_ONNX)):
            every = max(1, len(feeds[key]) // config.max_feeds)
            staged[dst] = Path(tmp) / dst
            quantize_convs(bundle_dir / src, staged[dst], feeds[key][::every][:config.max_feeds],
                           per_channel=config.per_channel)
        enc.trunk = onnx_session(staged[SCORE_TRUNK_INT8_ONNX])
        enc.head = onnx_session(staged[SCORE_HEAD_INT8_ONNX])
        quantised = _embeddings(check, bundle, config.hop_frames)
        cos = np.sum(reference * quantised, axis=1) / (np.linalg.norm(reference, axis=1)
                                                       * np.linalg.norm(quantised, axis=1))
        measured = {"method": "onnxruntime quantize_static, QDQ, Conv only, int8 weights"
                              f"{' per channel' if config.per_channel else ''}, uint8 activations, MinMax",
                    "calibration_files": len(calibrate), "check_files": len(check),
                    "calibration_feeds": {k: min(len(v), config.max_feeds) for k, v in feeds.items()},
                    "check_snippets": int(len(cos)), "cosine_to_float_mean": round(float(cos.mean()), 5),
                    "cosine_to_float_p01": round(float(np.percentile(cos, 1)), 5),
                    "cosine_to_float_min": round(float(cos.min()), 5), "source_bundle": cfg.fingerprint,
                    "midi": [str(p) for p in midi_paths], "config": config.to_dict()}
        if not cos.mean() >= config.min_cosine:
            raise BundleError(f"the int8 pair's embeddings agree with the float pair's only to a mean cosine of "
                              f"{cos.mean():.4f} (< {config.min_cosine}) on {len(check)} check pieces; calibrate "
                              "on more or more typical MIDI files")
        cfg = copy_bundle(bundle_dir, out_dir)
        for name, path in staged.items():
            shutil.move(str(path), out_dir / name)  # (the temp dir may be on another disk)
    sha = {**cfg.sha256, **{name: sha256_file(out_dir / name) for name in staged}}
    new = type(cfg).from_dict({**cfg.to_dict(), "sha256": sha,
                               "training": {**cfg.training, "score_shared_quantization": measured}})
    write_config(out_dir, new)
    return {**measured, "fingerprint": new.fingerprint, "index_fingerprint": new.index_fingerprint_for("shared-int8")}
