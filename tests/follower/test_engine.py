"""The engine on real renders: identify the piece, follow it against the render's ground truth."""

import numpy as np
import pytest
import soundfile as sf

from conftest import REPO, have_fluidsynth, render
from follower.bundle import load_bundle
from follower.engine import FOLLOWING, LOST, SEARCHING, Engine
from follower.index import load_index


def run_engine(bundle, index, audio, rate_hz, block=700):
    engine = Engine(bundle, index, input_rate_hz=rate_hz)
    engine.warm_up()
    updates = []
    for i in range(0, len(audio), block):
        updates += engine.push(audio[i:i + block])
    return updates


def check_following(updates, piece, start_s, ratio, duration_s, *, max_lock_s=8.0, tol_s=0.5):
    locked = [u for u in updates if u.state == FOLLOWING]
    assert locked, f"never locked; last candidates {updates[-1].candidates}"
    assert locked[0].t <= max_lock_s
    assert {u.piece for u in locked} == {piece}
    settled = [u for u in locked if u.t >= locked[0].t + 1.0 and start_s + u.t * ratio < duration_s - 0.5]
    err = np.array([u.position_s - (start_s + u.t * ratio) for u in settled])
    assert len(err) > 20
    assert np.mean(np.abs(err) < tol_s) >= 0.9, f"position errors {np.round(err[::10], 2)}"
    beats = np.array([u.position_beats for u in settled])
    assert np.all(np.diff(beats) > -0.5), "the position should move forward"
    return settled


def test_replay_identifies_and_follows_a_render(chroma_bundle, corpus_index, rendered):
    audio, rate = sf.read(rendered["path"], dtype="float32")  # 44.1 kHz stereo
    updates = run_engine(load_bundle(chroma_bundle), load_index(corpus_index), audio, rate)
    assert updates[0].state == SEARCHING and updates[0].piece is None
    settled = check_following(updates, "piece3", rendered["start_s"], rendered["tempo"], 20.0)
    assert settled[-1].tempo == pytest.approx(rendered["tempo"], abs=0.08)
    assert settled[-1].bpm == pytest.approx(120 * settled[-1].tempo, rel=1e-3)
    assert settled[-1].title == "Test piece 3"
    assert settled[-1].candidates[0][0] == "piece3"
    assert all(0 <= u.confidence <= 1 for u in updates)


def test_silence_is_searching_not_an_error(chroma_bundle, corpus_index):
    updates = run_engine(load_bundle(chroma_bundle), load_index(corpus_index), np.zeros(22050 * 4, np.float32),
                         22050)
    assert len(updates) == 80
    assert {u.state for u in updates} == {SEARCHING}
    assert all(u.piece is None and u.confidence == 0 for u in updates)


@pytest.mark.skipif(not have_fluidsynth(), reason="FluidSynth or the TimGM6mb soundfont is absent")
def test_a_new_piece_and_a_pause_are_recognised(chroma_bundle, corpus, corpus_index):
    a = render(corpus / "piece3.mid")[: 22050 * 12]
    b = render(corpus / "piece6.mid")[22050 * 2: 22050 * 16]
    pause = np.zeros(22050 * 16, np.float32)
    updates = run_engine(load_bundle(chroma_bundle), load_index(corpus_index), np.concatenate([a, b, pause]), 22050)
    at = {round(u.t, 2): u for u in updates}

    def state_at(t):
        return at[min(at, key=lambda x: abs(x - t))]

    assert state_at(11.5).piece == "piece3" and state_at(11.5).state == FOLLOWING
    end_b = 12 + 14
    assert state_at(end_b - 0.5).piece == "piece6" and state_at(end_b - 0.5).state == FOLLOWING
    assert state_at(end_b - 0.5).position_s == pytest.approx(16 - 0.5, abs=0.6)
    # held while the player pauses, then lost (the piece is still reported)
    held = state_at(end_b + 2)
    assert held.position_s == pytest.approx(16, abs=0.7)
    assert state_at(end_b + 6.5).state == LOST and state_at(end_b + 6.5).piece == "piece6"
    # ... and after lost_timeout_s the follower searches again
    assert updates[-1].state == SEARCHING and updates[-1].piece is None


