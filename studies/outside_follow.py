"""Why is music that is not in the corpus "followed" as some chorale? (validation material only)

``python -m studies.outside_follow`` builds a programme like the soak's
(:mod:`benchmarks.soak`) from *validation-split* chorales and Nottingham tunes other
than the soak's own (ashover1): two pieces back to back, then, several times, a
piece, 6 s of room tone, a tune that is not in the corpus, 4 s of room tone. It
replays it offline through the engine (every update, as fast as possible) and reports,
per variant of the lock policy, how much of each outside tune was spent ``following``,
which rule took each lock or switch, and how often the followed piece flipped in the
12 s after each change of piece. ``--tuning`` also runs the validation renders of
``python -m benchmarks.material --set tuning`` and reports the benchmark's
identification figures, so a variant that slowed the naming of real pieces shows.

Variants (the engine's own settings, ``SETTINGS``; the shipped engine is ``both``, ``before`` the
engine until these two settings were on):

* ``recheck-after-lock`` (``recheck_after_switch=False``): the calibrated recheck only
  within ``calibrated_recheck_s`` of a lock from ``searching``, not after a switch (the re-ranking and the votes still
  remember the previous piece then, so the recheck names it again and switches back);
* ``clear-switch`` (``switch_rival_margin=0.5``): a switch (from following or lost) also
  needs the rival's path to beat every *other* piece's by ``lock_margin``, as the path lock does while searching
  (today it only has to beat the followed piece's own path, which is near 0 once that
  piece has ended);
* ``both`` (the shipped engine);
* ``margin-lost``: ``both`` as it was before the re-ranking could hold a piece whose path
  margin is crowded (``lost_rerank_hold=False``): does the hold keep an outside tune
  ``following`` longer?
"""

from __future__ import annotations

from follower import blas  # noqa: F401  (before numpy: one BLAS thread)

import argparse
import csv
import json
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

PIECE_S = 60.0
DEFAULTS = {"seed": 3, "pieces": 6, "outside": 4}  # the programme the study reports


TAKEN: list = []  # (t_s, kind, rule, piece) of every lock and switch the policy took, in order


# each variant as the engine's own settings (follower.engine.EngineConfig); the clear lead asked of a
# rival is the lock's own margin over the other pieces (lock_margin 0.5)
SETTINGS = {
    "before": {"recheck_after_switch": True, "switch_rival_margin": 0.0,
               "lost_rerank_hold": False},  # the engine until 2026-12-02
    "recheck-after-lock": {"recheck_after_switch": False, "switch_rival_margin": 0.0, "lost_rerank_hold": False},
    "clear-switch": {"recheck_after_switch": True, "switch_rival_margin": 0.5, "lost_rerank_hold": False},
    # both, with the margin alone losing a piece (the engine until 2026-12-03): the shipped engine
    # keeps following while the re-ranking holds the piece (EngineConfig.lost_rerank_hold)
    "margin-lost": {"recheck_after_switch": False, "switch_rival_margin": 0.5, "lost_rerank_hold": False},
    "both": {"recheck_after_switch": False, "switch_rival_margin": 0.5},  # = the shipped engine
}
VARIANTS = tuple(SETTINGS)


def patch() -> None:
    """Record every lock and switch the policy takes, for this process."""
    from follower import policy as P

    record = P.LockPolicy._locked

    def _recorded(self, kind, piece, where, t_s, rule=None):
        TAKEN.append((round(float(t_s), 2), kind, rule or kind, int(piece)))
        return record(self, kind, piece, where, t_s, rule)

    P.LockPolicy._locked = _recorded


def engine_factory(bundle_dir: str, variant: str, open_programme: bool = False):
    """``make_engine(rate)`` of the shipped bundle and index, with ``variant``'s settings (and the
    lock of ``--open-programme``)."""
    from dataclasses import replace

    from follower import runner
    from follower.engine import Engine

    base = runner.load(runner.RunOptions(bundle_dir=bundle_dir, console=False, open_programme=open_programme))
    probe = base(22050.0)
    config = replace(probe.config, **SETTINGS[variant])
    return lambda rate: Engine(probe.bundle, probe.index, input_rate_hz=rate, config=config)


