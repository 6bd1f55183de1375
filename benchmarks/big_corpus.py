"""The big-corpus benchmark: every MIDI file at hand plus transposed copies, built in resumable shards.

    python -m benchmarks.big_corpus prepare            # write the converted and transposed MIDI files
    python -m benchmarks.big_corpus build --minutes 60 # embed shards until the time is up (resumable)
    python -m benchmarks.big_corpus merge              # join the finished shards into one index

The corpus, in this order (so a build stopped early holds all the real music first):
the Bach chorales, Nottingham, piano-midi.de, the four Boulanger-Lewandowski piano-roll
sets written as MIDI (0.25 s per roll step), music21's own corpora (folk-song
collections and composers, not its Bach chorales and Nottingham tunes, which are
above already), then copies of all of those transposed by +1, -1, +2, -2, ... +6
semitones as distractors: a transposed tune is musically close to its original and
is exactly the kind of near-miss a large library holds.

Shards of ``--shard-files`` files are built by ``follower.shard.build_shard`` (the
index build itself, one process) and saved under ``WORK/shards``; a shard already on
disk is not built again, so the build resumes where it stopped. ``--ray`` builds the
shards on Ray instead (local by default, ``--ray-address`` for a cluster).
Work files go to ``$SCOREFOLLOW_BENCH/bigcorpus`` (default ``data/bench/bigcorpus``).

``--sources`` builds a corpus of some sources only (and their transposed copies), in its
own folder ``bigcorpus-<sources>``: ``--sources bach-chorales`` gives the 349 chorales
with 11 transposed copies each (4,188 pieces, ~0.9 M snippets at hop 8, minutes to
build), the near-misses of a large library around the benchmark's own pieces.
"""

from __future__ import annotations

import follower.blas  # noqa: F401  (before numpy: one BLAS thread)

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from follower.bundle import SCORE_ENCODERS

TRANSPOSE = (1, -1, 2, -2, 3, -3, 4, -4, 5, -5, 6)
ROLL_SETS = ("JSB_Chorales", "Nottingham", "Piano_midi", "MuseData")
ROLL_STEP_S = 0.25
COMPLETE = ".complete"
SOURCES = ("bach-chorales", "nottingham", "piano-midi", "rolls", "music21")


def work(args=None) -> Path:
    from benchmarks.paths import work_dir

    sources = chosen(args)
    return work_dir() / ("bigcorpus" if sources == SOURCES else "bigcorpus-" + "+".join(sources))


def chosen(args=None) -> tuple[str, ...]:
    """The sources ``--sources`` names, in corpus order (all of them by default)."""
    names = getattr(args, "sources", None)
    if not names:
        return SOURCES
    wanted = set(names.split(","))
    return tuple(s for s in SOURCES if s in wanted)


def real_roots() -> list[Path]:
    from training.paths import data_root

    d = data_root() / "midi"
    return [d / "bach-chorales", d / "nottingham", d / "piano-midi"]


def write_notes_midi(path: Path, notes, *, tempo_us: int = 500_000, tpb: int = 480, name: str = "") -> None:
    """Notes [(start_s, end_s, pitch)] as a one-track MIDI file at 120 bpm."""
    import mido

    ticks = tpb * 1_000_000 / tempo_us
    events = []
    for s, e, p in notes:
        events.append((round(s * ticks), 1, p))
        events.append((round(e * ticks), 0, p))
    events.sort()
    track = mido.MidiTrack([mido.MetaMessage("track_name", name=name, time=0),
                            mido.MetaMessage("set_tempo", tempo=tempo_us, time=0)])
    now = 0
    for t, on, p in events:
        track.append(mido.Message("note_on" if on else "note_off", note=int(p), velocity=80 if on else 0,
                                  time=t - now))
        now = t
    path.parent.mkdir(parents=True, exist_ok=True)
    mid = mido.MidiFile(ticks_per_beat=tpb)
    mid.tracks.append(track)
    mid.save(path)


def rolls_to_midi(out: Path) -> int:
    """The .mat piano-roll sets (88 keys from MIDI 21, one row a step) as MIDI files."""
    import scipy.io as sio
    from training.paths import data_root

    n = 0
    for name in ROLL_SETS:
        m = sio.loadmat(data_root() / "rolls" / f"{name}.mat")
        for split in ("traindata", "validdata", "testdata"):
            for i, roll in enumerate(m[split][0]):
                path = out / name / f"{split[:-4]}_{i:04d}.mid"
                if path.exists():
                    n += 1
                    continue
                roll = np.asarray(roll) > 0
                padded = np.vstack([np.zeros((1, 88), bool), roll, np.zeros((1, 88), bool)])
                d = np.diff(padded.astype(np.int8), axis=0)
                notes = []
                for key in range(88):
                    starts, ends = np.flatnonzero(d[:, key] == 1), np.flatnonzero(d[:, key] == -1)
                    notes += [(s * ROLL_STEP_S, e * ROLL_STEP_S, 21 + key) for s, e in zip(starts, ends)]
                if notes:
                    write_notes_midi(path, notes, name=f"{name} {split[:-4]} {i}")
                    n += 1
    return n


