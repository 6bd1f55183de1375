"""``training quantize BUNDLE -o OUT --audio FILE...``: the bundle with an int8 audio encoder."""

from __future__ import annotations

import argparse

EPILOG = """\
The shipped bundle's int8 audio encoder was made with (the tuning renders of
validation-split chorales: python -m benchmarks.material --set tuning):

  training quantize exported/default -o exported/default --audio data/bench/tuning/*.flac

The score encoder is copied unchanged, so the new bundle reads the indexes of the
old one. The float audio encoder is kept in the bundle as audio_encoder.float.onnx
(quantising a quantised bundle starts again from it). OUT may be BUNDLE itself.
--partial quantises the bundle's encoder for windows still filling as well (its float
original kept as audio_encoder.partial.float.onnx): twice as fast, not shipped
(docs/improvements.md (y)).
"""


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "quantize", help="int8 audio encoder (onnxruntime static quantisation) for faster updates",
        description="Quantise a bundle's audio encoder to int8 (QDQ, onnxruntime.quantization), calibrated "
                    "on the spectrogram windows of real recordings, and write the bundle with it. The int8 "
                    "embeddings are compared with the float ones on other windows of the same audio; below "
                    "--min-cosine nothing is written.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("bundle", help="bundle folder (written by `training export`)")
    p.add_argument("-o", "--out", required=True, help="bundle folder to write")
    p.add_argument("--audio", nargs="+", required=True, metavar="FILE",
                   help="recordings to calibrate on (music like what the follower will hear; not benchmark items)")
    p.add_argument("--windows", type=int, default=2000, help="calibration windows (default 2000)")
    p.add_argument("--partial", action="store_true",
                   help="also quantise the encoder for windows still filling (audio_encoder.partial.onnx)")
    p.add_argument("--min-cosine", type=float, default=0.995,
                   help="mean cosine of int8 vs float embeddings needed to write the bundle (default 0.995)")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..fit.quantize import QuantizeConfig, quantize_bundle

    m = quantize_bundle(args.bundle, args.out, args.audio,
                        QuantizeConfig(windows=args.windows, min_cosine=args.min_cosine, partial=args.partial))
    print(f"wrote {args.out} (fingerprint {m['fingerprint']}, reads indexes of score side {m['index_fingerprint']}): "
          f"int8 audio encoder calibrated on {m['calibration_windows']} windows, cosine to float "
          f"mean {m['cosine_to_float_mean']:.4f}, min {m['cosine_to_float_min']:.4f} on {m['check_windows']} others")
    if "partial" in m:
        print(f"  and its encoder for windows still filling: cosine to float mean {m['partial']['cosine_to_float_mean']:.4f}, "
              f"min {m['partial']['cosine_to_float_min']:.4f} on the same windows with their lead silenced")
    return 0
