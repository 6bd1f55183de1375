"""Tables and figures of docs/benchmarks.md from the cached run logs.

The document keeps hand-written prose; only the text between
``<!-- generated:NAME -->`` and ``<!-- /generated:NAME -->`` markers is rewritten.
"""

from __future__ import annotations

import json
import platform
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .copies import count_misses
from .material import Item
from .metrics import ItemScores, accuracy_curve, load_jsonl, score_item, summarise
from .warp import load_truth

GROUPS = (("chorale", "Synthetic chorales"), ("piano", "Synthetic piano"), ("jumps", "Jumps and restarts"),
          ("bach10", "Bach10 (real)"))
CURVE_GRID_S = np.arange(1.0, 46.0, 1.0)


@dataclass
class SystemRun:
    name: str                   # label in tables
    folder: Path
    identifies: bool            # does it name the piece itself?
    scores: dict                # item name -> ItemScores
    stats: dict                 # item name -> stats dict
    process_stats: dict         # for batch systems: the one child process


def load_run(name: str, folder: Path, items: list[Item], identifies: bool) -> SystemRun:
    scores, stats = {}, {}
    for item in items:
        jsonl = folder / f"{item.name}.jsonl"
        if not jsonl.exists():
            continue
        scores[item.name] = score_item(load_jsonl(jsonl), item.piece, load_truth(Path(item.truth)))
        sp = Path(str(jsonl) + ".stats.json")
        stats[item.name] = json.loads(sp.read_text()) if sp.exists() else {}
    ps = folder / "process.stats.json"
    return SystemRun(name, folder, identifies, scores, stats, json.loads(ps.read_text()) if ps.exists() else {})


def family_accuracy_end(run: SystemRun, items: list[Item], family_of: dict) -> float:
    hits = []
    for item in items:
        if item.name not in run.scores:
            continue
        last = load_jsonl(run.folder / f"{item.name}.jsonl")
        predicted = last[-1].get("piece") if last else None
        hits.append(family_of.get(predicted, predicted) == item.tune_family)
    return float(np.mean(hits)) if hits else np.nan


def pct(x) -> str:
    return "–" if x is None or not np.isfinite(x) else f"{100 * x:.0f} %"


def secs(x, digits=1) -> str:
    if x is None or (isinstance(x, float) and np.isnan(x)):
        return "–"
    return "never" if not np.isfinite(x) else f"{x:.{digits}f} s"


def ms(x) -> str:
    return "–" if x is None or not np.isfinite(x) else f"{x:.1f} ms"


