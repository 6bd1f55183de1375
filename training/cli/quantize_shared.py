"""``training quantize-shared BUNDLE -o OUT --midi PATH...``: an int8 shared-trunk score encoder for index builds."""

from __future__ import annotations

import argparse

EPILOG = """\
The shipped bundle's int8 pair was made with (the chorale corpus; the pieces alternate
between calibration and check):

  training quantize-shared exported/default -o exported/default --midi ../shared/data/midi/bach-chorales

Then build with it:

  follower index build MY_LIBRARY/ -o library.index.npz --score-encoder shared-int8

The follower's own encoders and the bundle's name (fingerprint) are unchanged; indexes
built with the pair record it (score encoder shared-int8) and carry their own index
fingerprint. OUT may be BUNDLE itself.
"""


def register(subparsers) -> None:
    from ..fit.quantize_shared import QuantizeSharedConfig

    d = QuantizeSharedConfig()
    p = subparsers.add_parser(
        "quantize-shared", help="int8 shared-trunk score encoder: cheaper index builds for large libraries",
        description="Quantise the bundle's shared-trunk score encoder (score_trunk.onnx + score_head.shared.onnx, "
                    "written by `training shared-head`) to int8 (QDQ, onnxruntime.quantization), calibrated on "
                    "the inputs an index build of half of the given MIDI files feeds it, checked on the other "
                    "half; below --min-cosine nothing is written.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("bundle", help="bundle folder carrying the shared trunk + head")
    p.add_argument("-o", "--out", required=True, help="bundle folder to write (may be BUNDLE)")
    p.add_argument("--midi", nargs="+", required=True, metavar="PATH",
                   help="MIDI files or folders like the libraries to be indexed")
    p.add_argument("--max-files", type=int, default=d.max_files,
                   help="files used, evenly over the sorted list, half to calibrate and half to check "
                        "(default %(default)s)")
    p.add_argument("--min-cosine", type=float, default=d.min_cosine,
                   help="mean cosine of int8 vs float embeddings needed to write (default %(default)s)")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..fit.quantize_shared import QuantizeSharedConfig, quantize_shared

    m = quantize_shared(args.bundle, args.out, args.midi,
                        QuantizeSharedConfig(max_files=args.max_files, min_cosine=args.min_cosine))
    print(f"wrote {args.out} (fingerprint {m['fingerprint']}; its shared-int8 indexes: {m['index_fingerprint']}): "
          f"calibrated on {m['calibration_files']} pieces, cosine to the float pair mean "
          f"{m['cosine_to_float_mean']:.4f}, p01 {m['cosine_to_float_p01']:.4f} on {m['check_snippets']} "
          f"snippets of {m['check_files']} others")
    return 0
