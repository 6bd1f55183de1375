"""Does an index built with the shared score trunk retrieve and identify as the full encoder's does?

    python -m studies.shared_trunk_retrieval --kinds bach10,chorale         # snippet retrieval, chorale corpus
    python -m studies.shared_trunk_retrieval --kinds piano                  # piano-midi.de (a quarter + the items')
    python -m studies.shared_trunk_retrieval --kinds bach10,chorale,jumps --replay full=FULL.npz shared=SHARED.npz

Retrieval: every 5th frame of each benchmark item (``benchmarks.material``; real Bach10
recordings and renders with a held-out soundfont) is an audio query, embedded by the
bundle's audio encoder; its rank is that of the best snippet of the right piece within
0.3 s of the true position among *every* snippet of the corpus (hop 4), as each score
encoder of the bundle embeds them (follower.index.ScoreEmbedder: the shared trunk
embeds whole pieces). Replay: ``follower replay --fast`` of each item with each index,
scored as ``benchmarks.run_all`` scores the follower (benchmarks.metrics).
"""

from __future__ import annotations

import follower.blas  # noqa: F401  (before numpy: one BLAS thread)

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks import paths

TOLERANCE_S = 0.3


def retrieval(bundle_dir: str, kinds: list[str], encoders: list[str], items: list) -> None:
    import soundfile as sf

    from follower.bundle import load_bundle, open_score_encoder
    from follower.features import spectrogram
    from follower.index import ScoreEmbedder, find_midi, snippet_centres
    from follower.midi import load_midi
    from follower.snippets import audio_input, cut, score_roll

    b = load_bundle(bundle_dir)
    cfg = b.config
    fps, width = cfg.features.frame_rate_hz, cfg.snippets.roll_frames
    embed = {n: ScoreEmbedder(open_score_encoder(bundle_dir, cfg, n, spinning=False), cfg.snippets) for n in encoders}
    corpus = paths.piano_dir() if kinds[0] == "piano" else paths.chorale_dir()
    files = find_midi([corpus])
    if kinds[0] == "piano":  # 23 h of music: the items' pieces and every 4th other piece
        wanted = {it.piece for it in items}
        files = [f for i, f in enumerate(files) if f[1] in wanted or i % 4 == 0]
    db = {n: [] for n in encoders}
    piece, pos, ids, cpu = [], [], [], {n: 0.0 for n in encoders}
    for p, (path, pid) in enumerate(files):
        roll = score_roll(load_midi(path), cfg.snippets, fps)
        centres = snippet_centres(len(roll), 4)
        for n in encoders:
            t0 = time.process_time()
            db[n].append(embed[n].piece(roll, centres))
            cpu[n] += time.process_time() - t0
        piece += [p] * len(centres)
        pos.append(centres / fps)
        ids.append(pid)
    piece, pos = np.array(piece), np.concatenate(pos)
    db = {n: np.concatenate(v) for n, v in db.items()}
    print(f"{','.join(kinds)}: {len(files)} pieces, {len(piece)} snippets; embedding, CPU per snippet: "
          + ", ".join(f"{n} {cpu[n] / len(piece) * 1e3:.3f} ms" for n in encoders))
    for n in encoders[1:]:
        c = (db[n] * db[encoders[0]]).sum(1)
        print(f"  {n} against {encoders[0]}: cosine mean {c.mean():.4f}, 1st percentile {np.percentile(c, 1):.4f}")
    ranks = {n: [] for n in encoders}
    for it in items:
        tm = json.loads(Path(it.truth).read_text())["time_map"]
        x, sr = sf.read(it.audio, dtype="float32", always_2d=True)
        spec = spectrogram(x.mean(1), sr, cfg.features)
        t = np.arange(width // 2, len(spec) - width // 2, 5)
        truth = np.interp(t / fps, tm["audio_s"], tm["midi_s"], left=np.nan, right=np.nan)
        ok = np.isfinite(truth)
        t, truth = t[ok], truth[ok]
        q = b.audio(audio_input(cut(spec, t, width)))
        right = (piece[None, :] == ids.index(it.piece)) & (np.abs(pos[None, :] - truth[:, None]) <= TOLERANCE_S)
        for n in encoders:
            sim = q @ db[n].T
            best = np.where(right, sim, -9.0).max(1)
            ranks[n].append(1 + (sim > best[:, None]).sum(1))
    print("| score encoder | queries | MRR | top-1 | top-10 |\n|---|---:|---:|---:|---:|")
    for n in encoders:
        r = np.concatenate(ranks[n])
        print(f"| {n} | {len(r)} | {np.mean(1 / r):.4f} | {np.mean(r == 1):.3f} | {np.mean(r <= 10):.3f} |")


def replay(indexes: dict, kinds: list[str], items: list, out_dir: Path) -> None:
    from benchmarks.metrics import load_jsonl, score_item, summarise
    from benchmarks.runners import QUIET_OSC, follower_exe
    from benchmarks.warp import load_truth

    print("| index | material | items | acc. 5 s | acc. end | time to stable id. (median / p90) | "
          "within 0.25 / 0.5 / 1 s | back after a jump (median) |\n|---|---|---:|---:|---:|---|---|---:|")
    for label, index in indexes.items():
        runs = out_dir / label
        runs.mkdir(parents=True, exist_ok=True)
        for it in items:
            jsonl = runs / f"{it.name}.jsonl"
            if not jsonl.exists():
                subprocess.run([follower_exe(), "replay", it.audio, "--fast", "--index", index, "--jsonl", str(jsonl),
                                "--osc", QUIET_OSC, "--quiet"], check=True, capture_output=True)
        for kind in kinds:
            r = summarise([score_item(load_jsonl(runs / f"{i.name}.jsonl"), i.piece, load_truth(Path(i.truth)))
                           for i in items if i.kind == kind])
            rec = "" if not r["jumps"] else f"{r['recovery_median_s']:.2f} s"
            print(f"| {label} | {kind} | {r['items']} | {r['acc_5']:.0%} | {r['acc_end']:.0%} | "
                  f"{r['stable_median_s']:.2f} / {r['stable_p90_s']:.2f} s | {r['within_0.25']:.1%} / "
                  f"{r['within_0.5']:.1%} / {r['within_1']:.1%} | {rec} |")


def main(argv=None) -> int:
    from benchmarks.material import load_manifest

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bundle", default="exported/default")
    p.add_argument("--kinds", default="bach10,chorale", help="benchmark material kinds (one corpus: chorale "
                                                             "kinds, or piano)")
    p.add_argument("--encoders", default="full,shared", help="the bundle's score encoders, the first the reference")
    p.add_argument("--replay", nargs="*", default=[], metavar="LABEL=INDEX",
                   help="replay the items with these indexes instead (built by follower index build)")
    p.add_argument("--out", default=None, help="replay logs (default: WORK/studies/shared_trunk)")
    args = p.parse_args(argv)
    kinds = args.kinds.split(",")
    corpus = "piano" if kinds == ["piano"] else "chorales"
    items = [i for i in load_manifest(paths.work_dir() / "material") if i.kind in kinds and i.corpus == corpus]
    if not items:
        print(f"no {args.kinds} items: run python -m benchmarks.material first", file=sys.stderr)
        return 1
    if args.replay:
        out = Path(args.out) if args.out else paths.work_dir() / "studies" / "shared_trunk"
        replay(dict(s.split("=", 1) for s in args.replay), kinds, items, out)
    else:
        retrieval(args.bundle, kinds, args.encoders.split(","), items)
    return 0


if __name__ == "__main__":
    from follower.cliutil import module_main

    raise SystemExit(module_main(main))
