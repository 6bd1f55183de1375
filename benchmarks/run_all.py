"""One command for every table and figure of docs/benchmarks.md.

    .venv/bin/python -m benchmarks.run_all [--bundle exported/default]

1. renders the test material once (benchmarks/material.py; cached);
2. builds the two whole-corpus indexes with ``follower index build`` (cached per bundle);
3. replays every item through our follower (``follower replay --fast --jsonl``),
   the chroma identifier and matchmaker (its own venv; benchmarks/setup_matchmaker.py),
   and through the engine with one part turned off at a time (benchmarks/ablation.py);
4. scores the logs (benchmarks/metrics.py) and rewrites the generated blocks of
   docs/benchmarks.md and docs/figures/bench_*.png.

Logs are cached under data/bench/runs; --fresh runs everything again, --report-only
only re-scores. Our follower runs one item at a time with nothing else running, so
its latencies are not disturbed; the 1-minute load average is logged with every run.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import json
import subprocess
import sys
import time
from pathlib import Path

from follower.paths import REPO_ROOT

from . import ablation, paths
from .material import build as build_material
from .metrics import summarise
from .report import (block_body, copies_table, following_table, growth_table, identification_table, keep_absent_rows,
                     latency_table, load_run, machine_description, plot_accuracy, plot_positions, replace_block,
                     speed_table)
from .index_growth import index_summary, merge_indexes
from .runners import (MATCHMAKER_METHODS, bundle_fingerprint, ensure_index, follower_run_dir, index_fingerprint,
                      index_path, run_chroma, run_follower, run_latency, run_matchmaker)

GROWTH_SUFFIX = "-chorales+piano-index"
KEPT_MARK = "Rows and figures kept from the page as it was (no logs of theirs on this machine):"


def kept_setup(old_setup: str) -> list[str]:
    """The setup lines of the run the kept rows come from, indented: the page's own setup, or, where
    that already kept rows, the part it kept (so reruns do not nest)."""
    lines = old_setup.splitlines()
    mark = next((i for i, line in enumerate(lines) if KEPT_MARK in line), None)
    if mark is not None:
        return lines[mark + 1:]
    return ["  " + line for line in lines if line.strip()]


def growth_base_suffix(hop_frames: int) -> str:
    return f"-chorales-hop{hop_frames}-index"


def merged_index_path(work: Path, fingerprint: str, hop_frames: int | None) -> Path:
    return work / "index" / f"all-{fingerprint[:12]}{f'-hop{hop_frames}' if hop_frames else ''}.index.npz"
POSITION_EXAMPLES = ("chorale_04_bach_bwv328", "piano_02_mz_545_3", "bach10_05-DieNacht")
DOC_SKELETON = """# Benchmarks