def replay(make_engine, audio: np.ndarray, rate: float) -> list[dict]:
    """Every update of the engine over ``audio``, with the rule of each lock or switch."""
    engine = make_engine(rate)
    out, block = [], int(rate)  # one second at a time: updates do not depend on the block size
    for i in range(0, len(audio), block):
        for u in engine.push(audio[i:i + block].reshape(-1, 1), last=i + block >= len(audio)):
            out.append({"t": u.t, "piece": u.piece, "state": u.state, "position_s": u.position_s,
                        "latency_ms": u.latency_ms})
    return out


def draw(corpus: Path, tunes: Path, seed: int, n_pieces: int, n_outside: int, rng=None):
    """(chorale ids, outside tune paths) of the programme of ``seed``."""
    rng = rng if rng is not None else np.random.default_rng(seed)
    rows = list(csv.DictReader(open(corpus / "splits.csv")))
    valid = sorted(Path(r["file"]).stem for r in rows if r["split"] == "valid")
    pieces = [valid[i] for i in rng.choice(len(valid), n_pieces, replace=False)]
    others = sorted(p for p in tunes.glob("*.mid") if not p.name.startswith("ashover1."))  # not the soak's
    outside = [others[i] for i in rng.choice(len(others), n_outside, replace=False)]
    return pieces, outside


def default_outside_tunes() -> list[Path]:
    """The outside tunes of the default programme (what the lock calibration must never learn)."""
    from benchmarks import paths

    _, outside = draw(paths.chorale_dir(), paths.data_root() / "midi" / "nottingham", DEFAULTS["seed"],
                      DEFAULTS["pieces"], DEFAULTS["outside"])
    return outside


def build(corpus: Path, tunes: Path, soundfont: str, seed: int, n_pieces: int, n_outside: int):
    from benchmarks.soak import RATE, Segment, _render, room_tone

    rng = np.random.default_rng(seed)
    pieces, outside = draw(corpus, tunes, seed, n_pieces, n_outside, rng)
    ensembles = [[0, 0, 0, 0], [73, 71, 41, 70], [52, 52, 52, 52], [40, 41, 42, 43], [19, 19, 19, 19]]
    parts, segments, t = [], [], 0.0

    def add(kind, audio, piece=None):
        nonlocal t
        parts.append(audio)
        segments.append(Segment(kind, piece, round(t, 3), round(len(audio) / RATE, 3)))
        t += len(audio) / RATE

    for k, pid in enumerate(pieces):
        tempo = float(rng.choice([0.85, 1.0, 1.15]))
        add("piece", _render(corpus / f"{pid}.mid", tempo, ensembles[k % len(ensembles)], soundfont, PIECE_S), pid)
        if k == 0 or k == 3:
            continue  # the next piece follows at once: a change of piece without a pause
        add("pause", room_tone(rng, 6.0))
        j = sum(s.kind == "outside" for s in segments)
        if j < len(outside):
            add("outside", _render(outside[j], 1.0, [0, 0, 0, 0], soundfont, PIECE_S), outside[j].stem)
            add("pause", room_tone(rng, 4.0))
    return np.concatenate(parts), segments


def programme_figures(records: list[dict], segments) -> dict:
    t = np.array([r["t"] for r in records])
    state = np.array([r["state"] for r in records])
    piece = np.array([r["piece"] or "" for r in records])
    out = {"outside_following": {}, "piece_right_after_10s": {}, "flips_12s_after_change": [], "rules": Counter()}
    for k, s in enumerate(segments):
        sel = (t >= s.start_s) & (t < s.start_s + s.duration_s)
        if s.kind == "outside":
            out["outside_following"][s.piece] = round(float((state[sel] == "following").mean()), 3)
        elif s.kind == "piece":
            late = sel & (t >= s.start_s + 10)
            out["piece_right_after_10s"][s.piece] = round(float(((state[late] == "following")
                                                                  & (piece[late] == s.piece)).mean()), 3)
            if k > 0 and segments[k - 1].kind == "piece":  # a change of piece without a pause
                near = (t >= s.start_s) & (t < s.start_s + 12)
                keys = list(zip(state[near], piece[near]))
                out["flips_12s_after_change"].append(sum(a != b for a, b in zip(keys, keys[1:])))
    for _, kind, rule, _ in TAKEN:
        out["rules"][f"{kind}:{rule}"] += 1
    out["outside_following_mean"] = round(float(np.mean(list(out["outside_following"].values()))), 3)
    out["rules"] = dict(out["rules"])
    return out


