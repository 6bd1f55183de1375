"""How early could the follower name the piece from the evidence it has? (a study)

One engine pass per item records, per update, the verified candidates, the
re-ranking and the state. For each item it reports when the right piece first appears
among the candidates, from when on it stays the verification's leader and the
re-ranking's leader, and from when on it is locked. The gap between "leader for good"
and "locked" is what a better lock rule over the same evidence could gain; the time
before "leader for good" belongs to the evidence itself (docs/benchmarks.md, "Where our
follower is behind").

    python -m studies.early_decision --material data/bench/tuning --index INDEX
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


def stable_from(times, ok) -> float:
    """The earliest time after which ``ok`` holds to the end (inf if it never does)."""
    bad = [i for i, o in enumerate(ok) if not o]
    first = bad[-1] + 1 if bad else 0
    return float(times[first]) if first < len(times) else float("inf")


def item_times(updates, piece: str) -> dict:
    t = [u.t for u in updates]
    return {
        "in_candidates_s": next((u.t for u in updates if any(c[0] == piece for c in u.candidates)), float("inf")),
        "verified_leader_s": stable_from(t, [bool(u.candidates) and u.candidates[0][0] == piece for u in updates]),
        "reranked_leader_s": stable_from(t, [bool(u.reranked) and u.reranked[0][0] == piece for u in updates]),
        "locked_s": stable_from(t, [u.state == "following" and u.piece == piece for u in updates]),
    }


def replay(bundle, index, path):
    """Every update of one item, as the engine returns them (the study reads candidates and re-ranking)."""
    from follower.engine import Engine

    from .decoders import read_audio

    signal, rate = read_audio(path)
    engine = Engine(bundle, index, input_rate_hz=rate)
    out = []
    for start in range(0, len(signal), 1024):
        out += engine.push(signal[start:start + 1024], last=start + 1024 >= len(signal))
    return out


def main(argv=None) -> int:
    from follower.bundle import load_bundle
    from follower.index import load_index

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--material", type=Path, required=True, help="a folder with manifest.json (benchmarks.material)")
    p.add_argument("--index", type=Path, required=True)
    p.add_argument("--bundle", type=Path, default=Path("exported/default"))
    p.add_argument("--kinds", default="chorale")
    p.add_argument("-o", "--out", type=Path, default=None, help="per-item times as JSON")
    a = p.parse_args(argv)
    bundle, index = load_bundle(a.bundle, threads=1), load_index(a.index)
    items = [i for i in json.loads((a.material / "manifest.json").read_text()) if i["kind"] in a.kinds.split(",")]
    rows = {}
    for item in items:
        rows[item["name"]] = item_times(replay(bundle, index, item["audio"]), item["piece"])
        print(item["name"], {k: round(v, 2) for k, v in rows[item["name"]].items()}, flush=True)
    keys = ["in_candidates_s", "verified_leader_s", "reranked_leader_s", "locked_s"]
    print("median", {k: round(float(np.median([r[k] for r in rows.values()])), 2) for k in keys})
    if a.out:
        a.out.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    from follower.cliutil import module_main

    raise SystemExit(module_main(main))
