"""studies.solo_line: the melodies written out alone, the tunes no training set holds, the table."""

import numpy as np
import pretty_midi

import studies.solo_line as solo


def _tune(path, seed):
    """A Nottingham-like file: a melody track, then a chord track."""
    rng = np.random.default_rng(seed)
    pm = pretty_midi.PrettyMIDI(initial_tempo=120.0)
    melody, chords = pretty_midi.Instrument(0), pretty_midi.Instrument(0)
    for i, p in enumerate(rng.integers(60, 80, 8)):
        melody.notes.append(pretty_midi.Note(90, int(p), 0.5 * i, 0.5 * i + 0.5))
    for i in range(2):
        for p in (48, 52, 55):
            chords.notes.append(pretty_midi.Note(70, p, 2.0 * i, 2.0 * i + 2.0))
    pm.instruments += [melody, chords]
    pm.write(str(path))
    return [n.pitch for n in melody.notes]


def test_the_melody_corpus_keeps_the_first_track_alone(tmp_path):
    src = tmp_path / "tunes"
    src.mkdir()
    pitches = {f"t{k}": _tune(src / f"t{k}.mid", k) for k in range(3)}
    written = solo.melody_corpus(src, tmp_path / "melodies")
    assert [p.name for p in written] == ["t0.mid", "t1.mid", "t2.mid"]
    for p in written:
        pm = pretty_midi.PrettyMIDI(str(p))
        assert len(pm.instruments) == 1
        assert [n.pitch for n in pm.instruments[0].notes] == pitches[p.stem]


def test_unseen_tunes_leave_out_the_training_subset(tmp_path, monkeypatch):
    src = tmp_path / "tunes"
    src.mkdir()
    for k in range(6):
        _tune(src / f"t{k}.mid", k)
    monkeypatch.setattr(solo, "TRAINING_TUNES", 4)
    unseen = solo.unseen_tunes(src)
    assert len(unseen) == 2 and unseen <= {f"t{k}" for k in range(6)}


def test_the_table_has_a_row_per_system():
    row = {"items": 2, "acc_5": 0.5, "acc_10": 1.0, "acc_end": 1.0, "stable_median_s": 3.0,
           "stable_p90_s": float("inf"), "wrong_follow_max_s": 0.0, "within_0.25": 0.7, "within_0.5": 0.8,
           "within_0.5_copies": 0.9}
    lines = solo.table({"ours": row, "chroma": row}).splitlines()
    assert len(lines) == 4 and lines[2].startswith("| ours | 2 | 50 % | 100 % | 100 % | 3.0 s / never |")
    assert lines[2].endswith("| 70 / 80 % | 90 % |")
