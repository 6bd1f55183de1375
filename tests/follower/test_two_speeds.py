"""Players far slower than the written tempo: the engine at twice the speed, and the choice between two."""

import numpy as np
import pytest
import soundfile as sf

from conftest import have_fluidsynth, render
from follower.bundle import load_bundle
from follower.engine import FOLLOWING, Engine
from follower.errors import ConfigError
from follower.index import load_index
from follower.two_speeds import TwoSpeedConfig, TwoSpeedEngine

SLOW = 0.4  # times the written tempo: below the one engine's tempo range (0.5-2)
RATE = 22050


def push_all(engine, audio, block=700):
    engine.warm_up()
    updates = []
    for i in range(0, len(audio), block):
        updates += engine.push(audio[i:i + block], last=i + block >= len(audio))
    return updates


@pytest.fixture(scope="module")
def slow_render(corpus):
    if not have_fluidsynth():
        pytest.skip("FluidSynth or the TimGM6mb soundfont is absent (apt-get install fluidsynth timgm6mb-soundfont)")
    start_s = 4.0  # of the piece's timeline
    audio = render(corpus / "piece5.mid", tempo_ratio=SLOW, rate_hz=RATE)
    return audio[int(start_s / SLOW * RATE):int((start_s + 12.0) / SLOW * RATE)], start_s


def test_an_engine_at_twice_the_speed_reports_on_the_audio_clock(chroma_bundle, corpus_index, slow_render):
    audio, start_s = slow_render
    engine = Engine(load_bundle(chroma_bundle), load_index(corpus_index), input_rate_hz=RATE, speed=2)
    updates = push_all(engine, audio)
    # one update per two 50 ms frames, stamped in seconds of the audio
    assert len(updates) == pytest.approx(len(audio) / RATE * engine.fps / 2, abs=2)
    assert np.allclose(np.diff([u.t for u in updates]), 2 / engine.fps, atol=1e-6)
    locked = [u for u in updates if u.state == FOLLOWING]
    assert locked and {u.piece for u in locked} == {"piece5"}
    late = [u for u in locked if u.t > locked[0].t + 4.0]
    assert late, "locked too late to be measured"
    assert np.median([u.tempo for u in late]) == pytest.approx(SLOW, abs=0.08)  # the player's, not the engine's
    err = np.array([u.position_s - (start_s + u.t * SLOW) for u in late])
    assert np.mean(np.abs(err) < 0.5) >= 0.9, np.round(err[::5], 2)


def test_a_slow_player_is_followed_by_the_slow_engine(chroma_bundle, corpus_index, slow_render):
    audio, start_s = slow_render
    engine = TwoSpeedEngine(load_bundle(chroma_bundle), load_index(corpus_index), input_rate_hz=RATE)
    updates = push_all(engine, audio)
    assert np.allclose(np.diff([u.t for u in updates]), 1 / engine.fps, atol=1e-6)  # the first engine's clock
    assert engine.heard == "slow"
    locked = [u for u in updates if u.state == FOLLOWING]
    assert {u.piece for u in locked[-40:]} == {"piece5"}
    assert locked[-1].tempo < TwoSpeedConfig().slow_tempo_max
    err = np.array([u.position_s - (start_s + u.t * SLOW) for u in locked[-40:]])
    assert np.mean(np.abs(err) < 0.5) >= 0.9, np.round(err[::5], 2)
    # a change is announced once, though the slow engine's updates are heard twice each
    pairs = list(zip(updates, updates[1:]))
    assert not any(a.piece_changed and b.piece_changed and a.piece == b.piece for a, b in pairs)
    assert not any(a.state_changed and b.state_changed and a.state == b.state for a, b in pairs)
    assert all(b.piece_changed for a, b in pairs if a.piece != b.piece)