<!-- generated:setup -->
<!-- /generated:setup -->
"""


def material_table(items) -> str:
    lines = ["| item | piece | length | start in MIDI | tempo ratio | instruments | RT60 | SNR |",
             "|---|---|---|---|---|---|---|---|"]
    for i in items:
        t = json.loads(Path(i.truth).read_text())
        if i.kind == "bach10":
            lines.append(f"| {i.name} | {i.piece} | {i.duration_s:.1f} s | 0 (whole piece) | performed | "
                         f"violin, clarinet, saxophone, bassoon | real room | real |")
        else:
            lines.append(f"| {i.name} | {i.piece} | {i.duration_s:.1f} s | {t['start_midi_s']:.1f} s | "
                         f"{t['tempo_ratio_min']:.2f}–{t['tempo_ratio_max']:.2f} | {t['instruments']} | "
                         f"{t['rt60_s']:.2f} s | {t['snr_db']:.1f} dB |")
    return "\n".join(lines)


def git_commit() -> str:
    out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=REPO_ROOT)
    return out.stdout.strip() or "unknown"


def recorded_args(argv: list[str]) -> list[str]:
    """The arguments the page records for its rerun: without ``--report-only`` (said in words beside it)
    and without ``--doc PATH`` (where this copy was written is not how to remake the page)."""
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
        elif a == "--doc":
            skip = True
        elif a != "--report-only" and not a.startswith("--doc="):
            out.append(a)
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run_all", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundle", type=Path, default=REPO_ROOT / "exported" / "default")
    parser.add_argument("--systems", default="follower,growth,latency,chroma,matchmaker,ablation",
                        help="comma-separated subset of follower, growth (ours with a chorales+piano index), "
                             "latency (benchmarks/latency.py), chroma, matchmaker, ablation (benchmarks/ablation.py: "
                             "the engine with one part off at a time)")
    parser.add_argument("--methods", default=",".join(MATCHMAKER_METHODS), help="matchmaker methods")
    parser.add_argument("--fresh", action="store_true", help="run again even where logs exist")
    parser.add_argument("--report-only", action="store_true", help="only score the logs and write the document")
    parser.add_argument("--kinds", default="chorale,piano,jumps,bach10",
                        help="which material to run: comma-separated subset of chorale, piano, jumps, bach10")
    parser.add_argument("--piano-hop-frames", type=int, default=None,
                        help="snippet hop of the piano index (default: follower index build's own); the "
                             "piano corpus is 23 h of music, so a coarser hop builds it faster")
    parser.add_argument("--doc", type=Path, default=paths.docs_dir() / "benchmarks.md")
    args = parser.parse_args(argv)
    systems = {s.strip() for s in args.systems.split(",") if s.strip()}
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    work = paths.work_dir()
    runs_dir = work / "runs"
    t_start = time.perf_counter()

    kinds = {k.strip() for k in args.kinds.split(",") if k.strip()}
    items = [i for i in build_material(work / "material") if i.kind in kinds]
    fp = bundle_fingerprint(args.bundle)
    ablation_dir = runs_dir / f"ablation-{fp[:12]}"
    index_stats = {}
    if not args.report_only:
        indexes = {}
        for corpus, folder in (("chorales", paths.chorale_dir()), ("piano", paths.piano_dir())):
            if not systems & {"follower", "growth", "ablation"} or not any(i.corpus == corpus for i in items):
                continue
            hop = args.piano_hop_frames if corpus == "piano" else None
            indexes[corpus], index_stats[corpus] = ensure_index(folder, corpus, args.bundle, work / "index", hop)
        if "follower" in systems:  # first, alone, so that its timings see an idle machine
            run_follower(items, args.bundle, indexes, runs_dir, fresh=args.fresh)
        if "growth" in systems and {"chorales", "piano"} <= set(indexes):
            # a merged index holds one snippet hop: where the piano index is coarser, the growth
            # compares the chorales at that hop alone with the chorales + piano at that hop
            base = indexes["chorales"]
            if args.piano_hop_frames:
                base, _ = ensure_index(paths.chorale_dir(), "chorales", args.bundle, work / "index",
                                       args.piano_hop_frames)
                run_follower([i for i in items if i.corpus == "chorales"], args.bundle, {"chorales": base},
                             runs_dir, fresh=args.fresh, suffix=growth_base_suffix(args.piano_hop_frames))
            merged = merged_index_path(work, index_fingerprint(args.bundle), args.piano_hop_frames)
            if not merged.exists():
                merge_indexes([base, indexes["piano"]], merged)
            run_follower([i for i in items if i.corpus == "chorales"], args.bundle, {"chorales": merged}, runs_dir,
                         fresh=args.fresh, suffix=GROWTH_SUFFIX)
        if "latency" in systems:
            run_latency(args.bundle, runs_dir, fresh=args.fresh)
        if "chroma" in systems:
            run_chroma(items, runs_dir, fresh=args.fresh)
        if "matchmaker" in systems:
            run_matchmaker(items, methods, runs_dir, fresh=args.fresh)
        if "ablation" in systems:
            ablation.run(items, args.bundle, indexes, ablation_dir, fresh=args.fresh,
                         shipped_dir=follower_run_dir(args.bundle, runs_dir))
    else:
        for corpus in ("chorales", "piano"):
            hop = args.piano_hop_frames if corpus == "piano" else None
            sp = Path(str(index_path(corpus, args.bundle, work / "index", hop)) + ".stats.json")
            if sp.exists():
                index_stats[corpus] = json.loads(sp.read_text())

    runs = [load_run(f"ours ({args.bundle.name})", follower_run_dir(args.bundle, runs_dir), items, True),
            load_run("chroma + subsequence DTW", runs_dir / "chroma", items, True)]
    runs += [load_run(f"matchmaker {m}", runs_dir / f"matchmaker-{m}", items, False) for m in methods]
    family_of = {Path(r["file"]).stem: r["tune_family"]
                 for r in csv.DictReader(open(paths.chorale_dir() / "splits.csv"))}

    # systems without logs here (a rerun of some systems on another machine) keep their rows, and the
    # figures, which show every system, are left as they are
    absent = {r.name for r in runs if not r.scores}
    figures = paths.docs_dir() / "figures"
    if not absent:
        figures.mkdir(parents=True, exist_ok=True)
        plot_accuracy(runs, items, figures / "bench_accuracy_vs_time.png")
        mm_runs = [r for r in runs if r.name.startswith("matchmaker") and r.scores]
        # the figure shows matchmaker's strongest method: most updates within 0.5 s over all items
        best_mm = sorted(mm_runs, key=lambda r: -summarise(list(r.scores.values()))["within_0.5"])[:1]
        plot_positions(runs[:1] + best_mm, items, list(POSITION_EXAMPLES), figures / "bench_positions.png")

    doc = args.doc.read_text() if args.doc.exists() else DOC_SKELETON
    setup = [f"- Machine: {machine_description()}.",
             f"- Run: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, commit {git_commit()}, "
             f"bundle `{args.bundle.name}` (fingerprint {fp}).",
             f"- Command: `.venv/bin/python -m benchmarks.run_all {' '.join(recorded_args(argv or sys.argv[1:]))}`"
             f" ({'report only' if args.report_only else f'{(time.perf_counter() - t_start) / 60:.1f} min this time'}).",
             f"- Material: {len(items)} items, {sum(i.duration_s for i in items) / 60:.1f} min of audio."]
    for corpus, st in index_stats.items():
        setup.append(f"- Index {corpus}: {st.get('summary', '?')} (peak memory {st.get('peak_rss_mib', 0):.0f} MiB).")
    old_setup = block_body(doc, "setup")
    doc = replace_block(doc, "setup", "\n".join(setup))
    doc = replace_block(doc, "material", material_table(items))
    if absent:
        setup += [f"- {KEPT_MARK} {', '.join(sorted(absent))}. As the page had them:"] + kept_setup(old_setup)
        doc = replace_block(doc, "setup", "\n".join(setup))
    for name, table in (("identification", identification_table(runs, items, family_of)),
                        ("following", following_table(runs, items)), ("copies", copies_table(runs, items)),
                        ("speed", speed_table(runs, items))):
        doc = replace_block(doc, name, keep_absent_rows(block_body(doc, name), table, absent))
    merged = merged_index_path(work, index_fingerprint(args.bundle), args.piano_hop_frames)
    chorale_index = index_path("chorales", args.bundle, work / "index", args.piano_hop_frames)
    base = runs[0] if not args.piano_hop_frames else load_run(
        f"ours ({args.bundle.name}), chorale index at hop {args.piano_hop_frames}",
        follower_run_dir(args.bundle, runs_dir, growth_base_suffix(args.piano_hop_frames)), items, True)
    growth = load_run(f"ours ({args.bundle.name}), chorales + piano index",
                      follower_run_dir(args.bundle, runs_dir, GROWTH_SUFFIX), items, True)
    if growth.scores and base.scores and merged.exists() and chorale_index.exists():
        doc = replace_block(doc, "growth", growth_table([(index_summary(chorale_index), base),
                                                         (index_summary(merged), growth)],
                                                        [i for i in items if i.corpus == "chorales"]))
    ablated = ablation.run(items, args.bundle, {"chorales": None, "piano": None}, ablation_dir, replay=False,
                           progress=False, shipped_dir=follower_run_dir(args.bundle, runs_dir))
    if any(ablated.values()):
        doc = replace_block(doc, "ablation", ablation.ablation_table(ablated, items))
    latency_json = runs_dir / f"latency-{fp[:12]}.json"
    if latency_json.exists():
        doc = replace_block(doc, "latency", latency_table(json.loads(latency_json.read_text())))
    args.doc.write_text(doc)
    wrote = f"{args.doc}" + ("" if absent else f" and {figures}/bench_*.png")
    print(f"wrote {wrote} in {(time.perf_counter() - t_start) / 60:.1f} min")
    return 0


if __name__ == "__main__":
    from follower.cliutil import module_main

    raise SystemExit(module_main(main))