def test_a_jump_back_is_followed(chroma_bundle, corpus, corpus_index):
    if not have_fluidsynth():
        pytest.skip("FluidSynth or the TimGM6mb soundfont is absent")
    full = render(corpus / "piece2.mid")
    audio = np.concatenate([full[: 22050 * 16], full[22050 * 3: 22050 * 14]])  # 16 s, then back to 3 s
    updates = run_engine(load_bundle(chroma_bundle), load_index(corpus_index), audio, 22050)
    late = [u for u in updates if u.t >= 16 + 6]
    truth = np.array([3 + u.t - 16 for u in late])
    pos = np.array([u.position_s for u in late])
    assert all(u.piece == "piece2" for u in late)
    assert np.mean(np.abs(pos - truth) < 0.6) >= 0.8, np.round(pos - truth, 2)


TRAINED = REPO / "exported" / "default"


@pytest.mark.skipif(not (TRAINED / "config.json").is_file(),
                    reason="the trained default bundle exported/default is not there yet (training export)")
def test_trained_bundle_follows_a_test_chorale(tmp_path):
    """The shipped model on a held-out chorale, rendered with the held-out soundfont."""
    from training.paths import data_root

    chorales = data_root() / "midi" / "bach-chorales"
    if not chorales.is_dir():
        pytest.skip(f"{chorales} is absent (the Bach chorales corpus)")
    if not have_fluidsynth():
        pytest.skip("FluidSynth or the TimGM6mb soundfont is absent")
    from follower.index import build_index

    bundle = load_bundle(TRAINED)
    # a small index (the test piece among others) keeps the test to seconds
    names = ["bach_bwv320", "bach_bwv317", "bach_bwv362", "bach_bwv368", "bach_bwv413"]  # test split
    index = build_index([chorales / f"{n}.mid" for n in names], bundle, hop_frames=4, progress=False)
    ratio, start_s = 1.15, 12.0
    audio = render(chorales / "bach_bwv320.mid", tempo_ratio=ratio,
                   programs={1: 52, 2: 52, 3: 53, 4: 53})[int(start_s / ratio * 22050):][: 22050 * 30]
    updates = run_engine(bundle, index, audio, 22050)
    check_following(updates, "bach_bwv320", start_s, ratio, float(index.duration_s[0]), max_lock_s=12.0,
                    tol_s=1.0)


WARM_CHECK = """
import sys, numpy as np, numba, soundfile as sf
import follower
from follower import aligner, engine as fe, jump_watch, knn, note_evidence, npsum, rerank, same_notes, tuning, verify, votes
from follower.bundle import load_bundle
from follower.index import load_index

def kernels():
    return {f"{m.__name__}.{k}": set(v.signatures) for m in (aligner, jump_watch, knn, note_evidence, npsum, rerank, same_notes,
            tuning, verify, votes) for k, v in vars(m).items() if isinstance(v, numba.core.registry.CPUDispatcher)}

if sys.argv[3] == "off":
    fe.Engine._warm_up_lock = lambda self: None
audio, rate = sf.read(sys.argv[4], dtype="float32")
e = fe.Engine(load_bundle(sys.argv[1]), load_index(sys.argv[2]), input_rate_hz=rate)
e.warm_up()
before = kernels()
states = [u.state for i in range(0, len(audio), 700) for u in e.push(audio[i:i + 700])]
assert "following" in states, states[-5:]
after = kernels()
print(" ".join(sorted(k for k in after if after[k] - before[k])))
print(" ".join(sorted(k for k in before if before[k])))
"""


