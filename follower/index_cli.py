"""``follower index build PATH... -o INDEX``: embed a MIDI corpus for the follower."""

from __future__ import annotations

from . import blas  # noqa: F401  (before numpy: one BLAS thread)

import argparse
import os

from .bundle import SCORE_ENCODERS
from .paths import DEFAULT_BUNDLE

EPILOG = """\
Each piece is named by its MIDI path relative to the folder given, without the
suffix (e.g. bach_bwv10.7). Unreadable files are skipped and listed at the end.

Resumable: every finished piece is kept in INDEX.parts/ until the index is
written; run the same command again after a stop and only the missing pieces
are embedded (a changed file or setting is embedded again).


Large libraries: --ray spreads the build over a Ray cluster (local by default,
--ray-address for a running cluster); indexes of more than 300,000 snippets get an
approximate-search structure (faiss HNSW) that the follower then searches instead of
the exact pass (--ann to choose). Both need the `scale` extra:
pip install 'scorefollow[scale]'.

examples:
  follower index build ../shared/data/midi/bach-chorales -o exported/default/chorales.index.npz
  follower index build /music/midi -o big.index.npz --ray                    # local Ray, one worker per core
  follower index build /music/midi -o big.index.npz --ray-address auto       # on a node of a running cluster
"""

MERGE_EPILOG = """\
The indexes must come from one bundle (same fingerprint) and one --hop-frames.
Pieces keep their order. A piece id already in an earlier index is dropped when its
snippets are identical (the same file built twice) and otherwise kept under
<index name>/<id>; every such case is listed.

example:
  follower index merge part1.index.npz part2.index.npz -o all.index.npz
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
    b.add_argument("--score-encoder", choices=tuple(SCORE_ENCODERS), default="full",
                   help="which of the bundle's score encoders embeds the snippets: full (default: each snippet "
                        "alone); shared (the full encoder's first blocks run once over each piece, a fine-tuned "
                        "last block per snippet: several times faster, for large libraries; bundles that carry "
                        "score_trunk.onnx); shared-int8, that pair in int8 (about 1.6x cheaper again; training "
                        "quantize-shared); or small, a distilled one (score_encoder.small.onnx). "
                        "docs/benchmarks.md measures each; the index records which")
    b.add_argument("--hop-frames", type=int, default=4,
                   help="snippet spacing in frames (4 = 0.2 s; smaller: finer, slower to build)")
    b.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                   help="processes embedding pieces in parallel, one onnxruntime thread each (default: one per core)")
    b.add_argument("--float32", action="store_true", help="store float32 embeddings (default float16)")
    b.add_argument("--parts", default=None, metavar="DIR",
                   help="where finished pieces wait until the index is written (default INDEX.parts; "
                        "removed then unless --keep-parts)")
    b.add_argument("--keep-parts", action="store_true", help="keep the parts folder after writing the index")
    b.add_argument("--ray", action="store_true",
                   help="build on Ray: files sharded over workers, one per core of a local Ray instance unless "
                        "--ray-address is given (the same index as without; needs the scale extra)")
    b.add_argument("--ray-address", default=None, metavar="ADDR",
                   help="join this Ray cluster (ray://HOST:10001, or auto on one of its nodes) and use every CPU "
                        "it has; implies --ray")
    add_ann_argument(b)
    b.add_argument("--quiet", action="store_true", help="no progress bar")
    b.set_defaults(func=run_build)
    m = sub.add_parser("merge", help="join indexes built separately with one bundle into one",
                       epilog=MERGE_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    m.add_argument("inputs", nargs="+", metavar="INDEX", help="index files to join, in this order")
    m.add_argument("-o", "--output", required=True, metavar="INDEX", help="index file to write (.npz)")
    add_ann_argument(m)
    m.add_argument("--quiet", action="store_true", help="no progress bar")
    m.set_defaults(func=run_merge)
    a = sub.add_parser("ann", help="add (or replace) the approximate-search structure of an index in place")
    a.add_argument("index", metavar="INDEX")
    a.add_argument("--kind", choices=("hnsw", "ivfpq"), default="hnsw", help="structure to build (default hnsw)")
    a.add_argument("--remove", action="store_true", help="drop the structure instead: exact search only")
    a.set_defaults(func=run_ann)
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

    bundle = load_bundle(resolve_bundle(args.bundle), threads=1, score_encoder=args.score_encoder)
    dtype = np.float32 if args.float32 else np.float16
    if args.ann in ("hnsw", "ivfpq"):
        from .ann import import_faiss

        import_faiss()  # refuse before the long build, not after it
    parts = Path(args.parts or f"{args.output}.parts")
    if args.ray or args.ray_address:
        from .ray_build import build_index_ray

        workers = None if args.ray_address else max(1, args.workers)  # a cluster: every CPU it has
        index = build_index_ray(args.paths, bundle, hop_frames=args.hop_frames, dtype=dtype,
                                address=args.ray_address, workers=workers, progress=not args.quiet)
    else:
        index = build_index(args.paths, bundle, hop_frames=args.hop_frames, workers=max(1, args.workers),
                            dtype=dtype, progress=not args.quiet, parts_dir=parts)
    ann_note = add_ann(index, args.ann)
    path = save_index(index, args.output)
    if not args.keep_parts:
        shutil.rmtree(parts, ignore_errors=True)
    h = index.header
    for s in h["skipped"]:
        print(f"skipped {s['reason']}", file=sys.stderr)
    resumed = f", {h['resumed_pieces']} of the pieces from an earlier run" if h.get("resumed_pieces") else ""
    print(f"{path}: {h['n_pieces']} pieces, {h['n_snippets']} snippets every {h['hop_frames']} frames "
          f"({h['n_encoded']} embedded, the rest repeats), {len(h['skipped'])} skipped, {h['build_s']} s "
          f"({h['n_snippets'] / max(h['build_s'], 0.1):.0f} snippets/s{resumed}), "
          f"bundle {h['bundle_fingerprint']}, {h['score_encoder']} score encoder, score side "
          f"{h['index_fingerprint']}{ann_note}")
    return 0


def add_ann_argument(p) -> None:
    p.add_argument("--ann", choices=("auto", "none", "hnsw", "ivfpq"), default="auto",
                   help="approximate-search structure to store with the index: auto = hnsw above 300,000 "
                        "snippets, none below (exact search); none = never (default auto; needs the scale extra)")


def add_ann(index, choice: str) -> str:
    """Attach the structure ``--ann`` asks for; the note for the summary line."""
    from .ann import AUTO_THRESHOLD, AnnConfig, attach_ann

    kind = ("hnsw" if index.n_snippets > AUTO_THRESHOLD else None) if choice == "auto" else \
        (None if choice == "none" else choice)
    if kind is None:
        return ", exact search"
    if choice == "auto":
        try:
            import faiss  # noqa: F401
        except ImportError:
            return (f", exact search (over {AUTO_THRESHOLD:,} snippets an approximate one would answer faster: "
                    "pip install 'scorefollow[scale]', then follower index ann INDEX)")
    seconds = attach_ann(index, AnnConfig(kind=kind), threads=os.cpu_count())
    return f", {kind} search structure ({seconds:.0f} s)"


def run_merge(args) -> int:
    import sys

    from .index import load_index, save_index
    from .merge import merge_indexes

    parts = [load_index(p) for p in args.inputs]
    index, report = merge_indexes(parts, args.inputs)
    for line in report[:20]:
        print(line, file=sys.stderr)
    if len(report) > 20:
        print(f"... and {len(report) - 20} more duplicate ids (all listed in the merged index's header)", file=sys.stderr)
    ann_note = add_ann(index, args.ann)
    path = save_index(index, args.output)
    print(f"{path}: {index.n_pieces} pieces, {index.n_snippets} snippets from {len(parts)} indexes, "
          f"{len(report)} duplicate ids ({sum('kept once' in r for r in report)} dropped, "
          f"{sum('kept as' in r for r in report)} renamed), bundle {index.fingerprint}{ann_note}")
    return 0


def run_ann(args) -> int:
    from .index import load_index, save_index

    index = load_index(args.index)
    if args.remove:
        index.ann = None
        index.header.pop("ann", None)
        save_index(index, args.index)
        print(f"{args.index}: {index.n_snippets} snippets, exact search only")
        return 0
    note = add_ann(index, args.kind)
    save_index(index, args.index)
    print(f"{args.index}: {index.n_snippets} snippets{note}")
    return 0


def run_info(args) -> int:
    from .index import load_index

    index = load_index(args.index)
    h = index.header
    ann = h.get("ann")
    search = f"{ann['kind']} approximate search" if ann and index.ann is not None else "exact search"
    readers = (f"bundles of score side {h['index_fingerprint']}" if "index_fingerprint" in h else
               "that bundle and those quantised from it (an older index)")
    print(f"{args.index}: {index.n_pieces} pieces, {index.n_snippets} snippets of {index.embeddings.shape[1]}-d "
          f"{index.embeddings.dtype}, every {h['hop_frames']} frames, built by bundle "
          f"{h.get('bundle_fingerprint', '?')} with its {index.score_encoder} score encoder, read by {readers}; {len(h.get('skipped', []))} files skipped "
          f"when built; {search}")
    return 0
