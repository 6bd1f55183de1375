"""Noise between pieces (applause, room tone) is not music: it neither votes nor locks a piece."""

import numpy as np
import pytest

from benchmarks.soak import applause, room_tone
from conftest import have_fluidsynth, render
from follower.bundle import load_bundle
from follower.engine import FOLLOWING, LOST, SEARCHING, Engine, EngineConfig
from follower.features import spectrogram
from follower.index import load_index
from follower.noise import flatness, sounding

RATE = 22050


def coloured_noise(rng, seconds, power):
    """Noise whose spectral density falls as 1 / f**power (0 white, 1 pink, 2 brown)."""
    n = int(seconds * RATE)
    f = np.fft.rfftfreq(n)
    f[0] = f[1]
    x = np.fft.irfft(np.fft.rfft(rng.normal(0, 1, n)) / f ** (power / 2), n)
    return (0.1 * x / np.abs(x).max()).astype(np.float32)


def chord(seconds, pitches=(48, 55, 64, 67)):
    """Harmonic tones (eight partials each) at MIDI ``pitches``."""
    t = np.arange(int(seconds * RATE)) / RATE
    x = sum(np.sin(2 * np.pi * 440 * 2 ** ((p - 69) / 12) * k * t) / k for p in pitches for k in range(1, 9))
    return (0.1 * x / np.abs(x).max()).astype(np.float32)


@pytest.mark.parametrize("power", [0, 1, 2])
def test_white_pink_and_brown_noise_are_not_music(power):
    frames = spectrogram(coloured_noise(np.random.default_rng(power), 3.0, power), RATE)
    assert np.mean(frames.max(axis=1) >= 0.05) > 0.9  # loud enough to pass the silence level
    music = sounding(frames, 0.05, EngineConfig().noise_flatness)
    assert music.mean() < 0.1  # a window needs 30 % of its frames to vote


def test_applause_is_not_music_and_chords_are():
    claps = spectrogram(applause(np.random.default_rng(1), 4.0), RATE)
    tones = spectrogram(chord(3.0), RATE)
    gate = EngineConfig().noise_flatness
    loud = claps.max(axis=1) >= 0.05
    assert sounding(claps, 0.05, gate)[loud].mean() < 0.1
    assert sounding(tones, 0.05, gate)[5:].all()
    assert flatness(tones[5:]).max() < 0.5 < flatness(claps[loud]).min()


def test_the_gate_can_be_turned_off():
    frames = spectrogram(coloured_noise(np.random.default_rng(0), 1.0, 0), RATE)
    assert np.array_equal(sounding(frames, 0.05, 1.0), frames.max(axis=1) >= 0.05)


@pytest.mark.skipif(not have_fluidsynth(), reason="FluidSynth or the TimGM6mb soundfont is absent")
def test_after_a_piece_applause_and_room_tone_lose_it_and_lock_nothing_else(chroma_bundle, corpus, corpus_index):
    rng = np.random.default_rng(5)
    piece = render(corpus / "piece3.mid")[: RATE * 14]
    after = np.concatenate([room_tone(rng, 2.0), applause(rng, 5.0), room_tone(rng, 12.0)])
    engine = Engine(load_bundle(chroma_bundle), load_index(corpus_index), input_rate_hz=RATE)
    engine.warm_up()
    updates, heard, steps = [], [], []
    audio = np.concatenate([piece, after])
    for i in range(0, len(audio), 700):
        for u in engine.push(audio[i:i + 700]):
            updates.append(u)
            heard.append(engine.evidence().heard_s)
            steps.append(engine._reranker.steps)
    at_end = [k for k, u in enumerate(updates) if u.t <= 13.9][-1]
    assert updates[at_end].state == FOLLOWING and updates[at_end].piece == "piece3"
    noise = [k for k, u in enumerate(updates) if u.t >= 14 + 2.2]  # the window has left the music
    # the noise neither votes nor feeds the re-ranking (both only ever stay or are reset) ...
    assert heard[noise[0]] > 0 and steps[noise[0]] > 0
    assert all(heard[k + 1] <= heard[k] and steps[k + 1] <= steps[k] for k in noise[:-1])
    # ... nor follows another piece: piece3 is held, then lost (the pause rule), then the search starts again
    assert all(u.piece in (None, "piece3") for u in updates[at_end:])
    assert any(u.state == LOST for u in updates[at_end:])
    assert updates[-1].state == SEARCHING and updates[-1].piece is None


@pytest.mark.skipif(not have_fluidsynth(), reason="FluidSynth or the TimGM6mb soundfont is absent")
def test_a_long_silence_while_searching_forgets_what_was_heard_before(chroma_bundle, corpus, corpus_index):
    """Music after a long pause is new music: the votes and the re-ranking start from nothing."""
    audio = np.concatenate([render(corpus / "piece3.mid")[: RATE * 2], room_tone(np.random.default_rng(2), 6.0)])
    engine = Engine(load_bundle(chroma_bundle), load_index(corpus_index), input_rate_hz=RATE)
    engine.warm_up()
    seen = []
    for i in range(0, len(audio), 700):
        for u in engine.push(audio[i:i + 700]):
            seen.append((u.t, u.state, engine.evidence().heard_s, engine._reranker.steps))
    assert all(state == SEARCHING for _, state, _, _ in seen)  # 2 s is too little to lock
    assert max(h for _, _, h, _ in seen) > 0 and max(n for _, _, _, n in seen) > 0  # the music was heard ...
    pause_hold_s = EngineConfig().pause_hold_s
    late = [(h, n) for t, _, h, n in seen if t > 2.0 + pause_hold_s + 0.2]
    assert late and all(h == 0 and n == 0 for h, n in late)  # ... and forgotten once the silence lasted