def music21_to_midi(out: Path, minutes: float) -> int:
    """music21's corpora (minus what the real folders hold) written as MIDI, until ``minutes`` pass:
    the files of ``training corpus music21`` (training.data.music21_corpus), resumable."""
    from training.data.music21_corpus import convert

    res = convert(out, minutes=minutes)
    if res.stopped_at:
        print(f"music21: stopped after {minutes} min at {res.stopped_at}", file=sys.stderr)
    if res.failed:
        print(f"music21: {len(res.failed)} unreadable files or tunes left out ({out / 'report.csv'})", file=sys.stderr)
    return res.written + res.kept


def transpose_midi(src: Path, dst: Path, semitones: int) -> bool:
    import mido

    try:
        mid = mido.MidiFile(src, clip=True)
    except Exception:  # noqa: BLE001 - the build reports unreadable originals
        return False
    for track in mid.tracks:
        for msg in track:
            if msg.type in ("note_on", "note_off") and msg.channel != 9:
                msg.note = int(np.clip(msg.note + semitones, 0, 127))
    dst.parent.mkdir(parents=True, exist_ok=True)
    mid.save(dst)
    return True


def source_roots(w: Path, sources: tuple[str, ...] = SOURCES) -> list[Path]:
    return [r for r in real_roots() + [w / "midi" / "rolls", w / "midi" / "music21"] if r.name in sources]


def corpus_roots(w: Path, sources: tuple[str, ...] = SOURCES) -> list[tuple[Path, str]]:
    """(folder, id prefix) in build order: the sources, then each transposition of them all."""
    roots = [(r, r.name) for r in source_roots(w, sources)]
    return roots + [(w / "midi" / "transposed" / f"{k:+d}" / r.name, f"t{k:+d}/{label}")
                    for k in TRANSPOSE for r, label in roots]


def cmd_prepare(args) -> int:
    from tqdm import tqdm

    from follower.index import find_midi

    w, sources = work(args), chosen(args)
    if "rolls" in sources:
        print(f"rolls: {rolls_to_midi(w / 'midi' / 'rolls')} files")
    if "music21" in sources:
        print(f"music21: {music21_to_midi(w / 'midi' / 'music21', args.music21_minutes)} files")
    for name in ("rolls", "music21"):
        if name in sources:
            (w / "midi" / name).mkdir(parents=True, exist_ok=True)
            (w / "midi" / name / COMPLETE).touch()
    for k in TRANSPOSE[:args.transpositions]:
        for root in source_roots(w, sources):
            files = find_midi([root]) if root.exists() else []
            out = w / "midi" / "transposed" / f"{k:+d}" / root.name
            for f, pid in tqdm(files, desc=f"transpose {k:+d} {root.name}", unit="file", leave=False):
                dst = out / (pid + ".mid")
                if not dst.exists():
                    transpose_midi(f, dst, k)
            out.mkdir(parents=True, exist_ok=True)
            (out / COMPLETE).touch()  # the build takes a transposed folder only once it is whole
    print(f"{len(corpus_files(w, sources))} MIDI files under {w / 'midi'} and the data folder")
    return 0


def root_files(root: Path, label: str) -> list[tuple[Path, str]]:
    from follower.index import find_midi

    return [(f, f"{label}/{pid}") for f, pid in find_midi([root])]


def ready_roots(w: Path, sources: tuple[str, ...] = SOURCES) -> list[tuple[int, Path, str]]:
    """(position, folder, label) of the folders whose MIDI files are all written (the data folder's always are)."""
    real = set(real_roots())
    return [(k, r, label) for k, (r, label) in enumerate(corpus_roots(w, sources))
            if r.exists() and (r in real or (r / COMPLETE).exists())]


def corpus_files(w: Path, sources: tuple[str, ...] = SOURCES) -> list[tuple[Path, str]]:
    return [item for _, r, label in ready_roots(w, sources) for item in root_files(r, label)]


def encoder_suffix(score_encoder: str) -> str:
    # shards and indexes of different score encoders never mix: their embeddings differ
    return "" if score_encoder == "full" else f"-{score_encoder}"


def shard_dir(w: Path, hop: int, score_encoder: str = "full") -> Path:
    return w / f"shards-hop{hop}{encoder_suffix(score_encoder)}"


def reuse(index_path: str, label: str, out: Path) -> None:
    """An index of one whole folder built before (same bundle and hop), its ids given the folder's label."""
    from follower.index import load_index, save_index

    if out.exists():
        return
    index = load_index(index_path)
    index.piece_ids = np.array([f"{label}/{pid}" for pid in index.piece_ids.tolist()], dtype=str)
    save_index(index, out)
    print(json.dumps({"shard": out.name, "reused": index_path, "pieces": index.n_pieces,
                      "snippets": index.n_snippets, "s": index.header.get("build_s")}), flush=True)


