import numpy as np
import pytest

from follower.errors import BadAudioError, ConfigError
from follower.features import FeatureConfig, StreamingSpectrogram, spectrogram


def _sine_bank(seconds, rate_hz, freqs_hz=(220.0, 440.0, 1234.5), seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate_hz)) / rate_hz
    x = sum(np.sin(2 * np.pi * f * t) for f in freqs_hz) / len(freqs_hz)
    return (x + 0.01 * rng.standard_normal(len(t))).astype(np.float32)


def test_paper_front_end_has_92_bins_at_20_fps():
    cfg = FeatureConfig()
    assert cfg.n_bins == 92
    assert abs(cfg.frame_rate_hz - 20.0) < 0.01


@pytest.mark.parametrize("block", [1, 37, 441, 1102, 4096])
def test_offline_equals_streaming(block):
    x = _sine_bank(1.3, 22050)
    offline = spectrogram(x, 22050)
    stream = StreamingSpectrogram()
    parts = [stream.push(x[i:i + block]) for i in range(0, len(x), block)]
    online = np.concatenate(parts)
    assert online.shape == offline.shape == (len(x) // 1102, 92)
    np.testing.assert_allclose(online, offline, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("block", [333, 4096])
def test_offline_equals_streaming_when_resampling(block):
    x = _sine_bank(1.5, 44100)
    offline = spectrogram(x, 44100)
    stream = StreamingSpectrogram(input_rate_hz=44100)
    parts = [stream.push(x[i:i + block]) for i in range(0, len(x), block)]
    parts.append(stream.push(np.zeros(0, np.float32), last=True))
    online = np.concatenate(parts)
    assert online.shape == offline.shape
    np.testing.assert_allclose(online, offline, rtol=1e-4, atol=1e-4)


def test_energy_sits_at_the_sine_frequency():
    cfg = FeatureConfig()
    spec = spectrogram(_sine_bank(1.0, 22050, freqs_hz=(440.0,)), 22050)
    # the band holding 440 Hz dominates once the frame is full of signal
    peak_band = spec[5:].mean(axis=0).argmax()
    from follower.features import _filterbank
    centre_bin = _filterbank(cfg)[:, peak_band].argmax()
    centre_hz = centre_bin * cfg.sample_rate_hz / cfg.frame_size_samples
    assert abs(centre_hz - 440.0) < 15.0


def test_stereo_is_averaged_and_reset_forgets():
    x = _sine_bank(0.5, 22050)
    stereo = np.stack([x, x], axis=1)
    np.testing.assert_allclose(spectrogram(stereo, 22050), spectrogram(x, 22050), atol=1e-6)
    s = StreamingSpectrogram()
    first = s.push(x)
    s.reset()
    np.testing.assert_allclose(s.push(x), first, atol=1e-6)


def test_bad_audio_and_bad_config():
    with pytest.raises(BadAudioError, match="NaN"):
        spectrogram(np.array([0.0, np.nan] * 2000), 22050)
    with pytest.raises(BadAudioError, match="shape"):
        spectrogram(np.zeros((2, 2, 2)), 22050)
    with pytest.raises(ConfigError, match="hop_samples=0"):
        FeatureConfig(hop_samples=0)
    with pytest.raises(ConfigError, match="sample rate"):
        StreamingSpectrogram(input_rate_hz=-5)
