"""Scores for one run of a follower (or peer) on one item, from its JSON-lines log.

Every system is reduced to the follower's ``--jsonl`` records: ``t`` (seconds of
audio consumed), ``piece``, ``position_s`` (seconds of the MIDI's own timeline),
``state`` and ``latency_ms``. Peers that know no piece or state write the true
piece and ``"following"``, so one set of definitions serves all:

* piece accuracy at T s: the last record with ``t <= T`` names the true piece
  (nothing reported yet counts as wrong); "end" is the last record;
* time to a stable correct identification: ``t`` of the first record from which
  every later record names the true piece (inf when the last one is wrong);
* position error once locked: ``|position_s - truth(t)|`` over the records in state
  ``following`` on the true piece, where the truth is defined; the share of the
  records after the first lock that are locked is reported as coverage, so that a
  system cannot look precise by following only its easy moments;
* longest wrong follow: the longest span (s) of consecutive records in state
  ``following`` on a piece other than the true one -- a wrong piece on stage drives the
  wrong electronics, so the product's target is never more than 1 s;
* recovery after a jump (renditions with jumps, :class:`benchmarks.warp.JumpMap`):
  seconds from the jump to the first record that follows the true piece within 0.5 s
  of the truth again (inf when that never happens before the next jump or the end).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .warp import TimeMap

ACCURACY_TIMES_S = (2.0, 5.0, 10.0)
POSITION_TOLERANCES_S = (0.25, 0.5, 1.0)
RECOVERED_WITHIN_S = 0.5


def load_jsonl(path: Path) -> list[dict]:
    records = []
    for n, line in enumerate(Path(path).read_text().splitlines(), 1):
        line = line.strip()
        if not line:
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}:{n}: not a JSON object ({e.msg})") from e
    return records


def normalise_piece(piece) -> str | None:
    return None if piece is None else str(piece).replace("\\", "/").strip()


@dataclass
class ItemScores:
    """What one system did on one item."""

    correct_at: dict                  # "2", "5", "10", "end" -> bool
    time_to_stable_s: float           # inf if never stable
    position_errors_s: np.ndarray     # once locked, where the truth is defined
    coverage: float                   # locked share of the records after the first lock
    latency_ms: np.ndarray
    curve_t_s: np.ndarray = field(repr=False)        # record times
    curve_correct: np.ndarray = field(repr=False)    # per record: names the true piece
    recovery_s: list = field(default_factory=list)   # per jump of the rendition: seconds to be back on it
    wrong_follow_s: float = 0.0                      # longest span following a wrong piece
    position_t_s: np.ndarray = field(default_factory=lambda: np.empty(0), repr=False)  # the time of each error


def score_item(records: list[dict], true_piece: str, truth: TimeMap) -> ItemScores:
    true_piece = normalise_piece(true_piece)
    if not records:
        return ItemScores({str(int(t)): False for t in ACCURACY_TIMES_S} | {"end": False}, np.inf,
                          np.empty(0), 0.0, np.empty(0), np.empty(0), np.empty(0, bool),
                          [np.inf] * len(getattr(truth, "jumps_s", [])))
    t = np.array([float(r["t"]) for r in records])
    correct = np.array([normalise_piece(r.get("piece")) == true_piece for r in records])
    correct_at = {}
    for limit in ACCURACY_TIMES_S:
        heard = np.flatnonzero(t <= limit + 1e-9)
        correct_at[str(int(limit))] = bool(heard.size and correct[heard[-1]])
    correct_at["end"] = bool(correct[-1])

    wrong = np.flatnonzero(~correct)
    if not correct[-1]:
        stable_s = np.inf
    else:
        stable_s = float(t[wrong[-1] + 1]) if wrong.size else float(t[0])

    locked = correct & np.array([r.get("state") == "following" for r in records])
    pos = np.array([np.nan if r.get("position_s") is None else float(r["position_s"]) for r in records])
    truth_s = truth.audio_to_midi(t)
    usable = locked & np.isfinite(truth_s) & np.isfinite(pos)
    errors = np.abs(pos[usable] - truth_s[usable])
    first = np.flatnonzero(locked)
    coverage = float(locked[first[0]:].mean()) if first.size else 0.0
    latency = np.array([float(r["latency_ms"]) for r in records if r.get("latency_ms") is not None])
    on_it = locked & np.isfinite(truth_s) & np.isfinite(pos) & (np.abs(pos - truth_s) <= RECOVERED_WITHIN_S)
    jumps = list(getattr(truth, "jumps_s", []))
    recovery = []
    for k, jump in enumerate(jumps):
        until = jumps[k + 1] if k + 1 < len(jumps) else np.inf
        back = np.flatnonzero(on_it & (t >= jump) & (t < until))
        recovery.append(float(t[back[0]] - jump) if back.size else np.inf)
    following = np.array([r.get("state") == "following" for r in records])
    return ItemScores(correct_at, stable_s, errors, coverage, latency, t, correct, recovery,
                      longest_span_s(t, following & ~correct), t[usable])


def longest_span_s(t: np.ndarray, on: np.ndarray) -> float:
    """Longest time from the first to the last of a run of consecutive ``on`` records
    (one record alone spans 0 s)."""
    longest, start = 0.0, None
    for k in range(len(t)):
        if on[k]:
            start = t[k] if start is None else start
            longest = max(longest, float(t[k] - start))
        else:
            start = None
    return longest


def percentile_or_inf(values, q: float) -> float:
    """Percentile that stays inf when more than (100 - q) % of the items never got there."""
    v = np.sort(np.asarray(values, dtype=float))
    if v.size == 0:
        return np.nan
    k = int(np.ceil(q / 100 * v.size)) - 1
    return float(v[max(k, 0)])


def summarise(scores: list[ItemScores]) -> dict:
    """Table row over items: accuracies, identification time, position error, latency."""
    n = len(scores)
    row = {"items": n}
    for key in [str(int(t)) for t in ACCURACY_TIMES_S] + ["end"]:
        row[f"acc_{key}"] = float(np.mean([s.correct_at[key] for s in scores])) if n else np.nan
    times = [s.time_to_stable_s for s in scores]
    row["identified"] = int(np.isfinite(times).sum())
    row["stable_median_s"] = percentile_or_inf(times, 50)
    row["stable_p90_s"] = percentile_or_inf(times, 90)
    errors = np.concatenate([s.position_errors_s for s in scores]) if n else np.empty(0)
    row["locked_updates"] = int(errors.size)
    for tol in POSITION_TOLERANCES_S:
        row[f"within_{tol:g}"] = float(np.mean(errors <= tol)) if errors.size else np.nan
    row["pos_median_s"] = float(np.median(errors)) if errors.size else np.nan
    row["coverage"] = float(np.mean([s.coverage for s in scores])) if n else np.nan
    recovery = [r for s in scores for r in s.recovery_s]
    row["jumps"] = len(recovery)
    row["recovery_median_s"] = percentile_or_inf(recovery, 50) if recovery else np.nan
    row["recovery_p90_s"] = percentile_or_inf(recovery, 90) if recovery else np.nan
    row["wrong_follow_max_s"] = max((s.wrong_follow_s for s in scores), default=np.nan)
    row["wrong_follow_items"] = int(sum(s.wrong_follow_s > 1.0 for s in scores))
    latency = np.concatenate([s.latency_ms for s in scores]) if n else np.empty(0)
    row["latency_p50_ms"] = float(np.percentile(latency, 50)) if latency.size else np.nan
    row["latency_p99_ms"] = float(np.percentile(latency, 99)) if latency.size else np.nan
    return row


def accuracy_curve(scores: list[ItemScores], durations_s: list[float], grid_s: np.ndarray) -> np.ndarray:
    """Share of items naming the true piece after ``grid_s`` seconds heard, over the
    items that last at least that long (NaN where none does)."""
    out = np.full(len(grid_s), np.nan)
    for k, limit in enumerate(grid_s):
        hits = []
        for s, d in zip(scores, durations_s):
            if d + 1e-9 < limit:
                continue
            heard = np.flatnonzero(s.curve_t_s <= limit + 1e-9)
            hits.append(bool(heard.size and s.curve_correct[heard[-1]]))
        if hits:
            out[k] = np.mean(hits)
    return out
