"""What each part of the follower buys: the engine with one part turned off at a time.

    .venv/bin/python -m benchmarks.ablation [--bundle exported/default] [--kinds ...] [--fresh]

Every variant replays the same benchmark material (``benchmarks/material.py``) with the
same bundle and the same indexes as ``benchmarks.run_all`` (chorale items against the
chorale index, piano items against the piano index) and is scored with the benchmark's
own metrics (:mod:`benchmarks.metrics`). The variants differ only in their
:class:`follower.engine.EngineConfig`, so a row's difference to the shipped row is what
that part of the engine buys:

* ``shipped``: the follower as it ships: the engine and, beside it, the engine that hears
  the audio twice as fast, heard where the player is far below the written tempo
  (``follower.two_speeds``);
* ``one engine``: the engine alone (``follower replay --no-slow-players``). The variants
  below are each this one engine with one part turned off;
* ``no calibrated lock``: no lock on the calibrated confidence of the re-ranking's
  leader, and no quick recheck after a lock (``calibration=None``);
* ``no fine aligner``: the tracker's snippet-grid position alone (``fine=None``);
* ``no start prior``: a lock soon after the music starts keeps its place even where the piece's
  beginning sounds the same (``fine.start_prior_s=0``, follower.start_prior);
* ``beginning only``: the start prior weighs the piece's beginning only, not the earlier copies of
  what the lock heard (``fine.earliest_copy=False``: music written out twice keeps the copy the lock
  took);
* ``no onset wait``: the fine aligner moves on at the tempo into the next chord even while the
  players still hold the last one (``fine.onset_wait=0``);
* ``no easing``: the position reported is the fine aligner's own, which reaches a chord's end at
  the tempo, held or not (``fine.ease_time=0``);
* ``plain cosine emission``: the fine aligner compares the frame with its templates by plain cosine,
  where a floor under every band (room, noise) makes neighbouring chords alike
  (``fine.centre_emission=False``);
* ``steeper partials``: the fine aligner's note templates weigh each partial 0.6 ** (h - 1), as before
  2026-12-06, where real low notes sound their fundamental weaker (``fine.harmonic_decay=0.6``;
  docs/improvements.md (eee));
* ``no jump watch``: after a jump only the coarse path, once its window has heard the jump, moves
  the fine aligner (``fine.watch_margin=0``);
* ``frames alone on a jump``: the jump watch moves the aligner only where the frames' path alone
  leads by ``fine.watch_margin``, never on the agreement of the newest audio's embedding
  (``fine.watch_confirm_margin=0``; docs/improvements.md (yy));
* ``jumps weighed as before``: a settling move of the coarse path is weighed with the frames of the
  last 2 s only, and a dispute after a move of the jump watch with frames from before the jump too
  (``fine.settle_backfill_s=2``, ``fine.watch_own_frames=False``; docs/improvements.md (zz));
* ``copies as before``: the tracker's estimate takes the highest mode of its belief, whichever copy of
  music written out twice it is on, and after a far move the coarse path's next moves are disputed
  like any other (``tracker.stay_ratio=0``, ``fine.settle_s=0``; docs/improvements.md (xx));
* ``no re-ranking``: no alignment of the candidates over everything heard
  (``rerank_candidates=0``);
* ``paths only``: neither re-ranking, votes nor calibrated lock: the verified paths of the last few
  seconds alone decide (the engine before the re-ranker);
* ``no note templates``: the re-ranking of the embeddings alone, with the lock rules as
  fitted for it (``follower.engine.templates_off``: the engine as it shipped before the
  note templates, docs/improvements.md (n));
* ``open programme``: not a part turned off but the option ``--open-programme``
  (``follower.engine.open_programme``): the lock calibrated on music outside the index too,
  every lock rule backed by its P, which names indexed pieces later (docs/improvements.md (hh));
* ``order-free voting``: the paper's piece identification run online (every window's
  neighbours vote for their piece, no time order; ``studies.decoders.run_voting``).

Records are cached per variant and item under ``<work>/runs/ablation-<bundle>/``;
``benchmarks.run_all --systems ablation`` runs this and writes the table into
docs/benchmarks.md.
"""

from __future__ import annotations

from follower import blas  # noqa: F401  (before numpy: one BLAS thread, as the follower runs)

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

from follower.aligner import FineConfig
from follower.confidence import FITTED_EMBEDDINGS, FITTED_OPEN
from follower.tracker import TrackerConfig

