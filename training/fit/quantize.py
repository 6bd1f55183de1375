"""An int8 audio encoder for a bundle (``training quantize``): the follower's per-update cost.

The audio encoder runs once per 50 ms update and is most of an update's cost on a
small index. Static QDQ quantisation with onnxruntime's own tools (int8 weights per
output channel, uint8 activations, min/max ranges calibrated on real spectrogram
windows) about halves its time on one core (docs/improvements.md (j)).

The score encoder is left as it is, so the quantised bundle reads the indexes of the
float one (an index depends on the score side only: ``BundleConfig.index_fingerprint``).
The float audio encoder stays in the bundle as ``audio_encoder.float.onnx``: it is
what a later quantisation starts from, and the reference the int8 one is checked
against (mean cosine of the two embeddings on held-out windows, which must reach
``min_cosine``).

With ``partial=True`` (``training quantize --partial``) a bundle's encoder for windows
still filling (``audio_encoder.partial.onnx``, ``training partial-audio``) is quantised
the same way, calibrated and checked on the same windows with their first frames
silenced as the engine silences them (its float original kept as
``audio_encoder.partial.float.onnx``). It runs for the first two seconds after every
start, where the float one makes the slowest updates; int8 halves its time, but its
partly filled windows retrieve a little worse and, on validation renders, it locked two
of 100 excerpts on a wrong piece where the float one locked none, so the shipped bundle
keeps it float (docs/improvements.md (y)).
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from follower.bundle import (AUDIO_FLOAT_ONNX, AUDIO_ONNX, AUDIO_PARTIAL_FLOAT_ONNX, AUDIO_PARTIAL_ONNX, METRICS_JSON,
                             OPTIONAL_FILES, SCORE_ONNX, Encoder, read_config, sha256_file, verify, write_config)
from follower.config import JsonConfig
from follower.errors import BadAudioError, BundleError, ConfigError



@dataclass(frozen=True)
class QuantizeConfig(JsonConfig):
    windows: int = 2000            # calibration windows, drawn evenly from the sounding windows of the audio
    check_windows: int = 1000      # other windows the int8 encoder is compared with the float one on
    min_cosine: float = 0.995      # mean cosine (int8 vs float embedding) needed to write the bundle
    partial: bool = False          # quantise the encoder for windows still filling too (not shipped: module doc)
    # the same check for it, on windows whose lead is silenced: a window with a few sounding frames carries
    # less to resolve (measured 0.994 on the tuning renders, windows that sound for 30 % of their length 0.988)
    min_cosine_partial: float = 0.99
    per_channel: bool = True       # one weight scale per output channel
    seed: int = 0

    def __post_init__(self):
        if self.windows < 10 or self.check_windows < 10:
            raise ConfigError(f"--windows {self.windows} / check windows {self.check_windows}: give at least 10")


def audio_windows(paths, bundle_config, *, silence_level: float = 0.05, min_sound_fraction: float = 0.3):
    """Every sounding encoder window (the follower's own rule) of the recordings, as encoder inputs.

    Windows are cut every 2 frames from the spectrogram the follower computes
    (``follower.features.spectrogram``), so calibration sees exactly what the engine feeds.
    """
    import soundfile as sf

    from follower.features import spectrogram
    from follower.snippets import audio_input

    width = bundle_config.snippets.audio_frames
    out = []
    for path in paths:
        try:
            audio, rate = sf.read(str(path), dtype="float32", always_2d=True)
        except Exception as e:  # noqa: BLE001 - soundfile raises several types
            raise BadAudioError(f"{path}: not a readable audio file ({e}); give wav/flac/ogg recordings") from e
        spec = spectrogram(audio.mean(axis=1), rate, bundle_config.features)
        loud = spec.max(axis=1) >= silence_level
        for end in range(width, len(spec) + 1, 2):
            if loud[end - width:end].mean() >= min_sound_fraction:
                out.append(spec[end - width:end])
    if not out:
        raise BadAudioError(f"no sounding window in {len(list(paths))} calibration file(s); give music recordings")
    return audio_input(np.stack(out))


class _Reader:
    """onnxruntime's CalibrationDataReader over fixed inputs ({input name: array} each)."""

    def __init__(self, feeds):
        self.items = iter(feeds)

    def get_next(self):
        return next(self.items, None)


def quantize_convs(float_path, out_path, feeds, *, per_channel: bool = True, exclude=()) -> None:
    """Write the int8 (QDQ) model of ``float_path``: its convolutions quantised (but the nodes named in
    ``exclude``), their ranges calibrated on ``feeds`` (the inputs, one {input name: array} per run);
    pooling, means and the length normalisation stay float. The recipe of every int8 encoder here."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    with tempfile.TemporaryDirectory() as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        quant_pre_process(str(float_path), str(prepared), skip_symbolic_shape=True)
        quantize_static(str(prepared), str(out_path), _Reader(feeds),
                        quant_format=QuantFormat.QDQ, per_channel=per_channel,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        calibrate_method=CalibrationMethod.MinMax, op_types_to_quantize=["Conv"],
                        nodes_to_exclude=list(exclude))


def first_conv(path) -> str:
    """Name of the convolution that reads the model's input."""
    import onnx

    graph = onnx.load(str(path)).graph
    inputs = {i.name for i in graph.input}
    return next(n.name for n in graph.node if n.op_type == "Conv" and n.input[0] in inputs)


def quantize_audio_encoder(float_path, out_path, calibration: np.ndarray, *, per_channel: bool = True,
                           batch: int = 64, exclude=()) -> None:
    name = Encoder(float_path).input_name
    quantize_convs(float_path, out_path, [{name: calibration[i:i + batch]} for i in range(0, len(calibration), batch)],
                   per_channel=per_channel, exclude=exclude)


def cosine_to_float(float_path, int8_path, x: np.ndarray) -> np.ndarray:
    a = Encoder(float_path)(x)
    b = Encoder(int8_path)(x)
    return np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def silence_leads(x: np.ndarray, rng, *, min_frames: int, min_sounding: int = 4) -> np.ndarray:
    """Copy of encoder inputs (n, 1, bins, frames) with a random lead of each window silenced (set to 0, as
    the engine silences what was heard before the music began), ``min_frames`` up to all but ``min_sounding``."""
    from ..augment.partial import keep_last

    frames = x.shape[3]
    leads = rng.integers(min_frames, max(frames - min_sounding, min_frames) + 1, len(x))
    return keep_last(x, (frames - leads) / frames)


def _source(bundle_dir: Path, cfg, kept: str, live: str) -> Path:
    """The float model to quantise: the one a quantisation before kept (checked), else the live one."""
    source = bundle_dir / kept
    if source.is_file():
        want = cfg.sha256.get(kept)
        if want and sha256_file(source) != want:
            raise BundleError(f"{source}: checksum differs from config.json; re-copy the bundle")
        return source
    return bundle_dir / live


def _quantize_one(source: Path, out_dir: Path, kept: str, live: str, cal, check, min_cosine: float,
                  per_channel: bool, what: str, exclude=()) -> dict:
    """Quantise ``source`` to ``out_dir/live`` (the float one kept as ``out_dir/kept``) if its embeddings
    agree with the float ones on ``check``; the cosines measured."""
    tmp = out_dir / (live + ".tmp")
    quantize_audio_encoder(source, tmp, cal, per_channel=per_channel, exclude=exclude)
    cos = cosine_to_float(source, tmp, check)
    if not cos.mean() >= min_cosine:
        tmp.unlink()
        raise BundleError(f"the int8 {what}'s embeddings agree with the float ones only to a mean cosine "
                          f"of {cos.mean():.4f} (< {min_cosine}); calibrate on more or more typical audio")
    if source.resolve() != (out_dir / kept).resolve():  # first: in place, source is the file replaced next
        shutil.copyfile(source, out_dir / kept)
    tmp.replace(out_dir / live)
    return {"cosine_to_float_mean": round(float(cos.mean()), 5), "cosine_to_float_min": round(float(cos.min()), 5)}


def quantize_bundle(bundle_dir, out_dir, audio_paths, config: QuantizeConfig | None = None) -> dict:
    """Write ``out_dir``: ``bundle_dir`` with int8 audio encoders; return what was measured.

    ``out_dir`` may be ``bundle_dir`` itself (the float encoders move to ``*.float.onnx``).
    """
    from follower.engine import EngineConfig

    config = config or QuantizeConfig()
    bundle_dir, out_dir = Path(bundle_dir), Path(out_dir)
    cfg = read_config(bundle_dir)
    verify(bundle_dir, cfg)
    # a bundle quantised before keeps its float encoders: always start from those
    source = _source(bundle_dir, cfg, AUDIO_FLOAT_ONNX, AUDIO_ONNX)
    if config.partial and not cfg.sha256.get(AUDIO_PARTIAL_ONNX):
        raise BundleError(f"{bundle_dir}: has no encoder for windows still filling to quantise "
                          "(training partial-audio adds one); drop --partial")
    partial = _source(bundle_dir, cfg, AUDIO_PARTIAL_FLOAT_ONNX, AUDIO_PARTIAL_ONNX) if config.partial else None
    windows = audio_windows(audio_paths, cfg)
    rng = np.random.default_rng(config.seed)
    order = rng.permutation(len(windows))
    n_cal = min(config.windows, len(windows) // 2)
    cal, check = windows[order[:n_cal]], windows[order[n_cal:n_cal + config.check_windows]]
    out_dir.mkdir(parents=True, exist_ok=True)
    measured = {"method": "onnxruntime quantize_static, QDQ, Conv only, int8 weights"
                          f"{' per channel' if config.per_channel else ''}, uint8 activations, MinMax",
                "calibration_files": [str(p) for p in audio_paths], "calibration_windows": int(n_cal),
                "check_windows": int(len(check)), "source_bundle": cfg.fingerprint, "config": config.to_dict()}
    measured.update(_quantize_one(source, out_dir, AUDIO_FLOAT_ONNX, AUDIO_ONNX, cal, check, config.min_cosine,
                                  config.per_channel, "audio encoder"))
    sha = {**cfg.sha256, AUDIO_ONNX: sha256_file(out_dir / AUDIO_ONNX),
           AUDIO_FLOAT_ONNX: sha256_file(out_dir / AUDIO_FLOAT_ONNX)}
    if partial is not None:
        lead = max(1, round(EngineConfig().partial_min_silent_s * cfg.features.frame_rate_hz))
        quiet_cal, quiet_check = (silence_leads(x, rng, min_frames=lead) for x in (cal, check))
        # its first convolution stays float: the input of a mostly silent window, quantised on the ranges
        # of sounding ones, lost the most there (mean cosine 0.990 -> 0.994; its cost is 1 % of the encoder's)
        measured["partial"] = _quantize_one(partial, out_dir, AUDIO_PARTIAL_FLOAT_ONNX, AUDIO_PARTIAL_ONNX,
                                            quiet_cal, quiet_check, config.min_cosine_partial, config.per_channel,
                                            "encoder for windows still filling", exclude=[first_conv(partial)])
        sha |= {AUDIO_PARTIAL_ONNX: sha256_file(out_dir / AUDIO_PARTIAL_ONNX),
                AUDIO_PARTIAL_FLOAT_ONNX: sha256_file(out_dir / AUDIO_PARTIAL_FLOAT_ONNX)}
    written = {AUDIO_ONNX, AUDIO_FLOAT_ONNX} | ({AUDIO_PARTIAL_ONNX, AUDIO_PARTIAL_FLOAT_ONNX} if partial else set())
    # everything else the bundle carries comes along (a float original kept by an earlier --partial too)
    for name in (SCORE_ONNX, METRICS_JSON, AUDIO_PARTIAL_FLOAT_ONNX) + OPTIONAL_FILES:
        if name not in written and (bundle_dir / name).is_file() and bundle_dir.resolve() != out_dir.resolve():
            shutil.copyfile(bundle_dir / name, out_dir / name)
    new = type(cfg).from_dict({**cfg.to_dict(), "sha256": sha, "score_from": cfg.score_from or cfg.fingerprint,
                               "training": {**cfg.training, "audio_quantization": measured}})
    write_config(out_dir, new)
    (out_dir / "quantization.json").write_text(json.dumps(measured, indent=2) + "\n")
    return {**measured, "fingerprint": new.fingerprint, "index_fingerprint": new.index_fingerprint}