def test_a_pause_is_counted_in_real_seconds_by_both_engines(chroma_bundle, corpus_index, slow_render):
    """A slow player who stops: both engines are lost once the silence passes pause_hold_s of real time
    (the slow engine's own clock runs twice as fast; on it the silence would last half as long)."""
    audio, _ = slow_render
    bundle, index = load_bundle(chroma_bundle), load_index(corpus_index)
    engine = TwoSpeedEngine(bundle, index, input_rate_hz=RATE)
    played = push_all(engine, audio)
    assert engine.slow.state == FOLLOWING and played[-1].state == FOLLOWING
    hold_s = engine.config.pause_hold_s
    assert engine.slow.config.pause_hold_s * engine.slow.speed == hold_s  # (the slow engine's clock)
    end_s, lost_s = len(audio) / RATE, None
    silence = np.zeros(int((hold_s + 1.5) * RATE), np.float32)
    for i in range(0, len(silence), 700):
        engine.push(silence[i:i + 700])
        if lost_s is None and engine.slow.state != FOLLOWING:
            lost_s = (len(audio) + i + 700) / RATE - end_s
    # lost once the silence has lasted pause_hold_s of real time (the render's last notes ring a little
    # into it, the spectrogram's frame and the slow engine's 100 ms updates add their lag): not twice that
    assert hold_s <= lost_s <= hold_s + 1.0
    assert engine.state != FOLLOWING and engine.main.state != FOLLOWING


def test_at_the_written_tempo_the_outputs_are_the_one_engines(chroma_bundle, corpus_index, rendered):
    audio, rate = sf.read(rendered["path"], dtype="float32")  # piece3 at 1.1x
    bundle, index = load_bundle(chroma_bundle), load_index(corpus_index)
    one = push_all(Engine(bundle, index, input_rate_hz=rate), audio)
    two_engine = TwoSpeedEngine(bundle, index, input_rate_hz=rate)
    two = push_all(two_engine, audio)
    assert len(one) == len(two)
    key = lambda u: (u.t, u.piece, u.state, u.position_s, u.tempo, u.piece_changed, u.state_changed)  # noqa: E731
    assert [key(u) for u in one] == [key(u) for u in two]
    assert two_engine.heard == "main"


def test_configs_refuse_what_cannot_work():
    with pytest.raises(ConfigError, match="speed"):
        TwoSpeedConfig(speed=1)
    with pytest.raises(ConfigError, match="handover_tempo"):
        TwoSpeedConfig(handover_tempo=0.8, slow_tempo_max=0.7)
    with pytest.raises(ConfigError, match="settle_s"):
        TwoSpeedConfig(settle_s=-1.0)


def test_an_engine_speed_is_a_whole_number_of_frames(chroma_bundle, corpus_index):
    with pytest.raises(ValueError, match="speed"):
        Engine(load_bundle(chroma_bundle), load_index(corpus_index), input_rate_hz=RATE, speed=1.5)


def test_updates_not_wanted_are_left_out_and_counted(chroma_bundle, corpus_index, rendered):
    audio, rate = sf.read(rendered["path"], dtype="float32")
    audio = audio[: int(6 * rate)]
    bundle, index = load_bundle(chroma_bundle), load_index(corpus_index)
    every = push_all(Engine(bundle, index, input_rate_hz=rate), audio)
    engine = Engine(bundle, index, input_rate_hz=rate)
    engine.warm_up()
    some = []
    for i in range(0, len(audio), 700):
        some += engine.push(audio[i:i + 700], last=i + 700 >= len(audio), wanted=lambda t: t >= 3.0)
    assert some and min(u.t for u in some) >= 3.0
    assert engine.idle_updates == len(every) - len(some) and engine.skipped_updates == 0
    assert [u.t for u in some] == [u.t for u in every if u.t >= 3.0]  # the window kept filling meanwhile


def _update(t, piece, tempo, confidence):
    from follower.engine import Update
    return Update(t=t, piece=piece, title=piece, position_s=1.0, position_beats=2.0, tempo=tempo, bpm=60.0 * tempo,
                  confidence=confidence, state=FOLLOWING, latency_ms=1.0, candidates=[])


def _heard(pair, main, slow, seconds=3.0):
    """The pieces heard, update by update: the first engine's ``main`` (piece, tempo, confidence) every 50 ms,
    the slow engine's ``slow`` every 100 ms from 0.5 s on."""
    pair._reset_choice()
    heard = []
    for k in range(int(seconds / 0.05)):
        t = 0.05 * (k + 1)
        if t >= 0.5 and k % 2 == 0:
            pair._see_slow(_update(t, *slow))
        heard.append(pair._choose(_update(t, *main), 1.0).piece)
    return heard