def test_after_warm_up_a_lock_compiles_nothing(chroma_bundle, corpus, corpus_index, tmp_path):
    """Each process loads (or compiles) a numba kernel at its first call: the ones a lock brings in are run by
    warm_up, before audio starts, and not at the first lock of the evening. Fresh processes: this one has
    compiled them all in other tests already."""
    import subprocess
    import sys

    if not have_fluidsynth():
        pytest.skip("FluidSynth or the TimGM6mb soundfont is absent")
    full = render(corpus / "piece2.mid")
    path = tmp_path / "jump.flac"  # a jump back, so that the jump watch has run its kernel
    sf.write(path, np.concatenate([full[: 22050 * 16], full[22050 * 3: 22050 * 14]]), 22050)
    new, warm = {}, {}
    for mode in ("off", "on"):
        r = subprocess.run([sys.executable, "-c", WARM_CHECK, str(chroma_bundle), str(corpus_index), mode, str(path)],
                           capture_output=True, text=True, cwd=REPO, timeout=300)
        assert r.returncode == 0, r.stderr[-2000:]
        lines = r.stdout.split("\n")
        new[mode], warm[mode] = set(lines[0].split()), set(lines[1].split())
    assert {"follower.aligner._advance", "follower.jump_watch._paths"} <= new["off"], new["off"]
    assert new["on"] == set()
    # and the look for earlier copies of what a lock heard (which this render's lock does not reach)
    assert {"follower.same_notes._lag_overlaps", "follower.same_notes._packed_roll"} <= warm["on"] - warm["off"]


def test_a_lock_takes_the_note_templates_the_template_thread_built(chroma_bundle, corpus_index, rendered, monkeypatch):
    """A lock's fine aligner gets the 50 ms templates built ahead while the piece led the re-ranking, not built
    again on the update thread (a long piano piece's held that update up for tens of ms): the same updates.
    The template thread's jobs run at once here, so that the test does not depend on its timing."""
    from concurrent.futures import Future

    import follower.engine as fe
    from follower.note_evidence import BuiltCells

    def at_once(job):
        done = Future()
        done.set_result(job())
        return done

    ahead = BuiltCells.ahead
    monkeypatch.setattr(BuiltCells, "ahead", lambda self, piece, submit, config=None: ahead(self, piece, at_once, config))
    audio, rate = sf.read(rendered["path"], dtype="float32")
    built_here = []
    build = fe.score_templates
    monkeypatch.setattr(fe, "score_templates", lambda *a: (built_here.append(1), build(*a))[1])
    runs = {}
    for prebuilt in (True, False):
        if not prebuilt:
            monkeypatch.setattr(BuiltCells, "templates", lambda self, piece, config=None: None)
        engine = Engine(load_bundle(chroma_bundle), load_index(corpus_index), input_rate_hz=rate)
        engine.warm_up()
        built_here.clear()
        runs[prebuilt] = [(u.t, u.piece, u.position_s, u.tempo, u.state)
                          for i in range(0, len(audio), 700) for u in engine.push(audio[i:i + 700])]
        runs[prebuilt, "built"] = len(built_here)
    assert any(u[4] == FOLLOWING for u in runs[True])
    assert runs[True, "built"] == 0 and runs[False, "built"] >= 1
    assert runs[True] == runs[False]


def test_engines_over_one_index_share_what_they_derive_from_it(chroma_bundle, corpus_index, monkeypatch):
    """The pair of engines and each file of a batch replay read one float32 copy of the rows, one set of
    verification statistics and one answer to the encoder's batch check, made by the first engine."""
    from follower import ahead
    from follower.two_speeds import TwoSpeedEngine

    bundle, index = load_bundle(chroma_bundle), load_index(corpus_index)
    asked = []
    real = ahead.batches_exact
    monkeypatch.setattr(ahead, "batches_exact", lambda *a, **k: asked.append(a[1:]) or real(*a, **k))
    pair, alone = TwoSpeedEngine(bundle, index, input_rate_hz=22050), Engine(bundle, index, input_rate_hz=22050)
    for e in (pair, alone):
        e.warm_up()
    engines = (pair.main, pair.slow, alone)
    assert all(e._search is index.search_matrix for e in engines)
    assert index.search_matrix.dtype == np.float32 and index.search_matrix.flags.c_contiguous
    assert all(e._verifier._cov is pair.main._verifier._cov for e in engines)
    assert len(asked) == 1  # one encoder, one window shape
    # another load of the file is another index, with its own
    fresh = load_index(corpus_index)
    assert fresh.search_matrix is not index.search_matrix
    np.testing.assert_array_equal(fresh.search_matrix, index.search_matrix)
