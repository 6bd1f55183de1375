"""A short fuzzing run: hostile MIDI and audio files through the real readers, with the test bundle.

The benchmark (``python -m benchmarks.fuzz --cases 5000``) runs thousands of cases
with the shipped model; this runs a few hundred in-process (and three through the
real commands: three cases, each through its readers) on the small chroma bundle and corpus of the follower's tests.
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
    assert sum(v["accepted"] + v["refused"] for k, v in targets.items() if k.startswith("cli:")) >= 3
    # every refused file is named in the report, with the one line the user got
    report = json.loads((tmp_path / "report.json").read_text())
    refused = [r for r in report["refused"] if not r["target"].startswith("cli:")]
    assert len(refused) == sum(v["refused"] for k, v in targets.items() if not k.startswith("cli:"))
    assert all(r["file"] in r["message"] for r in refused)