def cmd_build(args) -> int:
    from follower.bundle import load_bundle
    from follower.index import save_index
    from follower.paths import resolve_bundle
    from follower.shard import build_shard

    w = work(args)
    out = shard_dir(w, args.hop_frames, args.score_encoder)
    out.mkdir(parents=True, exist_ok=True)
    bundle = load_bundle(resolve_bundle(args.bundle), threads=1, score_encoder=args.score_encoder)
    part, parts = (int(x) for x in args.part.split("/"))
    prebuilt = dict(item.split("=", 1) for item in args.prebuilt)
    t0 = time.time()
    while True:
        # each folder is cut into its own shards, named by the folder's place in the corpus order, so
        # transposed folders that prepare finishes meanwhile join at the end without moving any shard
        todo = []
        for k, root, label in ready_roots(w, chosen(args)):
            if label in prebuilt:
                reuse(prebuilt[label], label, out / f"{k:03d}-0000.index.npz")
                continue
            files = root_files(root, label)
            for j in range(0, len(files), args.shard_files):
                path = out / f"{k:03d}-{j // args.shard_files:04d}.index.npz"
                if (j // args.shard_files) % parts == part and not path.exists():
                    todo.append((path, files[j:j + args.shard_files]))
        if not todo:
            print("every shard of the folders ready so far is built")
            break
        if time.time() - t0 > args.minutes * 60:
            print(f"time is up ({args.minutes} min), {len(todo)} shards to go; run again to go on")
            break
        path, shard = todo[0]
        t = time.time()
        index = build_shard(shard, bundle, hop_frames=args.hop_frames, dtype=np.float16)
        save_index(index, path)
        rec = {"shard": path.name, "files": len(shard), "pieces": index.n_pieces, "snippets": index.n_snippets,
               "encoded": index.header["n_encoded"], "s": round(time.time() - t, 1)}
        with open(out / "log.jsonl", "a") as f:
            f.write(json.dumps(rec) + "\n")
        print(json.dumps(rec), flush=True)
    return 0


def cmd_merge(args) -> int:
    from follower.index import load_index, save_index
    from follower.merge import merge_indexes

    w = work(args)
    paths = sorted(shard_dir(w, args.hop_frames, args.score_encoder).glob("*.index.npz"))
    if not paths:
        print(f"no shards under {w}; run `python -m benchmarks.big_corpus build` first", file=sys.stderr)
        return 1
    merged, report = merge_indexes([load_index(p) for p in paths], [p.name for p in paths])
    out = save_index(merged, args.output or w / f"big-hop{args.hop_frames}{encoder_suffix(args.score_encoder)}.index.npz")
    print(f"{out}: {merged.n_pieces} pieces, {merged.n_snippets} snippets from {len(paths)} shards; "
          f"{len(report)} duplicate ids")
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sources", default=None, metavar="NAME[,NAME]",
                   help=f"build from these sources only (and their transposed copies), in a folder of their "
                        f"own; of {','.join(SOURCES)} (default: all)")
    sub = p.add_subparsers(dest="cmd", required=True)
    pr = sub.add_parser("prepare", help="write the roll sets, music21's corpora and transposed copies as MIDI")
    pr.add_argument("--music21-minutes", type=float, default=10.0, help="time allowed for music21's conversion")
    pr.add_argument("--transpositions", type=int, default=len(TRANSPOSE),
                    help=f"how many transposed copies of everything to write, in the order {TRANSPOSE}")
    pr.set_defaults(func=cmd_prepare)
    b = sub.add_parser("build", help="embed the corpus in resumable shards")
    b.add_argument("--bundle", default="exported/default")
    b.add_argument("--hop-frames", type=int, default=8)
    b.add_argument("--shard-files", type=int, default=100)
    b.add_argument("--score-encoder", default="full", choices=tuple(SCORE_ENCODERS),
                   help="the bundle's score encoder that embeds (shared: follower.score_trunk, several times "
                        "faster); its shards go to their own folder")
    b.add_argument("--part", default="0/1", metavar="K/N",
                   help="build only every N-th shard of each folder, starting at the K-th: run N processes "
                        "with 0/N ... N-1/N to use N cores")
    b.add_argument("--minutes", type=float, default=60.0, help="stop starting new shards after this long")
    b.add_argument("--prebuilt", action="append", default=[], metavar="LABEL=INDEX",
                   help="take the index of a whole folder built before (same bundle and hop) instead of "
                        "embedding it again, e.g. piano-midi=data/bench/index/piano-...-hop8.index.npz")
    b.set_defaults(func=cmd_build)
    m = sub.add_parser("merge", help="join the finished shards into one index")
    m.add_argument("--hop-frames", type=int, default=8)
    m.add_argument("--score-encoder", default="full", choices=tuple(SCORE_ENCODERS))
    m.add_argument("-o", "--output", default=None)
    m.set_defaults(func=cmd_merge)
    args = p.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    from follower.cliutil import module_main

    raise SystemExit(module_main(main))
