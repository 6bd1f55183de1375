"""How well do partly filled audio windows find their snippet? (a study)

When music starts, the follower's 2.1 s window fills from silence: its first votes come
from windows of which only 30-70 % sound (``EngineConfig.min_sound_fraction``,
docs/improvements.md (t)). This study takes the seeded 2,000 test pairs of a dataset
(those of ``training evaluate``), silences the first frames of each audio snippet so
that only the last ``share`` of it sounds, and ranks the full score snippets against
it: audio -> score MRR and R@10 per share, for each run or bundle. A bundle embeds as the
engine does: partly filled windows with its encoder for them where it has one
(``training partial-audio``), full windows with its audio encoder.

    python -m studies.partial_windows RUN_OR_BUNDLE [...] --dataset DATA [--shares 0.3,0.5,0.7,1.0]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np


def partial_batch(x: np.ndarray, share: float) -> np.ndarray:
    """Copy of an audio batch (n, 1, bins, frames) whose first frames are silence (0), the last
    ``share`` of them kept."""
    from training.augment.partial import keep_last

    return keep_last(x, np.full(len(x), share))


def measure(run: Path, dataset: Path, shares, n_pairs: int, seed: int) -> dict:
    from training.data.split import load_split
    from training.evaluate import protocols as ev
    from training.evaluate.metrics import two_way_retrieval
    from training.run_dir import load_best

    if (run / "config.json").is_file():  # a bundle: its ONNX encoders, as the engine runs them
        from follower.bundle import load_bundle

        bundle = load_bundle(run)
        snip, score_fn = bundle.config.snippets, bundle.score
        partial_fn = bundle.audio_partial or bundle.audio

        def audio_fn_for(share):
            return bundle.audio if share >= 1.0 else partial_fn
    else:
        model, snip, _, _ = load_best(run)
        embedder = ev.TorchEmbedder(model)
        score_fn = embedder.score

        def audio_fn_for(share):
            return embedder.audio
    split = load_split(dataset, "test", snip)
    idx = ev.choose_pairs(len(split.pairs), n_pairs, seed)
    score = ev._batched(score_fn, lambda sl: split.roll_batch(idx[sl]), len(idx))
    out = {}
    for share in shares:
        audio = ev._batched(audio_fn_for(share), lambda sl: partial_batch(split.audio_batch(idx[sl]), share),
                            len(idx))
        a2s = two_way_retrieval(audio, score)[0]["audio2score"]
        out[f"{share:g}"] = {"mrr": float(a2s["mrr"]), "r10": float(a2s["r@10"])}
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m studies.partial_windows", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", nargs="+", type=Path,
                   help="run folders of `training train` / `training import`, or bundle folders")
    p.add_argument("--dataset", required=True, type=Path, help="dataset whose test split is queried")
    p.add_argument("--shares", default="0.3,0.5,0.7,1.0", help="sounding shares of the audio window")
    p.add_argument("--pairs", type=int, default=2000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("-o", "--out", type=Path, default=None, help="JSON of the results")
    args = p.parse_args(argv)
    import torch

    from follower.errors import ConfigError

    torch.set_num_threads(args.threads)
    shares = [float(s) for s in args.shares.split(",") if s.strip()]
    try:
        results = {str(r): measure(r, args.dataset, shares, args.pairs, args.seed) for r in args.runs}
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"audio -> score MRR (R@10) on {args.dataset}, {args.pairs} pairs; sounding share of the audio window:")
    print("| run | " + " | ".join(f"{s:g}" for s in shares) + " |")
    print("|---|" + "---|" * len(shares))
    for run, res in results.items():
        print(f"| {Path(run).name} | " + " | ".join(f"{res[f'{s:g}']['mrr']:.3f} ({res[f'{s:g}']['r10']:.2f})"
                                              for s in shares) + " |")
    if args.out:
        args.out.write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    from follower.cliutil import module_main

    raise SystemExit(module_main(main))