def tuning_figures(make_engine, manifest: Path) -> dict:
    import soundfile as sf

    from benchmarks.metrics import score_item, summarise
    from benchmarks.warp import load_truth

    scores = []
    for it in json.loads(manifest.read_text()):
        audio, rate = sf.read(it["audio"], dtype="float32", always_2d=True)
        records = replay(make_engine, audio.mean(axis=1), rate)
        scores.append(score_item(records, it["piece"], load_truth(Path(it["truth"]))))
    s = summarise(scores)
    return {k: s[k] for k in ("items", "stable_median_s", "stable_p90_s", "acc_end", "within_0.5", "wrong_follow_items",
                                "wrong_follow_max_s") if k in s}


def main(argv=None) -> int:
    from benchmarks import paths

    p = argparse.ArgumentParser(prog="python -m studies.outside_follow", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--variant", choices=VARIANTS, default="both")
    p.add_argument("--bundle", default="exported/default")
    p.add_argument("--corpus", default=str(paths.chorale_dir()))
    p.add_argument("--tunes", default=str(paths.data_root() / "midi" / "nottingham"))
    p.add_argument("--soundfont", default="/usr/share/sounds/sf3/MuseScore_General_Lite.sf3")
    p.add_argument("--seed", type=int, default=DEFAULTS["seed"])
    p.add_argument("--pieces", type=int, default=DEFAULTS["pieces"])
    p.add_argument("--outside", type=int, default=DEFAULTS["outside"])
    p.add_argument("--cache", default=str(paths.work_dir() / "outside_follow"), help="the rendered programme")
    p.add_argument("--tuning", default=None, help="also run this tuning manifest (benchmarks.material --set tuning)")
    p.add_argument("--open-programme", action="store_true",
                   help="the engine as `follower replay --open-programme` runs it")
    p.add_argument("--items-only", action="store_true", help="only the --tuning manifest's items, not the programme")
    args = p.parse_args(argv)

    from benchmarks.soak import RATE, Segment
    from follower import runner

    cache = Path(args.cache) / f"programme_s{args.seed}_{args.pieces}_{args.outside}"
    if not (cache / "audio.npy").is_file():
        cache.mkdir(parents=True, exist_ok=True)
        audio, segments = build(Path(args.corpus), Path(args.tunes), args.soundfont, args.seed, args.pieces,
                                args.outside)
        np.save(cache / "audio.npy", audio)
        (cache / "segments.json").write_text(json.dumps([s.__dict__ for s in segments], indent=1))
    audio = np.load(cache / "audio.npy", allow_pickle=False)
    segments = [Segment(**s) for s in json.loads((cache / "segments.json").read_text())]
    patch()
    make_engine = engine_factory(args.bundle, args.variant, args.open_programme)
    t0 = time.process_time()
    result = {"variant": args.variant, "open_programme": args.open_programme}
    if not args.items_only:
        records = replay(make_engine, audio, RATE)
        result.update(segments=[s.__dict__ for s in segments], **programme_figures(records, segments))
        ids = make_engine(RATE).index.piece_ids
        result["taken"] = [f"{t:.2f} {kind} {ids[piece]} ({rule})" for t, kind, rule, piece in TAKEN]
    TAKEN.clear()  # the tuning items' locks are not the programme's
    if args.tuning:
        result["tuning"] = tuning_figures(make_engine, Path(args.tuning))
    result["cpu_s"] = round(time.process_time() - t0, 1)
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    from follower.cliutil import module_main

    raise SystemExit(module_main(main))
