"""``follower index build PATH... -o INDEX``: embed a MIDI corpus for the follower."""

from __future__ import annotations

from . import blas  # noqa: F401  (before numpy: one BLAS thread)

import argparse
import os

from .paths import DEFAULT_BUNDLE

EPILOG = """\
Each piece is named by its MIDI path relative to the folder given, without the
suffix (e.g. bach_bwv10.7). Unreadable files are skipped and listed at the end.

Resumable: every finished piece is kept in INDEX.parts/ until the index is
written; run the same command again after a stop and only the missing pieces
are embedded (a changed file or setting is embedded again).

example:
  follower index build ../shared/data/midi/bach-chorales -o exported/default/chorales.index.npz
"""


def register(subparsers) -> None:
    p = subparsers.add_parser("index", help="build or inspect the follower's piece index")
    sub = p.add_subparsers(dest="index_command", metavar="ACTION")
    b = sub.add_parser("build", help="embed every MIDI file under PATH... with the bundle's score encoder",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    b.add_argument("paths", nargs="+", metavar="PATH", help="MIDI files or folders (searched recursively)")
    b.add_argument("-o", "--output", required=True, metavar="INDEX", help="index file to write (.npz)")
    b.add_argument("--bundle", default=DEFAULT_BUNDLE, metavar="DIR",
                   help=f"model bundle whose score encoder embeds the snippets (default {DEFAULT_BUNDLE})")
    b.add_argument("--hop-frames", type=int, default=4,
                   help="snippet spacing in frames (4 = 0.2 s; smaller: finer, slower to build)")
    b.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                   help="processes embedding pieces in parallel, one onnxruntime thread each (default: one per core)")
    b.add_argument("--float32", action="store_true", help="store float32 embeddings (default float16)")
    b.add_argument("--parts", default=None, metavar="DIR",
                   help="where finished pieces wait until the index is written (default INDEX.parts; "
                        "removed then unless --keep-parts)")
    b.add_argument("--keep-parts", action="store_true", help="keep the parts folder after writing the index")
    b.add_argument("--quiet", action="store_true", help="no progress bar")
    b.set_defaults(func=run_build)
    i = sub.add_parser("info", help="summarise an index file")
    i.add_argument("index", metavar="INDEX")
    i.set_defaults(func=run_info)
    p.set_defaults(func=lambda args: (p.print_help(), 1)[1])


def run_build(args) -> int:
    import sys

    import numpy as np

    from .bundle import load_bundle
    from .index import build_index, save_index
    from .paths import resolve_bundle

    import shutil
    from pathlib import Path

    bundle = load_bundle(resolve_bundle(args.bundle), threads=1)
    parts = Path(args.parts or f"{args.output}.parts")
    index = build_index(args.paths, bundle, hop_frames=args.hop_frames, workers=max(1, args.workers),
                        dtype=np.float32 if args.float32 else np.float16, progress=not args.quiet,
                        parts_dir=parts)
    path = save_index(index, args.output)
    if not args.keep_parts:
        shutil.rmtree(parts, ignore_errors=True)
    h = index.header
    for s in h["skipped"]:
        print(f"skipped {s['reason']}", file=sys.stderr)
    resumed = f", {h['resumed_pieces']} of the pieces from an earlier run" if h["resumed_pieces"] else ""
    print(f"{path}: {h['n_pieces']} pieces, {h['n_snippets']} snippets every {h['hop_frames']} frames "
          f"({h['n_encoded']} embedded, the rest repeats), {len(h['skipped'])} skipped, {h['build_s']} s "
          f"({h['n_snippets'] / max(h['build_s'], 0.1):.0f} snippets/s{resumed}), "
          f"bundle {h['bundle_fingerprint']}, score side {h['index_fingerprint']}")
    return 0


def run_info(args) -> int:
    from .index import load_index

    index = load_index(args.index)
    h = index.header
    readers = (f"bundles of score side {h['index_fingerprint']}" if "index_fingerprint" in h else
               "that bundle and those quantised from it (an older index)")
    print(f"{args.index}: {index.n_pieces} pieces, {index.n_snippets} snippets of {index.embeddings.shape[1]}-d "
          f"{index.embeddings.dtype}, every {h['hop_frames']} frames, built by bundle "
          f"{h.get('bundle_fingerprint', '?')}, read by {readers}; {len(h.get('skipped', []))} files skipped "
          "when built")
    return 0