@pytest.mark.parametrize("disagree_handover", [True, False])
def test_a_first_engine_on_another_piece_than_a_slow_player_s_gives_way(disagree_handover):
    """The first engine locked a wrong piece early and holds it at a tempo of its own (0.7), its paths no
    longer backing it; the slow engine then follows another piece at 0.4x, its paths backing it. With the
    rule the slow engine is heard once it has settled."""
    pair = TwoSpeedEngine.__new__(TwoSpeedEngine)  # the choice alone: no engines needed
    pair.two_speeds = TwoSpeedConfig(disagree_handover=disagree_handover)
    heard = _heard(pair, ("wrong", 0.7, 0.0), ("right", 0.4, 0.3))
    settled = int((0.5 + pair.two_speeds.settle_s) / 0.05)
    assert set(heard[:settled - 1]) == {"wrong"}
    assert set(heard[settled + 2:]) == ({"right"} if disagree_handover else {"wrong"})
    # the first engine's paths back its piece better than the slow engine's back another (a slow passage of
    # a piece the first engine follows well, the slow engine locked astray): it stays heard
    assert set(_heard(pair, ("right", 0.65, 0.6), ("wrong", 0.4, 0.0))) == {"right"}
    # the slow engine does not hear the player below the handover tempo: the first engine stays heard
    assert set(_heard(pair, ("wrong", 0.7, 0.0), ("right", 0.6, 0.3))) == {"wrong"}


def _pair_heard(handback, main_before, main_after, slow_piece, slow_confidence, seconds=8.0):
    """(t, piece heard, engine heard) per update: the first engine follows ``main_before`` (piece, tempo,
    confidence) until 3 s, then ``main_after``; the slow engine follows ``slow_piece`` at 0.35x, its paths
    backing it (0.8) until 3 s and ``slow_confidence`` from then on."""
    pair = TwoSpeedEngine.__new__(TwoSpeedEngine)  # the choice alone: no engines needed
    pair.two_speeds = TwoSpeedConfig(handback=handback)
    pair._reset_choice()
    heard = []
    for k in range(int(seconds / 0.05)):
        t = 0.05 * (k + 1)
        if k % 2 == 0:
            pair._see_slow(_update(t, slow_piece, 0.35, slow_confidence if t >= 3.0 else 0.8))
        u = pair._choose(_update(t, *(main_before if t < 3.0 else main_after)), 1.0)
        heard.append((t, u.piece, pair.heard))
    return heard


def test_the_first_engine_is_heard_again_where_the_slow_engine_no_longer_follows_anything():
    """Music at the written tempo in a large room: both engines locked a wrong piece early, the first one's
    tempo sank to the bottom of its range and the slow engine came to be heard; then the first engine found
    the right piece at 1.0x while the slow engine, hearing the music at 2x, sat on the wrong one with no path
    margin. The first engine is heard again after settle_s."""
    heard = _pair_heard(True, ("wrong", 0.5, 0.0), ("right", 1.0, 0.9), "wrong", 0.0)
    assert {h for t, _, h in heard if 2.0 <= t < 3.0} == {"slow"}
    settle_s = TwoSpeedConfig().settle_s
    assert {p for t, p, _ in heard if 3.0 <= t < 3.0 + settle_s - 0.1} == {"wrong"}
    assert {p for t, p, _ in heard if t >= 3.0 + settle_s + 0.2} == {"right"}
    # without the rule the slow engine stays heard
    assert {p for t, p, _ in _pair_heard(False, ("wrong", 0.5, 0.0), ("right", 1.0, 0.9), "wrong", 0.0)} == {"wrong"}


def test_a_slow_player_s_engine_backed_by_its_paths_stays_heard_when_the_first_engine_switches():
    """A slow player: both engines named the right piece, the first engine pinned at 0.5x, then it switched
    to a wrong piece at 0.9x on a path of a few seconds. The slow engine's paths still back the right piece:
    it stays heard."""
    heard = _pair_heard(True, ("right", 0.5, 0.0), ("wrong", 0.9, 0.9), "right", 0.7)
    assert {p for t, p, _ in heard if t >= 2.0} == {"right"}
