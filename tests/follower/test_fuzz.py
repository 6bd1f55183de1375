"""A short fuzzing run: hostile MIDI and audio files through the real readers, with the test bundle.

The benchmark (``python -m benchmarks.fuzz --cases 5000``) runs thousands of cases
with the shipped model; this runs a few hundred in-process (and three through the
real commands: three MIDI and three audio cases) on the small chroma bundle and corpus of the follower's tests.
"""

import json

import pytest

from conftest import have_fluidsynth

pytestmark = pytest.mark.skipif(not have_fluidsynth(), reason="FluidSynth or the TimGM6mb soundfont is absent "
                                                              "(apt-get install fluidsynth timgm6mb-soundfont)")


def test_hostile_files_never_give_a_traceback_or_a_hang(chroma_bundle, corpus, corpus_index, tmp_path):
    from benchmarks import fuzz

    s = fuzz.run(cases=240, seed=7, corpus=corpus, bundle_dir=str(chroma_bundle), index_path=str(corpus_index),
                 out=tmp_path, timeout_s=30.0, spawn_every=80, progress=False)
    assert s["failures"] == [], json.dumps(s["failures"], indent=1)[:3000]
    assert s["tracebacks"] == s["hangs"] == s["bad_exits"] == s["unnamed"] == 0
    targets = s["by_target"]
    for target in ("index", "dataset", "replay"):  # each reader saw files it took and files it refused
        assert targets[target]["accepted"] > 0 and targets[target]["refused"] > 0, (target, targets[target])
    spawned = {k: v["accepted"] + v["refused"] for k, v in targets.items() if k.startswith("cli:")}
    assert spawned == {"cli:index": 3, "cli:dataset": 3, "cli:replay": 3}
    # every refused file is named in the report, with the one line the user got
    report = json.loads((tmp_path / "report.json").read_text())
    refused = [r for r in report["refused"] if not r["target"].startswith("cli:")]
    assert len(refused) == sum(v["refused"] for k, v in targets.items() if not k.startswith("cli:"))
    assert all(r["file"] in r["message"] for r in refused)


def test_what_the_fuzzer_found_is_one_line_without_warnings(tmp_path):
    """Two files from the 5,000-case run: a tempo of 0 (every note at one instant) and stereo samples of
    +inf and -inf (their mean is NaN); both once printed numpy warnings before or instead of the one line."""
    import warnings

    import mido
    import numpy as np

    from follower.errors import BadAudioError, BadMidiError
    from follower.features import valid_audio
    from follower.midi import load_midi

    mid = mido.MidiFile(ticks_per_beat=480)
    track = mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=0, time=0)])
    for n in range(4):
        track += [mido.Message("note_on", note=60 + n, velocity=80, time=0),
                  mido.Message("note_off", note=60 + n, velocity=0, time=480)]
    mid.tracks.append(track)
    mid.save(tmp_path / "tempo0.mid")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(BadMidiError, match="tempo0.mid: a tempo of 0 microseconds per beat at tick 0"):
            load_midi(tmp_path / "tempo0.mid")
        with pytest.raises(BadAudioError, match="NaN or infinite"):
            valid_audio(np.array([[np.inf, -np.inf], [0.0, 0.0]], np.float32))
        assert np.abs(valid_audio(np.full(4, 3e38, np.float32))).max() == 1e3  # clipped, not overflowing
