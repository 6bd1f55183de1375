"""Players far from the written tempo, on the benchmark's own test pieces.

    .venv/bin/python -m benchmarks.far_tempo [--tempos 0.35-0.5,0.5-0.7,1.6-2.0] [--fresh]

The benchmark's excerpts (``benchmarks.material``: 10 test-split chorales, 6 test-split
piano-midi.de pieces) are rendered again as they are (the held-out soundfont, unseen
ensembles, a room, noise) but at a base tempo drawn from each range of ``--tempos``
times the written one, rubato kept within it; a MIDI file's tempo is often a default, and
players take it at a third or twice. Each excerpt is replayed through the follower as it
ships (the pair of engines of :mod:`follower.two_speeds`) and through the one engine
(``--no-slow-players``), against the benchmark's indexes (``benchmarks.run_all``'s cache,
built if missing), and scored with the benchmark's metrics. The pair's settings were
chosen on validation renders (``benchmarks.material --set tuning --tempo``); this only
measures. Renders and records go under ``<work>/far_tempo/``; the table replaces the
block ``far-tempo`` of docs/benchmarks.md.
"""

from __future__ import annotations

from follower import blas  # noqa: F401  (before numpy: one BLAS thread, as the follower runs)

import argparse
import sys
from pathlib import Path

import numpy as np

from . import paths
from .material import (CHORALE_ENSEMBLES, PIANO_PROGRAMS, SEED, Item, chorale_selection, piano_selection, piece_id,
                       render_item, tempo_range_ok)

CONFIGS = {"shipped (two speeds)": "shipped", "one engine": "one engine"}  # label -> benchmarks.ablation variant
FAR_SEED = 4411  # apart from the test material's streams: other starts, ensembles and rooms


def parse_tempos(text: str) -> list[tuple[float, float]]:
    """``"0.35-0.5,1.6-2.0"`` -> [(0.35, 0.5), (1.6, 2.0)]; ValueError with the part that is wrong."""
    out = []
    for part in text.split(","):
        try:
            lo, hi = (float(v) for v in part.split("-"))
        except ValueError:
            raise ValueError(f"--tempos: {part!r} is not LO-HI (e.g. 0.35-0.5)") from None
        if not tempo_range_ok(lo, hi):
            raise ValueError(f"--tempos: {part!r} needs 0.1 <= LO <= HI <= 4 (ratios to the written tempo)")
        out.append((lo, hi))
    return out


def build(out_dir: Path, tempo: tuple[float, float], *, force: bool = False) -> list[Item]:
    """The benchmark's chorale and piano excerpts at a base tempo within ``tempo``."""
    import soundfile as sf
    from tqdm import tqdm

    out_dir.mkdir(parents=True, exist_ok=True)
    tag = f"{tempo[0]:g}-{tempo[1]:g}"
    jobs = [(f"far{tag}_chorale_{i:02d}_{m.stem}", "chorale", paths.chorale_dir(), m, fam, (0.1, 0.4), (30.0, 45.0))
            for i, (m, fam) in enumerate(chorale_selection())]
    jobs += [(f"far{tag}_piano_{i:02d}_{m.stem}", "piano", paths.piano_dir(), m, None, (0.1, 0.5), (45.0, 45.0))
             for i, m in enumerate(piano_selection())]
    items = []
    for k, (name, kind, root, midi, family, start, length) in enumerate(
            tqdm(jobs, desc=f"rendering at {tag}x", unit="excerpt")):
        rng = np.random.default_rng([FAR_SEED, SEED, k])
        ensembles = CHORALE_ENSEMBLES if kind == "chorale" else {n: [p] for n, p in PIANO_PROGRAMS.items()}
        instruments = list(ensembles)[rng.integers(len(ensembles))]
        audio, truth = out_dir / f"{name}.flac", out_dir / f"{name}.truth.json"
        if force or not (audio.exists() and truth.exists()):
            render_item(midi, audio, truth, rng, programs=ensembles[instruments], instruments=instruments,
                        start_frac=start, length_s=length, base_tempo=tempo, tempo_clip=tempo)
        pid = piece_id(midi, root)
        items.append(Item(name, kind, str(audio), str(truth), "chorales" if kind == "chorale" else "piano", pid,
                          str(midi), family or pid, float(sf.info(audio).duration)))
    return items


def replay(items: list[Item], bundle_dir: Path, indexes: dict, run_dir: Path, *, fresh: bool = False) -> dict:
    """{config: {item name: ItemScores}}: the ablation's replay of its two variants (records cached as
    JSON lines per variant and item under ``run_dir``)."""
    from .ablation import run

    scores = run(items, bundle_dir, indexes, run_dir, fresh=fresh, variants=tuple(CONFIGS.values()))
    return {config: scores[variant] for config, variant in CONFIGS.items()}


def far_tempo_table(results: list[tuple[tuple[float, float], dict, list[Item]]]) -> str:
    from .ablation import summary_cells, variant_summaries
    from .report import GROUPS

    lines = ["| tempo (x written) | material | follower | time to stable id. (median / p90) | acc. end | "
             "longest wrong follow | within 0.25 s | within 0.5 s |", "|---|---|---|---|---|---|---|---|"]
    for tempo, scores, items in results:
        for label, config, r in variant_summaries(scores, items, [g for g in GROUPS if g[0] in ("chorale", "piano")]):
            lines.append(f"| {tempo[0]:g}-{tempo[1]:g} | {label} | {config} | {summary_cells(r)} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    from follower.errors import ConfigError

    from .report import replace_block
    from .runners import ensure_index

    p = argparse.ArgumentParser(prog="python -m benchmarks.far_tempo", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tempos", default="0.35-0.5,0.5-0.7,1.6-2.0",
                   help="tempo ranges, ratios to the written tempo (default 0.35-0.5,0.5-0.7,1.6-2.0)")
    p.add_argument("--bundle", type=Path, default=Path("exported/default"))
    p.add_argument("--piano-hop-frames", type=int, default=8,
                   help="snippet hop of the piano index, as run_all's --piano-hop-frames (default 8)")
    p.add_argument("--fresh", action="store_true", help="render and replay again even where files exist")
    p.add_argument("--doc", type=Path, default=paths.docs_dir() / "benchmarks.md")
    args = p.parse_args(argv)
    try:
        tempos = parse_tempos(args.tempos)
    except ValueError as e:
        raise ConfigError(str(e)) from None
    work = paths.work_dir()
    indexes = {"chorales": ensure_index(paths.chorale_dir(), "chorales", args.bundle, work / "index")[0],
               "piano": ensure_index(paths.piano_dir(), "piano", args.bundle, work / "index",
                                     args.piano_hop_frames)[0]}
    results = []
    for tempo in tempos:
        folder = work / "far_tempo" / f"{tempo[0]:g}-{tempo[1]:g}"
        items = build(folder, tempo, force=args.fresh)
        results.append((tempo, replay(items, args.bundle, indexes, folder / "runs", fresh=args.fresh), items))
    table = far_tempo_table(results)
    print(table)
    if args.doc.exists():
        args.doc.write_text(replace_block(args.doc.read_text(), "far-tempo", table))
        print(f"wrote {args.doc}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    from follower.cliutil import module_main

    raise SystemExit(module_main(main))
