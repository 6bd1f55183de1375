"""How long did the follower follow a wrong piece? (from `studies.decoders` logs)

``python -m studies.wrong_follow RESULT.json LOGS [RESULT.json LOGS ...]`` prints, per
material kind, the benchmark's identification and position numbers from each
``studies.decoders`` result, and from its ``--logs`` records the items on which the
engine was ``following`` a wrong piece for more than 1 s in a row (the longest such
stretch per item), the safety measure of an earlier lock.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

LIMIT_S = 1.0
UPDATE_S = 0.05  # a record covers its update


def longest_wrong_s(records: list[dict], piece: str) -> float:
    """Longest run of consecutive records in state ``following`` on a piece other than ``piece``,
    each record covering its 50 ms update (the benchmark's measure, :func:`benchmarks.metrics.longest_span_s`)."""
    import numpy as np

    from benchmarks.metrics import longest_span_s

    wrong = np.array([r.get("state") == "following" and r.get("piece") not in (None, piece) for r in records])
    if not wrong.any():
        return 0.0
    return longest_span_s(np.array([r["t"] for r in records], float), wrong) + UPDATE_S


def rows(result_path: Path, logs: Path) -> list[str]:
    result = json.loads(Path(result_path).read_text())
    manifest = json.loads((Path(result["setup"]["material"]) / "manifest.json").read_text())
    pieces = {it["name"]: (it["kind"], it["piece"]) for it in manifest}
    out = []
    for system, kinds in result["summary"].items():
        for kind, row in kinds.items():
            names = [n for n in result["items"][system] if pieces[n][0] == kind]
            wrong = {}
            for n in names:
                recs = [json.loads(line) for line in (Path(logs) / f"{system}-{n}.jsonl").read_text().splitlines()]
                w = longest_wrong_s(recs, pieces[n][1])
                if w > LIMIT_S:
                    wrong[n] = round(w, 2)
            out.append(f"| {kind} | {row['items']} | {row['stable_median_s']:.2f} / {row['stable_p90_s']:.2f} | "
                       f"{row['acc_end']:.2f} | {len(wrong)} {sorted(wrong.items()) if wrong else ''} | "
                       f"{row['within_0.25']:.2f} / {row['within_0.5']:.2f} | {row['coverage']:.2f} |")
    return out


def main(argv=None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or len(args) % 2:
        print("usage: python -m studies.wrong_follow RESULT.json LOGS [RESULT.json LOGS ...]", file=sys.stderr)
        return 2
    print("| material | items | stable id median / p90 (s) | right at end | wrong followed > 1 s | "
          "pos <= 0.25 / 0.5 s | coverage |\n|---|---|---|---|---|---|---|")
    for result, logs in zip(args[::2], args[1::2]):
        try:
            lines = rows(Path(result), Path(logs))
        except (OSError, KeyError, ValueError) as e:  # a missing file or log, or not decoders output
            print(f"error: {result} / {logs}: {e.__class__.__name__}: {e}", file=sys.stderr)
            return 1
        for line in lines:
            print(line)
    return 0


if __name__ == "__main__":
    from follower.cliutil import module_main

    raise SystemExit(module_main(main))