from . import paths
from .material import Item
from .metrics import load_jsonl, score_item, summarise
from .warp import load_truth

# name -> EngineConfig overrides (None: the order-free voting decoder)
VARIANTS = {
    "shipped": {},
    "one engine": {},
    "no calibrated lock": {"calibration": None},
    "no fine aligner": {"fine": None},
    "no start prior": {"fine": replace(FineConfig(), start_prior_s=0.0)},
    "beginning only": {"fine": replace(FineConfig(), earliest_copy=False)},
    "no onset wait": {"fine": replace(FineConfig(), onset_wait=0.0)},
    "no easing": {"fine": replace(FineConfig(), ease_time=0.0)},
    "plain cosine emission": {"fine": replace(FineConfig(), centre_emission=False)},
    "steeper partials": {"fine": replace(FineConfig(), harmonic_decay=0.6)},  # the aligner's templates until 2026-12-06
    "no jump watch": {"fine": replace(FineConfig(), watch_margin=0.0)},
    "frames alone on a jump": {"fine": replace(FineConfig(), watch_confirm_margin=0.0)},
    "jumps weighed as before": {"fine": replace(FineConfig(), settle_backfill_s=2.0, watch_own_frames=False)},
    "copies as before": {"fine": replace(FineConfig(), settle_s=0.0), "tracker": replace(TrackerConfig(), stay_ratio=0.0)},
    "no re-ranking": {"rerank_candidates": 0},
    "paths only": {"rerank_candidates": 0, "evidence_ratio": float("inf"), "calibration": None},
    # as follower.engine.templates_off(): the lock rules as fitted for the embeddings alone
    "no note templates": {"rerank_template_weight": 0.0, "calibration": FITTED_EMBEDDINGS, "rerank_min_p": 0.0,
                          "rerank_lock_s": 0.25, "rerank_offered": 4, "rerank_min_zs": 8.0},
    "open programme": {"calibration": FITTED_OPEN, "rules_min_p": 0.9},  # = follower.engine.open_programme()
    "order-free voting": None,
}


BLOCK_SAMPLES = 131072


def slug(name: str) -> str:
    return name.replace(" ", "_").replace("-", "_")


def run_variant(name: str, bundle, index, item: Item) -> list[dict]:
    """The records of one variant on one item (the studies' engine and voting loops)."""
    from follower.engine import EngineConfig
    from studies.decoders import read_audio, run_engine, run_voting

    signal, rate = read_audio(item.audio)
    overrides = VARIANTS[name]
    if overrides is None:
        return run_voting(bundle, index, signal, rate)
    # whole seconds per push: the engine embeds a block's windows in one batch (follower.ahead),
    # with the same updates as 1024-sample blocks (tests/follower/test_fast_replay.py)
    return run_engine(bundle, index, signal, rate, config=replace(EngineConfig(), **overrides),
                      block=BLOCK_SAMPLES, two_speeds=name == "shipped")


def run(items: list[Item], bundle_dir: Path, indexes: dict, run_dir: Path, *, fresh: bool = False,
        variants=tuple(VARIANTS), progress: bool = True, replay: bool = True, shipped_dir: Path | None = None) -> dict:
    """Replay (or read back) every variant on every item; {variant: {item name: ItemScores}}.
    With ``replay=False`` only the records already there are read (a report of the cache).
    ``shipped_dir``: the benchmark's own follower run (``follower replay --jsonl``), whose
    records stand for the shipped variant instead of a second replay."""
    from tqdm import tqdm

    from follower.bundle import load_bundle
    from follower.index import load_index

    bundle = load_bundle(bundle_dir, threads=1)
    loaded = {corpus: load_index(path) for corpus, path in indexes.items()} if replay else dict(indexes)
    scores = {v: {} for v in variants}
    todo = [(v, i) for v in variants for i in items if i.corpus in loaded]
    for variant, item in tqdm(todo, desc="ablation", unit="run", disable=not progress):
        log = run_dir / slug(variant) / f"{item.name}.jsonl"
        # the follower run's own log stands for the shipped variant and is that run's to write: replayed
        # here with --fresh it was overwritten by the studies' shorter records (no tempo, no confidence)
        followed = variant == "shipped" and shipped_dir is not None and (shipped_dir / f"{item.name}.jsonl").exists()
        if followed:
            log = shipped_dir / f"{item.name}.jsonl"
        if replay and not followed and (fresh or not log.exists()):
            records = run_variant(variant, bundle, loaded[item.corpus], item)
            log.parent.mkdir(parents=True, exist_ok=True)
            log.write_text("".join(json.dumps(r) + "\n" for r in records))
        if log.exists():
            scores[variant][item.name] = score_item(load_jsonl(log), item.piece, load_truth(Path(item.truth)))
    return scores


