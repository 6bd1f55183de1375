"""One instrument, one line: how soon is a solo melody named among a corpus of melodies? (a study)

    python -m studies.solo_line [--items 12] [--work DIR]

The benchmark's material is polyphonic (four-part chorales, piano); the follower is also
played a single line: a violin, a flute, a singer. This study writes the melody of every
Nottingham tune as a MIDI file of its own (the tunes' first track; their chords are left
out), renders excerpts of melodies the encoders never saw in training (the tunes outside
the 300 that the training sets take by hash, ``training.data.build.default_corpora``) as
one instrument in a room (the benchmark's own rendering: held-out soundfont, tempo curve
0.75-1.3x with rubato, synthetic room, pink noise), and replays them against an index of
all 1,034 melodies with ``follower replay --fast`` and with the chroma identifier
(``benchmarks.chroma_identifier``). It prints the benchmark's identification and following
figures for both. Work files go to ``$SCOREFOLLOW_BENCH/solo`` (resumable: what exists is
kept).

A study, not a benchmark set: nothing in the engine is tuned on it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

SEED = 4242
N_ITEMS = 24
HOP_FRAMES = 4
# a lone melody on instruments that play one (GM programs)
SOLO_PROGRAMS = {"violin": 40, "flute": 73, "clarinet": 71, "oboe": 68, "alto sax": 65, "trumpet": 56}
TRAINING_TUNES = 300  # default_corpora's hash-chosen Nottingham subset


def melody_corpus(src: Path, out: Path) -> list[Path]:
    """The first track of every tune in ``src``, one MIDI file each under ``out`` (kept if present)."""
    import warnings

    import pretty_midi

    warnings.filterwarnings("ignore", message="Tempo, Key or Time signature change events")
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for f in sorted(src.glob("*.mid")):
        dst = out / f.name
        if not dst.exists():
            pm = pretty_midi.PrettyMIDI(str(f))
            melody = pretty_midi.PrettyMIDI(initial_tempo=120.0)
            inst = pretty_midi.Instrument(program=0, name="melody")
            inst.notes = sorted(pm.instruments[0].notes, key=lambda n: (n.start, n.pitch))
            melody.instruments.append(inst)
            melody.write(str(dst))
        written.append(dst)
    return written


def unseen_tunes(src: Path) -> set:
    """File stems of the Nottingham tunes that no training set holds."""
    from training.data import corpus as corpus_mod

    used = corpus_mod.select(corpus_mod.iter_corpus(src, seed=0),
                             max_pieces=TRAINING_TUNES, seed=0)
    used_stems = {Path(p.source).stem for p in used}
    return {f.stem for f in src.glob("*.mid")} - used_stems


def render_items(corpus: list[Path], unseen: set, out: Path, n: int) -> list[dict]:
    from benchmarks.material import render_item

    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(SEED)
    pool = sorted(p for p in corpus if p.stem in unseen)
    names = list(SOLO_PROGRAMS)
    items = []
    for k, midi in enumerate(rng.choice(pool, size=n, replace=False)):
        midi = Path(midi)
        name = f"solo_{k:02d}_{midi.stem}"
        audio, truth = out / f"{name}.flac", out / f"{name}.truth.json"
        instrument = names[k % len(names)]
        item_rng = np.random.default_rng([SEED, k])
        if not audio.exists():
            render_item(midi, audio, truth, item_rng, programs=[SOLO_PROGRAMS[instrument]], instruments=instrument,
                        start_frac=(0.0, 0.5), length_s=(25.0, 35.0), base_tempo=(0.75, 1.3))
        items.append({"name": name, "audio": str(audio), "truth": str(truth), "piece": midi.stem,
                      "instrument": instrument})
    return items


def run(cmd: list[str], log: Path) -> None:
    """``cmd`` as the benchmark runs its systems (benchmarks.runners.run_child); one clear line if it fails."""
    from benchmarks.runners import run_child
    from follower.errors import ConfigError

    rc = run_child(cmd, log)["rc"]
    if rc != 0:
        raise ConfigError(f"{' '.join(cmd[:4])} ... failed (exit {rc}); see {log}")


def score(folder: Path, items: list[dict], melodies: Path) -> dict:
    """The benchmark's summary row, plus the share within 0.5 s counting the other copy of music
    written out twice as right (folk tunes repeat their strains: studies.repeat_positions)."""
    from benchmarks.metrics import load_jsonl, score_item, summarise
    from benchmarks.warp import load_truth
    from studies.repeat_positions import item_counts, locked_positions
    from studies.same_notes import load_notes

    scores, near, n = [], 0, 0
    for i in items:
        records, truth = load_jsonl(folder / f"{i['name']}.jsonl"), load_truth(Path(i["truth"]))
        scores.append(score_item(records, i["piece"], truth))
        c = item_counts(*locked_positions(records, i["piece"], truth), load_notes(melodies / f"{i['piece']}.mid"))
        near, n = near + c["within_05"] + c["same_notes"], n + c["n"]
    row = summarise(scores)
    row["within_0.5_copies"] = near / max(n, 1)
    return row


def table(rows: dict) -> str:
    from benchmarks.report import secs

    lines = ["| system | items | acc. 5 s | acc. 10 s | acc. end | stable id. (median / p90) | longest wrong follow "
             "| within 0.25 / 0.5 s | within 0.5 s, copies counted right |",
             "|---|---:|---|---|---|---|---|---|---|"]
    for name, r in rows.items():
        lines.append(f"| {name} | {r['items']} | {100 * r['acc_5']:.0f} % | {100 * r['acc_10']:.0f} % | "
                     f"{100 * r['acc_end']:.0f} % | {secs(r['stable_median_s'])} / {secs(r['stable_p90_s'])} | "
                     f"{r['wrong_follow_max_s']:.1f} s | {100 * r['within_0.25']:.0f} / {100 * r['within_0.5']:.0f} % | "
                     f"{100 * r['within_0.5_copies']:.0f} % |")
    return "\n".join(lines)


def main(argv=None) -> int:
    from benchmarks import paths
    from follower.cliutil import run_main

    p = argparse.ArgumentParser(prog="python -m studies.solo_line", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--items", type=int, default=N_ITEMS, help="excerpts rendered (default %(default)s)")
    p.add_argument("--work", type=Path, default=None, help="work folder (default $SCOREFOLLOW_BENCH/solo)")
    p.add_argument("--bundle", default="exported/default")
    p.add_argument("--systems", default="follower,chroma", help="comma-separated: follower, chroma")

    def body(args) -> int:
        work = args.work or paths.work_dir() / "solo"
        src = paths.data_root() / "midi" / "nottingham"
        corpus = melody_corpus(src, work / "melodies")
        items = render_items(corpus, unseen_tunes(src), work / "material", args.items)
        (work / "items.json").write_text(json.dumps(items, indent=1))
        py = sys.executable
        systems = args.systems.split(",")
        rows = {}
        if "follower" in systems:
            index = work / f"melodies-hop{HOP_FRAMES}.index.npz"
            if not index.exists():
                run([py, "-m", "follower.cli", "index", "build", str(work / "melodies"), "-o", str(index),
                     "--bundle", args.bundle, "--hop-frames", str(HOP_FRAMES), "--quiet"], work / "index.log")
            out = work / "follower"
            out.mkdir(exist_ok=True)
            todo = [i["audio"] for i in items if not (out / f"{i['name']}.jsonl").exists()]
            if todo:
                run([py, "-m", "follower.cli", "replay", *todo, "--fast", "--quiet", "--bundle", args.bundle,
                     "--index", str(index), "--jsonl-dir", str(out), "--osc", "127.0.0.1:9"], work / "follower.log")
            rows["ours"] = score(out, items, work / "melodies")
        if "chroma" in systems:
            out = work / "chroma"
            out.mkdir(exist_ok=True)
            jobs = [{"audio": i["audio"], "corpus": str(work / "melodies"), "jsonl": str(out / f"{i['name']}.jsonl")}
                    for i in items if not (out / f"{i['name']}.jsonl").exists()]
            if jobs:
                (out / "jobs.json").write_text(json.dumps(jobs))
                run([py, "-m", "benchmarks.chroma_identifier", "--jobs", str(out / "jobs.json"), "--cache",
                     str(work / "cache")], work / "chroma.log")
            rows["chroma + subsequence DTW"] = score(out, items, work / "melodies")
        print(table(rows))
        return 0

    return run_main(body, p.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
