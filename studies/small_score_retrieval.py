"""Snippet retrieval of a bundle's audio encoder against its full and its small score encoder, paired.

    python -m studies.small_score_retrieval BUNDLE --chorales data/v2-test-chorales --piano data/v2-test-piano

The pairs and metric of ``training evaluate`` (2,000 pairs drawn with seed 0 from each
test split, and Bach10's aligned onset pairs; ``training.evaluate.protocols``), here on
the bundle's ONNX encoders: the audio windows are embedded once and ranked against the
score windows embedded by each score encoder, so the two MRRs differ only by the score
side. Also the cosine of the small to the full score embeddings of the same windows.
``docs/improvements.md`` (p) quotes it.
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np


def main(argv=None) -> int:
    from follower.bundle import AUDIO_ONNX, SCORE_ONNX, SCORE_SMALL_ONNX, Encoder, read_config
    from follower.errors import FollowerError
    from training.data.bach10 import RealPairs, load_bach10
    from training.data.split import load_split
    from training.evaluate import protocols as ev
    from training.evaluate.metrics import two_way_retrieval
    from training.paths import data_root

    p = argparse.ArgumentParser(prog="python -m studies.small_score_retrieval", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("bundle")
    p.add_argument("--chorales", help="dataset folder with a test split (synthetic chorales)")
    p.add_argument("--piano", help="dataset folder with a test split (synthetic piano)")
    p.add_argument("--bach10", default=str(data_root() / "real" / "bach10"))
    p.add_argument("-o", "--out", help="also write the numbers as JSON")
    args = p.parse_args(argv)
    try:
        cfg = read_config(args.bundle)
        snip, feat = cfg.snippets, cfg.features
        audio = Encoder(f"{args.bundle}/{AUDIO_ONNX}")
        scores = {"full": Encoder(f"{args.bundle}/{SCORE_ONNX}"), "small": Encoder(f"{args.bundle}/{SCORE_SMALL_ONNX}")}
        sets = {}
        for name, folder in (("chorales_test", args.chorales), ("piano_test", args.piano)):
            if folder:
                sets[name] = load_split(folder, "test", snip)
        if args.bach10:
            sets["bach10"] = RealPairs(load_bach10(args.bach10, snip, feat, progress=False), snip, feat)
    except (FollowerError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    out = {}
    for name, data in sets.items():
        idx = ev.choose_pairs(len(data.pairs), ev.N_PAIRS, 0)
        a = ev._batched(audio, lambda sl: data.audio_batch(idx[sl]), len(idx))
        emb = {k: ev._batched(s, lambda sl: data.roll_batch(idx[sl]), len(idx)) for k, s in scores.items()}
        row = {"pairs": int(len(idx))}
        for k, s in emb.items():
            m, _ = two_way_retrieval(a, s)
            row[f"{k}_a2s_mrr"] = round(m["audio2score"]["mrr"], 4)
            row[f"{k}_s2a_mrr"] = round(m["score2audio"]["mrr"], 4)
        cos = (emb["full"] * emb["small"]).sum(1)
        row["cosine_mean"], row["cosine_p05"] = round(float(cos.mean()), 4), round(float(np.quantile(cos, 0.05)), 4)
        out[name] = row
        print(name, json.dumps(row), flush=True)
    if args.out:
        with open(args.out, "w") as f:
            json.dump(out, f, indent=1)
    return 0


if __name__ == "__main__":
    from follower.cliutil import module_main

    raise SystemExit(module_main(main))