def variant_summaries(scores: dict, items: list[Item], groups=None):
    """(material label, variant, :func:`benchmarks.metrics.summarise` of its items) for every group of
    ``groups`` (default: the benchmark's, :data:`benchmarks.report.GROUPS`) and variant that has items."""
    from .report import GROUPS

    for kind, label in groups or GROUPS:
        group = [i.name for i in items if i.kind == kind]
        for variant, per_item in scores.items():
            rows = [per_item[n] for n in group if n in per_item]
            if rows:
                yield label, variant, summarise(rows)


def summary_cells(r: dict) -> str:
    """The cells the variant tables share: time to stable id. (median / p90) | acc. end | longest wrong
    follow | within 0.25 s | within 0.5 s."""
    from .report import pct, secs

    return (f"{secs(r['stable_median_s'])} / {secs(r['stable_p90_s'])} | {pct(r['acc_end'])} | "
            f"{secs(r['wrong_follow_max_s'])} | {pct(r['within_0.25'])} | {pct(r['within_0.5'])}")


def ablation_table(scores: dict, items: list[Item]) -> str:
    from .report import secs

    lines = ["| material | variant | time to stable id. (median / p90) | acc. end | longest wrong follow | "
             "within 0.25 s | within 0.5 s | back after a jump (median) |",
             "|---|---|---|---|---|---|---|---|"]
    for label, variant, r in variant_summaries(scores, items):
        lines.append(f"| {label} | {variant} | {summary_cells(r)} | "
                     + (f"{secs(r['recovery_median_s'])} |" if r["jumps"] else "– |"))
    return "\n".join(lines)


def main(argv=None) -> int:
    from follower.cliutil import run_main

    p = argparse.ArgumentParser(prog="python -m benchmarks.ablation", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bundle", type=Path, default=Path("exported/default"))
    p.add_argument("--kinds", default="chorale,piano,jumps,bach10",
                   help="material kinds: comma-separated subset of chorale, piano, jumps, bach10")
    p.add_argument("--piano-hop-frames", type=int, default=None,
                   help="snippet hop of the piano index, as given to benchmarks.run_all")
    p.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated subset of the variants above")
    p.add_argument("--fresh", action="store_true", help="replay again even where records exist")
    p.add_argument("--json", type=Path, default=None, help="also write the summary rows as JSON")
    return run_main(_run, p.parse_args(argv))


def _run(args) -> int:
    from follower.errors import ConfigError

    from .material import build as build_material
    from .runners import bundle_fingerprint, ensure_index, follower_run_dir

    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = sorted(set(variants) - set(VARIANTS))
    if unknown or not variants:
        raise ConfigError(f"--variants: unknown {unknown or 'empty list'}; choose from {', '.join(VARIANTS)}")
    kinds = {k.strip() for k in args.kinds.split(",") if k.strip()}
    work = paths.work_dir()
    items = [i for i in build_material(work / "material") if i.kind in kinds]
    indexes = {}
    for corpus, folder in (("chorales", paths.chorale_dir()), ("piano", paths.piano_dir())):
        if any(i.corpus == corpus for i in items):
            hop = args.piano_hop_frames if corpus == "piano" else None
            indexes[corpus], _ = ensure_index(folder, corpus, args.bundle, work / "index", hop)
    runs = work / "runs"
    run_dir = runs / f"ablation-{bundle_fingerprint(args.bundle)[:12]}"
    scores = run(items, args.bundle, indexes, run_dir, fresh=args.fresh, variants=variants,
                 shipped_dir=follower_run_dir(args.bundle, runs))
    print(ablation_table(scores, items))
    if args.json:
        rows = {v: {kind: summarise([s for n, s in per.items() if any(i.name == n and i.kind == kind for i in items)])
                    for kind in sorted(kinds)} for v, per in scores.items()}
        args.json.write_text(json.dumps(rows, indent=1, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
