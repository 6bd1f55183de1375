"""music21's own corpus as a training corpus: conversion, works, splits, resume, bad files, preset v3."""

import csv
import shutil

import numpy as np
import pytest

pytest.importorskip("music21")

from follower.errors import ConfigError  # noqa: E402
from follower.midi import load_midi  # noqa: E402
from training.data import corpus, music21_corpus as m21  # noqa: E402

ROOT = m21.corpus_root()
MASS_A = ("palestrina/Agnus_I_06.krn", "palestrina/Agnus_II_06.krn")  # two movements of Missa Ave Maria


def read_splits(path):
    with open(path, newline="") as f:
        return {row["file"]: (row["split"], row["tune_family"]) for row in csv.DictReader(f)}


def cli(argv):
    from training.cli import main as training_main

    return training_main(argv)


def test_composers_are_written_as_readable_midi_without_bach(tmp_path, capsys):
    assert cli(["corpus", "music21", "-o", str(tmp_path), "--composers", "chopin,webern", "--quiet"]) == 0
    files = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.mid"))
    # the mazurka's repeats are badly formed for music21's expander: written as notated, not skipped
    assert files == ["chopin/mazurka06-2.mid", "webern/webern_dormi_jesu_op_16_no_2.mid"]
    for f in files:
        score = load_midi(tmp_path / f)
        assert len(score.notes) > 50 and len(np.unique(score.notes["track"])) >= 2  # one track per part
    table = corpus.read_split_file(tmp_path / "splits.csv")
    assert set(table) == set(files) and all(split in corpus.SPLITS for split, _ in table.values())
    assert corpus.read_split_file(tmp_path / "chopin" / "splits.csv")["mazurka06-2.mid"] == table[files[0]]
    assert "2 MIDI files" in capsys.readouterr().out


def test_no_bach_in_the_sources_and_asking_for_it_is_one_clear_error(capsys):
    files = [f.relative_to(ROOT).parts[0] for f in m21.source_files()]
    assert "bach" not in files and "nottingham-dataset" not in files and "palestrina" in files
    # one score in several formats is converted once
    assert not any(f.suffix == ".krn" for f in m21.source_files(composers=["beethoven"]))
    assert [f.name for f in m21.source_files(composers=["schumann_robert"]) if "48" in f.name or "dichter" in f.name] \
        == ["opus48no2.mxl"]  # Dichterliebe no. 2 is in the corpus twice
    with pytest.raises(ConfigError, match="training corpus bach"):
        m21.source_files(composers=["bach"])
    assert cli(["corpus", "music21", "-o", "/nonexistent/x", "--composers", "bach"]) != 0
    assert "training corpus bach" in capsys.readouterr().err


def test_file_names_keep_the_dots_of_the_source(tmp_path):
    from pathlib import Path

    one, two = (m21.targets(tmp_path, Path(f"monteverdi/madrigal.3.{k}.mxl"), 1)[0] for k in (1, 2))
    assert one.name == "madrigal.3.1.mid" and two.name == "madrigal.3.2.mid"
    assert m21.targets(tmp_path, Path("essenFolksong/erk20.abc"), 2)[1] == tmp_path / "essenFolksong/erk20/0001.mid"


def test_works_group_movements_numbers_parts_and_tunes():
    w = lambda rel, title=None: m21.work_of(ROOT / rel, ROOT, title)  # noqa: E731
    assert w("beethoven/opus59no1/movement1.mxl") == w("beethoven/opus59no1/movement4.mxl")
    assert w("beethoven/opus18no3.mxl") == w("beethoven/opus18no4.mxl") == w("beethoven/opus18no1/movement1.mxl")
    assert w("beethoven/opus132.mxl") != w("beethoven/opus133.mxl")
    assert w("monteverdi/madrigal.5.4.mxl") == w("monteverdi/madrigal.5.5.mxl") != w("monteverdi/madrigal.4.4.mxl")
    assert w("trecento/PMFC_06-Jacopo-03a-Di_Novo.xml") == w("trecento/PMFC_06-Jacopo-03b-Di_Novo.xml")
    assert w(MASS_A[0]) == w(MASS_A[1]) == "palestrina/missa-ave-maria"
    # one tune in two folk collections is one work; different tunes are not
    assert w("oneills1850/0001-0050.abc", "The Irish Washerwoman") == w("ryansMammoth/x.abc", "Irish Washerwoman.")
    assert w("essenFolksong/irl.abc", "An Spealadoir, S. 134") != w("essenFolksong/irl.abc", "Leanbh, S. 26")


def test_movements_of_one_work_share_a_split_that_adding_files_never_moves(tmp_path):
    other = "palestrina/Kyrie_00.krn"
    res = m21.convert(tmp_path, files=[ROOT / f for f in (*MASS_A, other)], progress=False)
    assert res.written == 3 and not res.failed
    table = read_splits(tmp_path / "splits.csv")
    a, b = (table[f.replace(".krn", ".mid")] for f in MASS_A)
    assert a == b and a[1] == "palestrina/missa-ave-maria"
    assert a[0] == corpus.hash_split("music21:palestrina/missa-ave-maria")  # a hash of the work alone


