"""The real FluidSynth: notes land where the roll says, at the right pitch; clear errors without it."""

import os
import sys

import numpy as np
import pytest

from follower.errors import ConfigError, MissingToolError
from follower.features import FeatureConfig, _filterbank
from follower.midi import NOTE_DTYPE, Score
from training.data import synth
from training.data.render import Augmentation, RenderSpec, render_one

SOUNDFONT = "FluidR3_GM.sf2"


def _need_synth():
    try:
        synth.require_fluidsynth()
        return synth.find_soundfont(SOUNDFONT)
    except MissingToolError as e:
        pytest.skip(str(e))


@pytest.fixture(scope="module")
def renderer():
    _need_synth()
    r = synth.Renderer()
    yield r
    r.close()


def make_score(notes):
    """notes: (start_s, end_s, pitch, track) at 120 bpm."""
    arr = np.zeros(len(notes), dtype=NOTE_DTYPE)
    for i, (s, e, p, t) in enumerate(notes):
        arr[i] = (s, e, p, 90, t, t, 0, False)
    return Score("<test>", arr, 480, np.array([0]), np.array([500000.0]), np.array([0.0]))


def chroma_of_bins(config=FeatureConfig()):
    fb = _filterbank(config)
    freqs = np.argmax(fb, axis=0) * config.sample_rate_hz / config.frame_size_samples
    return np.round(69 + 12 * np.log2(freqs / 440.0)).astype(int) % 12


def corr(a, b):
    a, b = a - a.mean(), b - b.mean()
    return float((a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum()))


def test_single_note_sounds_at_its_pitch_and_time(renderer):
    score = make_score([(0.5, 1.5, 69, 0)])  # A4 from 0.5 s to 1.5 s
    audio = renderer.render(score.notes, {0: 40}, SOUNDFONT)  # violin
    sr = renderer.settings.sample_rate_hz
    assert len(audio) == int(1.5 * sr) + int(synth.TAIL_S * sr)
    assert np.abs(audio[: int(0.45 * sr)]).max() < 1e-4      # silence before the onset
    body = audio[int(0.7 * sr): int(1.4 * sr)]
    spectrum = np.abs(np.fft.rfft(body * np.hanning(len(body))))
    peak_hz = np.argmax(spectrum) * sr / len(body)
    assert peak_hz == pytest.approx(440.0, rel=0.02) or peak_hz == pytest.approx(880.0, rel=0.02)
    # the next render starts clean: no reverb tail of the previous one
    again = renderer.render(score.notes, {0: 40}, SOUNDFONT)
    assert np.abs(again[: int(0.45 * sr)]).max() < 1e-4


def test_rendered_pair_has_its_energy_at_the_rolls_notes(renderer):
    # a I-IV-V-I progression in three voices, half a second per chord
    chords = [(48, 64, 67), (53, 65, 69), (55, 62, 71), (48, 64, 72)]
    notes = [(i * 0.5, (i + 1) * 0.5, p, v) for i, chord in enumerate(chords) for v, p in enumerate(chord)]
    score = make_score(notes * 1)
    spec = RenderSpec("t/p@test:0", "t/p", "test", synth.find_soundfont(SOUNDFONT), 0.8, 7,
                      Augmentation(transpose_semitones=2), synth.DEFAULT_FAMILY_WEIGHTS)
    out = render_one(renderer, score, spec, FeatureConfig())
    S, roll = out["spectrogram"].astype(np.float32), out["roll"][:, 0]
    assert out["spectrogram"].dtype == np.float16 and out["roll"].dtype == np.uint8
    # roll shows the transposed notes; audio frame a <-> roll frame a * tempo_ratio
    shift = out["meta"]["transpose"]
    assert np.flatnonzero(roll[0]).tolist() == [p - 21 + shift for p in chords[0]]
    pcs = chroma_of_bins()
    a = np.arange(len(S))
    j = np.round(a * spec.tempo_ratio).astype(int)
    ok = j < len(roll)
    chroma_audio = np.stack([S[ok][:, pcs == k].sum(1) for k in range(12)], axis=1)
    chroma_roll = np.zeros((ok.sum(), 12))
    for p in range(88):
        chroma_roll[:, (p + 21) % 12] += roll[j[ok], p] > 0
    aligned = corr(chroma_audio, chroma_roll)
    assert aligned > 0.5
    assert aligned > corr(chroma_audio, np.roll(chroma_roll, 1, axis=1)) + 0.3   # wrong pitch
    assert aligned > corr(chroma_audio, np.roll(chroma_roll, 10, axis=0)) + 0.2  # wrong time


def test_programs_suit_the_register_and_families_are_checked():
    rng = np.random.default_rng(0)
    notes = make_score([(0, 1, 40, 0), (0, 1, 96, 1)]).notes
    for _ in range(20):
        progs = synth.draw_programs(notes, (("strings", 1.0),), rng)
        assert progs[0] in (42, 43, 48, 49) and progs[1] in (40, 48, 49)  # cello/bass low, violin high
    with pytest.raises(ConfigError, match="instrument families"):
        synth.draw_programs(notes, (("kazoo", 1.0),), rng)


def test_missing_soundfont_is_one_clear_error():
    with pytest.raises(MissingToolError, match="soundfont nope.sf2 not found.*install"):
        synth.find_soundfont("nope.sf2")


def test_no_fluidsynth_is_one_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "fluidsynth", None)  # import fails as if not installed
    with pytest.raises(MissingToolError, match="FluidSynth is not available.*apt-get install fluidsynth"):
        synth.require_fluidsynth()


def test_sf3_soundfont_loads(renderer):
    path = "/usr/share/sounds/sf3/MuseScore_General_Lite.sf3"
    if not os.path.isfile(path):
        pytest.skip(f"{path} not installed")
    audio = renderer.render(make_score([(0.0, 0.3, 60, 0)]).notes, {0: 0}, path)
    assert np.abs(audio).max() > 1e-3
