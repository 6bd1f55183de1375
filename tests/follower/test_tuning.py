"""Music tuned away from A4 = 440 Hz: the front end finds how far, and hears it as if at 440."""

import numpy as np
import pytest

from conftest import have_fluidsynth, one_line_error, render
from follower.errors import ConfigError
from follower.features import FeatureConfig, StreamingSpectrogram, _filterbank, tuned_filterbank
from follower.tuning import TuningConfig, TuningTracker, cents_to_a4_hz

FC = FeatureConfig()
RATE = FC.sample_rate_hz


def chords(cents: float, seconds: float = 4.0, seed: int = 0) -> np.ndarray:
    """Four-note chords of harmonic tones (8 partials, 1/h), a new chord every 0.5 s, tuned ``cents`` from 440."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(0.5 * RATE)) / RATE
    out = []
    for _ in range(int(seconds / 0.5)):
        tone = np.zeros_like(t)
        for pitch in rng.choice(np.arange(48, 80), 4, replace=False):
            f0 = 440.0 * 2 ** ((pitch - 69) / 12 + cents / 1200)
            tone += sum(np.sin(2 * np.pi * f0 * h * t) / h for h in range(1, 9) if f0 * h < RATE / 2)
        out.append(tone * np.exp(-2 * t))
    x = np.concatenate(out)
    return (0.2 * x / np.abs(x).max()).astype(np.float32)


def tracker(config: TuningConfig | None = None) -> TuningTracker:
    return TuningTracker(FC.sample_rate_hz, FC.frame_size_samples, FC.frame_rate_hz, config)


def shifts(audio: np.ndarray, config: TuningConfig | None = None, block: int = 1024):
    """Per frame, the cents the front end heard the audio at; and the frames."""
    tr = tracker(config)
    spec = StreamingSpectrogram(FC, tuning=tr)
    cents, frames = [], []
    for i in range(0, len(audio), block):
        f = spec.push(audio[i:i + block])
        frames.append(f)
        cents += [tr.applied_cents] * len(f) if block <= FC.hop_samples else []
    return tr, np.array(cents), np.concatenate(frames)


def test_at_0_cents_the_tuned_filterbank_is_the_filterbank():
    assert tuned_filterbank(FC, 0) is _filterbank(FC)
    for cents in (-101, -37, 25, 48):
        assert tuned_filterbank(FC, cents).shape == _filterbank(FC).shape  # the same bands, always


def test_a_detuned_chord_through_the_tuned_filterbank_sounds_as_the_one_at_440():
    frames = np.lib.stride_tricks.sliding_window_view(chords(0.0, 1.0), FC.frame_size_samples)[::FC.hop_samples]
    detuned = np.lib.stride_tricks.sliding_window_view(chords(-40.0, 1.0), FC.frame_size_samples)[::FC.hop_samples]
    from follower.features import _frames_to_features

    ref = _frames_to_features(frames, FC)
    heard = {c: _frames_to_features(detuned, FC, c) for c in (0, -40)}
    err = {c: np.abs(heard[c] - ref).mean() for c in heard}
    assert err[-40] < 0.35 * err[0], err


@pytest.mark.parametrize("cents", [-37.0, 30.0])
def test_music_25_to_40_cents_off_is_heard_at_440_within_a_second(cents):
    tr, per_frame, _ = shifts(chords(cents), block=512)
    assert abs(tr.estimate_cents - cents) < 4, tr.estimate_cents
    assert abs(tr.applied_cents - cents) < 5
    first = int(np.flatnonzero(per_frame != 0)[0])
    assert first <= 1.0 * FC.frame_rate_hz  # within a second of the music
    assert set(np.unique(per_frame[first:])) <= set(range(int(cents) - 5, int(cents) + 6))


@pytest.mark.parametrize("cents", [0.0, 12.0, -18.0, 47.0, -48.0])
def test_music_near_440_or_near_half_a_semitone_off_is_left_at_440(cents):
    # near 440 the encoders do not care; near 50 cents the audio cannot say which semitone is meant
    tr, per_frame, _ = shifts(chords(cents), block=512)
    assert tr.estimate_cents is not None
    assert (per_frame == 0).all(), (cents, tr.estimate_cents)


def test_noise_is_never_taken_for_a_tuning():
    noise = np.random.default_rng(1).normal(0, 0.1, RATE * 4).astype(np.float32)
    tr, per_frame, _ = shifts(noise, block=512)
    assert (per_frame == 0).all() and tr.estimate_cents is None  # no frame was tonal


def test_a_given_concert_pitch_is_heard_from_the_first_frame_and_nothing_is_estimated():
    cfg = TuningConfig(a4_hz=415.0)
    assert cfg.fixed_cents == -101 and abs(cents_to_a4_hz(-101) - 415.0) < 0.3
    tr, per_frame, _ = shifts(chords(-101.0, 1.0), cfg, block=512)
    assert (per_frame == -101).all() and tr.estimate_cents is None
    _, per_frame, _ = shifts(chords(-37.0, 2.0), TuningConfig(auto=False), block=512)
    assert (per_frame == 0).all()


def test_the_shifts_and_frames_do_not_depend_on_how_the_audio_is_cut():
    audio = chords(-37.0)
    tr_small, _, small = shifts(audio, block=700)
    tr_big, _, big = shifts(audio, block=len(audio))
    assert tr_small.applied_cents == tr_big.applied_cents != 0
    assert small.shape == big.shape
    np.testing.assert_allclose(small, big, atol=1e-5)  # (one matrix product per run of frames: float rounding)


def test_a_reset_forgets_the_tuning():
    tr = tracker()
    spec = StreamingSpectrogram(FC, tuning=tr)
    spec.push(chords(-37.0))
    assert tr.applied_cents != 0
    spec.reset()
    assert tr.applied_cents == 0 and tr.estimate_cents is None


def test_configs_refuse_what_cannot_work():
    with pytest.raises(ConfigError, match="--a4-hz"):
        TuningConfig(a4_hz=1000.0)
    with pytest.raises(ConfigError, match="off_cents"):
        TuningConfig(on_cents=45.0, max_cents=40.0)
    with pytest.raises(ConfigError, match="lo_hz"):
        TuningConfig(lo_hz=3000.0)


def test_replay_says_when_it_hears_the_music_off_440_and_refuses_a_bad_pitch(chroma_bundle, corpus, corpus_index,
                                                                            tmp_path):
    """A real FluidSynth render resampled 35 cents flat (a tape that ran slow): one notice on stderr; a
    concert pitch given with --a4-hz is used as given; a pitch no instrument has is refused in one line."""
    import subprocess
    import sys

    import soundfile as sf
    from conftest import REPO

    if not have_fluidsynth():
        pytest.skip("FluidSynth or the TimGM6mb soundfont is absent")
    import librosa

    audio = render(corpus / "piece3.mid")[: RATE * 12]
    flat = librosa.resample(audio, orig_sr=RATE, target_sr=RATE / 2 ** (-35 / 1200), res_type="soxr_hq")
    path = tmp_path / "flat.flac"
    sf.write(path, flat, RATE)
    base = [sys.executable, "-m", "follower.cli", "replay", str(path), "--fast", "--quiet", "--osc", "127.0.0.1:9",
            "--bundle", str(chroma_bundle), "--index", str(corpus_index)]
    r = subprocess.run(base, capture_output=True, text=True, cwd=REPO, timeout=300)
    assert r.returncode == 0, r.stderr
    notices = [line for line in r.stderr.splitlines() if line.startswith("tuning: ")]
    assert len(notices) == 1 and "heard as if at 440" in notices[0], r.stderr
    cents = int(notices[0].split("tuned ")[1].split(" cents")[0])
    assert -42 <= cents <= -28
    r = subprocess.run(base + ["--a4-hz", "431"], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert r.returncode == 0 and "tuned -36 cents" in r.stderr, r.stderr
    r = subprocess.run(base + ["--no-follow-tuning"], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert r.returncode == 0 and "tuning: " not in r.stderr, r.stderr
    one_line_error(subprocess.run(base + ["--a4-hz", "44"], capture_output=True, text=True, cwd=REPO, timeout=60),
                   "--a4-hz")


def test_a_whole_recording_s_tuning_for_the_offline_aligner():
    from follower.tuning import recording_cents

    assert abs(recording_cents(chords(-37.0), RATE, FC) + 37) <= 3
    assert recording_cents(chords(0.0), RATE, FC) == 0
    assert recording_cents(chords(-37.0), RATE, FC, TuningConfig(a4_hz=415.0)) == -101
    assert recording_cents(chords(-37.0), RATE, FC, TuningConfig(auto=False)) == 0