def test_rerun_resumes_without_rewriting_and_minutes_stop_it(tmp_path):
    files = [ROOT / "essenFolksong" / "testd.abc", ROOT / MASS_A[0]]
    first = m21.convert(tmp_path, files=files[:1], progress=False)
    tunes = sorted((tmp_path / "essenFolksong" / "testd").glob("*.mid"))
    assert first.written == len(tunes) > 1 and tunes[0].name == "0000.mid"  # one file per tune of an Opus
    stamps = {p: p.stat().st_mtime_ns for p in tunes}
    stopped = m21.convert(tmp_path, files=files, minutes=0, progress=False)
    assert stopped.kept == len(tunes) and stopped.written == 0 and stopped.stopped_at == MASS_A[0]
    again = m21.convert(tmp_path, files=files, progress=False)
    assert again.written == 1 and again.kept == len(tunes)
    assert {p: p.stat().st_mtime_ns for p in tunes} == stamps
    assert len(read_splits(tmp_path / "splits.csv")) == len(tunes) + 1


def test_a_bad_file_is_skipped_and_reported(tmp_path, monkeypatch, capsys):
    root = tmp_path / "corpus"
    (root / "somebody").mkdir(parents=True)
    (root / "somebody" / "broken.xml").write_text("<score-partwise><part id='P1'><measure>")
    shutil.copy(ROOT / MASS_A[0], root / "somebody" / "good.krn")
    monkeypatch.setattr(m21, "corpus_root", lambda: root)
    out = tmp_path / "out"
    assert cli(["corpus", "music21", "-o", str(out), "--quiet"]) == 0
    captured = capsys.readouterr()
    assert "1 unreadable files or tunes skipped" in captured.out and "Traceback" not in captured.out + captured.err
    with open(out / "report.csv", newline="") as f:
        (row,) = list(csv.DictReader(f))
    assert row["source"] == "somebody/broken.xml" and row["reason"]
    assert [p.name for p in out.rglob("*.mid")] == ["good.mid"]
    assert cli(["corpus", "music21", "-o", str(out), "--quiet"]) == 0  # a rerun tries it again, still listed
    assert "1 unreadable" in capsys.readouterr().out and len((out / "report.csv").read_text().splitlines()) == 2


def test_bach10_tunes_are_held_out():
    from music21 import converter, corpus as m21corpus

    assert m21.is_bach10_tune(m21corpus.parse("bach/bwv255"))
    assert m21.is_bach10_tune(m21corpus.parse("bach/bwv62.6"))  # a chorale of BWV 274's tune
    assert not m21.is_bach10_tune(m21corpus.parse("bach/bwv10.7"))
    assert not m21.is_bach10_tune(converter.parse(ROOT / MASS_A[0]))


def test_preset_v3_adds_each_collection_with_its_ensemble(tmp_path, monkeypatch, capsys):
    from tests.training.test_corpus import SCALE, write_midi
    from training.data.build import DatasetConfig, ensemble_of, plan_renders, v3_settings
    from training.data.synth import PIANO_FAMILIES, STRING_FAMILIES

    monkeypatch.setenv("SCOREFOLLOW_DATA", str(tmp_path))
    with pytest.raises(ConfigError, match="training corpus music21 -o"):
        v3_settings()
    assert cli(["dataset", "build", "--preset", "v3", "-o", str(tmp_path / "d")]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"training corpus music21 -o {tmp_path / 'midi' / 'music21'}" in err[0]
    music = tmp_path / "midi" / "music21"
    for rel in ("mozart/k545/movement1.mid", "mozart/k80/movement1.mid", "essenFolksong/testd/0000.mid"):
        write_midi(music / rel, SCALE)
    for folder in (music, music / "mozart", music / "essenFolksong"):
        (folder / "splits.csv").write_text("file,split,tune_family\n")
    kw = v3_settings()
    specs = {c.name: c for c in kw["corpora"]}
    assert {"bach-chorales", "piano-midi", "mozart", "essenFolksong"} <= set(specs)
    assert specs["mozart"].ensemble == "strings" and specs["essenFolksong"].max_pieces == 60
    cfg = DatasetConfig(corpora=(specs["mozart"],))
    pieces = {p.piece_id: p for p in corpus.iter_corpus(specs["mozart"].path)}
    assert ensemble_of(pieces["mozart/k545/movement1"], cfg) == "piano"
    assert ensemble_of(pieces["mozart/k80/movement1"], cfg) == "strings"
    sonata, quartet = (plan_renders(pieces[f"mozart/{w}/movement1"], cfg)[0] for w in ("k545", "k80"))
    assert sonata.families == PIANO_FAMILIES and sonata.pedal and quartet.families == STRING_FAMILIES