def identification_table(runs: list[SystemRun], items: list[Item], family_of: dict) -> str:
    lines = ["| material | system | acc. 2 s | acc. 5 s | acc. 10 s | acc. end | tune family, end | "
             "identified stably | time to stable id. (median / p90) | longest wrong follow (items > 1 s) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for kind, label in GROUPS:
        group = [i for i in items if i.kind == kind]
        for run in runs:
            if not run.identifies:
                continue
            scores = [run.scores[i.name] for i in group if i.name in run.scores]
            if not scores:
                continue
            row = summarise(scores)
            fam = pct(family_accuracy_end(run, group, family_of)) if kind != "piano" else "n/a"
            lines.append(f"| {label} | {run.name} | {pct(row['acc_2'])} | {pct(row['acc_5'])} | {pct(row['acc_10'])} | "
                         f"{pct(row['acc_end'])} | {fam} | {row['identified']}/{row['items']} | "
                         f"{secs(row['stable_median_s'])} / {secs(row['stable_p90_s'])} | "
                         f"{secs(row['wrong_follow_max_s'])} ({row['wrong_follow_items']}) |")
    return "\n".join(lines)


def following_table(runs: list[SystemRun], items: list[Item]) -> str:
    lines = ["| material | system | within 0.25 s | within 0.5 s | within 1 s | median error | "
             "locked share after first lock | locked updates | back within 0.5 s after a jump (median / p90) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for kind, label in GROUPS:
        group = [i for i in items if i.kind == kind]
        for run in runs:
            scores = [run.scores[i.name] for i in group if i.name in run.scores]
            if not scores:
                continue
            row = summarise(scores)
            lines.append(f"| {label} | {run.name} | {pct(row['within_0.25'])} | {pct(row['within_0.5'])} | "
                         f"{pct(row['within_1'])} | {secs(row['pos_median_s'], 2)} | {pct(row['coverage'])} | "
                         f"{row['locked_updates']} | "
                         + (f"{secs(row['recovery_median_s'])} / {secs(row['recovery_p90_s'])} |" if row["jumps"]
                            else "– |"))
    return "\n".join(lines)


def copies_table(runs: list[SystemRun], items: list[Item], tolerance_s: float = 0.5) -> str:
    """How many of the updates off by more than ``tolerance_s`` report another statement of the notes
    the truth plays (:mod:`benchmarks.copies`), per material and system."""
    from follower.midi import load_midi

    lines = [f"| material | system | locked updates | off by > {tolerance_s:g} s | of them at another statement of "
             f"the notes played | of those, the truth's place named too (`also_at_s`) | within {tolerance_s:g} s | "
             f"within {tolerance_s:g} s or at another statement |",
             "|---|---|---|---|---|---|---|---|"]
    notes = {}
    for kind, label in GROUPS:
        group = [i for i in items if i.kind == kind]
        for run in runs:
            present = [i for i in group if i.name in run.scores]
            if not present:
                continue
            locked = missed = at_copy = named = 0
            names = False
            for item in present:
                if item.midi not in notes:
                    notes[item.midi] = load_midi(item.midi).pitched
                m = count_misses(load_jsonl(run.folder / f"{item.name}.jsonl"), item.piece,
                                 load_truth(Path(item.truth)), notes[item.midi], tolerance_s)
                locked, missed, at_copy = locked + m.locked, missed + m.missed, at_copy + m.at_copy
                named, names = named + m.named, names or m.names_places
            share = (lambda k: k / locked) if locked else (lambda k: np.nan)
            lines.append(f"| {label} | {run.name} | {locked} | {missed} | {at_copy} | {named if names else '–'} | "
                         f"{pct(share(locked - missed))} | {pct(share(locked - missed + at_copy))} |")
    return "\n".join(lines)


def speed_row(run: SystemRun, items: list[Item]) -> dict:
    done = [i for i in items if i.name in run.scores]
    if not done:
        return {"items": 0}
    audio_s = sum(i.duration_s for i in done)
    scores: list[ItemScores] = [run.scores[i.name] for i in done]
    row = summarise(scores)
    n_updates = sum(len(s.curve_t_s) for s in scores)
    stats = [run.stats.get(i.name, {}) for i in done]
    out = {"items": len(done), "audio_s": audio_s, "updates_per_s": n_updates / audio_s if audio_s else np.nan,
           "p50": row["latency_p50_ms"], "p99": row["latency_p99_ms"]}
    if run.name.startswith("ours"):
        out["rtf"] = sum(float(np.sum(s.latency_ms)) for s in scores) / 1000 / audio_s
        out["wall_per_item_s"] = float(np.mean([s.get("wall_s", np.nan) for s in stats]))
        out["peak_rss_mib"] = float(np.nanmax([s.get("peak_rss_mib", np.nan) for s in stats]))
        out["load"] = float(np.nanmax([s.get("loadavg_1min", np.nan) for s in stats]))
    elif run.name.startswith("chroma"):
        out["rtf"] = sum(s.get("feature_s", 0) + s.get("match_s", 0) for s in stats) / audio_s
        out["wall_per_item_s"] = run.process_stats.get("wall_s", np.nan) / max(len(done), 1)
        out["peak_rss_mib"] = run.process_stats.get("peak_rss_mib", np.nan)
        out["load"] = float(np.nanmax([s.get("loadavg_1min", np.nan) for s in stats]))
    else:
        out["rtf"] = sum(s.get("run_s", 0) for s in stats) / audio_s
        out["wall_per_item_s"] = float(np.mean([s.get("setup_s", 0) + s.get("run_s", 0) for s in stats]))
        out["peak_rss_mib"] = run.process_stats.get("peak_rss_mib", np.nan)
        out["load"] = float(np.nanmax([s.get("loadavg_1min", np.nan) for s in stats]))
    return out


def speed_table(runs: list[SystemRun], items: list[Item]) -> str:
    """Per system and corpus: the search of ours and of the chroma matcher grows with the corpus."""
    lines = ["| system | corpus searched | items | updates per s of audio | latency per update p50 / p99 | "
             "real-time factor | wall per item (incl. start-up) | peak memory | 1-min load during run |",
             "|---|---|---|---|---|---|---|---|---|"]
    corpora = (("chorales", "349 chorales"), ("piano", "337 piano-midi.de pieces"))
    for run in runs:
        for corpus, label in corpora:
            r = speed_row(run, [i for i in items if i.corpus == corpus])
            if not r["items"]:
                continue
            searched = label if run.identifies else f"told the piece ({corpus})"
            lines.append(f"| {run.name} | {searched} | {r['items']} | {r['updates_per_s']:.1f} | {ms(r['p50'])} / "
                         f"{ms(r['p99'])} | {r['rtf']:.3f} | {r['wall_per_item_s']:.1f} s | "
                         f"{r['peak_rss_mib']:.0f} MiB | {r['load']:.1f} |")
    return "\n".join(lines)


def growth_table(rows: list[tuple[dict, SystemRun]], items: list[Item]) -> str:
    """Same items, same bundle, growing index: does identification hold, what does it cost?"""
    lines = ["| index | pieces | snippets | acc. 5 s | acc. 10 s | acc. end | time to stable id. (median / p90) | "
             "latency p50 / p99 | peak memory |", "|---|---|---|---|---|---|---|---|---|"]
    for summary, run in rows:
        done = [i for i in items if i.name in run.scores]
        if not done:
            continue
        row = summarise([run.scores[i.name] for i in done])
        rss = np.nanmax([run.stats.get(i.name, {}).get("peak_rss_mib", np.nan) for i in done])
        name = "chorales" if summary["pieces"] < 400 else "chorales + piano-midi.de"
        lines.append(f"| {name} | {summary['pieces']} | {summary['snippets']:,} | {pct(row['acc_5'])} | "
                     f"{pct(row['acc_10'])} | {pct(row['acc_end'])} | {secs(row['stable_median_s'])} / "
                     f"{secs(row['stable_p90_s'])} | {ms(row['latency_p50_ms'])} / {ms(row['latency_p99_ms'])} | "
                     f"{rss:.0f} MiB |")
    return "\n".join(lines) + f"\n\nItems: the {len(items)} chorale and Bach10 items."


def latency_table(data: dict) -> str:
    lines = ["| snippets | index | latency p50 / p99 / max | real-time factor |", "|---:|---|---|---:|"]
    for r in data["results"]:
        lines.append(f"| {r['snippets']:,} | {r['index']} | {r['p50_ms']:.2f} / {r['p99_ms']:.2f} / "
                     f"{r['max_ms']:.2f} ms | {r['rtf']:.3f} |")
    return "\n".join(lines) + f"\n\n{data.get('machine', '')}; from `benchmarks/latency.py`."


def plot_accuracy(runs: list[SystemRun], items: list[Item], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(GROUPS), figsize=(13, 3.6), sharey=True)
    for ax, (kind, label) in zip(axes, GROUPS):
        group = [i for i in items if i.kind == kind]
        for run in runs:
            if not run.identifies:
                continue
            done = [i for i in group if i.name in run.scores]
            if not done:
                continue
            curve = accuracy_curve([run.scores[i.name] for i in done], [i.duration_s for i in done], CURVE_GRID_S)
            ax.plot(CURVE_GRID_S, curve, marker=".", label=run.name)
        ax.set_title(f"{label} (n={len(group)})")
        ax.set_xlabel("seconds heard")
        ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("share naming the right piece")
    axes[0].legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_positions(runs: list[SystemRun], items: list[Item], examples: list[str], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    chosen = [i for i in items if i.name in examples]
    fig, axes = plt.subplots(1, len(chosen), figsize=(4.4 * len(chosen), 3.8), squeeze=False)
    for ax, item in zip(axes[0], chosen):
        truth = load_truth(Path(item.truth))
        t = np.linspace(0, item.duration_s, 400)
        ax.plot(t, truth.audio_to_midi(t), color="black", lw=2.5, alpha=0.35, label="ground truth")
        for k, run in enumerate(runs):
            jsonl = run.folder / f"{item.name}.jsonl"
            if not jsonl.exists():
                continue
            recs = load_jsonl(jsonl)
            ok = [r for r in recs if r.get("position_s") is not None and r.get("piece") == item.piece
                  and r.get("state") == "following"]
            wrong = [r for r in recs if r.get("position_s") is not None and r.get("piece") != item.piece]
            line, = ax.plot([r["t"] for r in ok], [r["position_s"] for r in ok], ".", ms=2, label=run.name,
                            color=f"C{k}")  # one colour per system in every panel
            if wrong:
                ax.plot([r["t"] for r in wrong], [r["position_s"] for r in wrong], "x", ms=3, color=line.get_color(),
                        alpha=0.4)
        ax.set_title(f"{item.name}", fontsize=9)
        ax.set_xlabel("audio time (s)")
        ax.set_ylabel("position in the MIDI (s)")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7, markerscale=4)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def machine_description() -> str:
    lscpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    model = re.search(r"Model name:\s*(.+)", lscpu)
    import os

    mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2 ** 30
    import onnxruntime

    return (f"{model.group(1).strip() if model else platform.processor()}, {os.cpu_count()} cores, "
            f"{mem_gib:.0f} GiB RAM, no GPU; Linux {platform.release()}, Python {platform.python_version()}, "
            f"onnxruntime {onnxruntime.__version__}")


def block_body(text: str, name: str) -> str:
    """The body of the generated block ``name`` of a document ('' where it has none)."""
    m = re.search(re.escape(f"<!-- generated:{name} -->") + r"\n(.*?)\n" + re.escape(f"<!-- /generated:{name} -->"),
                  text, flags=re.S)
    return m.group(1) if m else ""


def _row_key(line: str) -> tuple[str, ...] | None:
    cells = [c.strip() for c in line.strip().strip("|").split("|")]
    return tuple(cells[:2]) if len(cells) > 2 and not set(cells[0]) <= set("-") else None


def keep_absent_rows(old: str, new: str, absent: set[str]) -> str:
    """The table ``new`` with the rows of the systems in ``absent`` (no logs on this machine) carried
    over from ``old``, the same table as the document had it, in their old places.

    A table row's system is one of its first two cells (material and system, or system and corpus).
    The rows of present systems come from ``new``; rows of ``new`` the old table lacked go at its end.
    So rerunning some systems on a machine without the others' logs does not drop the others' rows.
    """
    new_lines = new.splitlines()
    fresh = {_row_key(line): line for line in new_lines[2:]}
    if not old.strip() or not absent:
        return new
    out, used = new_lines[:2], set()
    for line in old.splitlines()[2:]:
        key = _row_key(line)
        if key is None:
            continue
        if absent & set(key):
            out.append(line)
        elif key in fresh:
            out.append(fresh[key])
            used.add(key)
    out += [line for key, line in fresh.items() if key not in used]
    return "\n".join(out)


def replace_block(text: str, name: str, body: str) -> str:
    start, end = f"<!-- generated:{name} -->", f"<!-- /generated:{name} -->"
    block = f"{start}\n{body.strip()}\n{end}"
    if start in text and end in text:
        return re.sub(re.escape(start) + r".*?" + re.escape(end), lambda _: block, text, flags=re.S)
    return text.rstrip() + "\n\n" + block + "\n"
