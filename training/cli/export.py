"""``training export RUN -o exported/NAME``: the ONNX bundle of a trained run."""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "export", help="write a run's encoders as an ONNX bundle",
        description="Write RUN/best.pt as a model bundle: audio_encoder.onnx, score_encoder.onnx "
                    "(dynamic batch, L2-normalised 'embedding' output), config.json (feature and "
                    "snippet settings, versions, sha256) and metrics.json (RUN/metrics.json from "
                    "`training evaluate`, if present). onnxruntime is checked against torch "
                    "(atol 1e-4) before the config is written.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("run", nargs="?", help="run folder written by `training train`")
    p.add_argument("-o", "--out", required=True, help="bundle folder to write")
    p.add_argument("--untrained", action="store_true",
                   help="export a seeded, untrained model with default settings (no RUN needed)")
    p.add_argument("--seed", type=int, default=0, help="initial weights of --untrained")
    p.set_defaults(func=run)

    i = subparsers.add_parser(
        "import", help="read a bundle's ONNX encoders back into a run folder (to evaluate or compare it)",
        description="Write RUN/best.pt and RUN/run.json from a bundle (e.g. exported/default), so "
                    "`training evaluate RUN` measures a shipped model on any dataset. The export folds "
                    "BatchNorm into the convolutions; the weights are read back exactly (checked against "
                    "onnxruntime, atol 1e-4). `training train --init-from BUNDLE` uses the same reading.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    i.add_argument("bundle", help="bundle folder (config.json + two ONNX encoders)")
    i.add_argument("-o", "--out", required=True, help="run folder to write")
    i.add_argument("--dataset", default=None, help="dataset `training evaluate` should use by default")
    i.set_defaults(func=run_import)


def run_import(args) -> int:
    from pathlib import Path

    from ..model.from_onnx import model_from_bundle
    from ..run_dir import write_run

    model, snippets, features, info = model_from_bundle(args.bundle)
    if args.dataset:
        info["dataset"] = str(Path(args.dataset).resolve())
    best = write_run(args.out, model, snippets, features, info)
    print(f"wrote {best} from {args.bundle} (fingerprint {info['from_bundle']['fingerprint']}, "
          f"torch vs onnx max diff {max(info['from_bundle']['max_abs_diff_vs_onnx'].values()):.1e})")
    return 0


def run(args) -> int:
    import json
    from pathlib import Path

    from follower.errors import ConfigError

    from ..run_dir import METRICS_JSON, load_best
    from ..export import export_bundle, untrained_bundle

    if args.untrained:
        config = untrained_bundle(args.out, seed=args.seed)
    else:
        if not args.run:
            raise ConfigError("give a RUN folder to export, or --untrained")
        model, snippets, features, info = load_best(args.run)
        metrics_path = Path(args.run) / METRICS_JSON
        metrics = json.loads(metrics_path.read_text()) if metrics_path.is_file() else {}
        config = export_bundle(model, args.out, snippet_config=snippets, feature_config=features,
                               metrics=metrics, training_info=info)
    print(f"wrote {args.out} (fingerprint {config.fingerprint}, "
          f"onnx vs torch max diff {config.training['onnx_max_abs_diff']})")
    return 0
