"""Ground-truth time maps of the benchmark renditions."""


import numpy as np
import pytest


from benchmarks.warp import TEMPO_RATIO_MAX, TEMPO_RATIO_MIN, TimeMap, hold_spans, tempo_curve, warp_from_ratio


def test_constant_ratio_integrates_exactly():
    tm = warp_from_ratio(np.full(1001, 0.5), start_midi_s=4.0)  # 10 s of audio at half the written tempo
    assert tm.audio_to_midi(2.0) == pytest.approx(5.0)
    assert tm.midi_to_audio(8.0) == pytest.approx(8.0)
    assert np.isnan(tm.audio_to_midi(10.5))  # no truth past the rendition


def test_warp_stops_at_the_end_of_the_piece():
    tm = warp_from_ratio(np.full(2001, 1.25), start_midi_s=10.0, end_midi_s=20.0)
    assert tm.midi_s[-1] == pytest.approx(20.0)
    assert tm.audio_s[-1] == pytest.approx(8.0)


def test_tempo_curve_is_seeded_smooth_and_bounded():
    a = tempo_curve(np.random.default_rng(3), 60.0)
    b = tempo_curve(np.random.default_rng(3), 60.0)
    np.testing.assert_array_equal(a, b)
    assert a.min() >= TEMPO_RATIO_MIN and a.max() <= TEMPO_RATIO_MAX
    assert a.max() / a.min() > 1.05  # there is rubato
    assert np.abs(np.diff(a)).max() < 0.01  # and it is smooth at 10 ms steps


def test_time_map_round_trip_and_validation(tmp_path):
    tm = TimeMap(np.array([0.0, 1.0, 3.0]), np.array([2.0, 3.0, 3.5]))
    tm.save(tmp_path / "t.json", note="x")
    back = TimeMap.load(tmp_path / "t.json")
    np.testing.assert_allclose(back.audio_to_midi([0.5, 2.0]), [2.5, 3.25])
    with pytest.raises(ValueError, match="strictly increasing"):
        TimeMap(np.array([0.0, 1.0, 1.0]), np.array([0.0, 1.0, 2.0]))


def test_a_held_span_takes_longer_and_the_music_after_it_keeps_its_tempo():
    tm = warp_from_ratio(np.full(1001, 1.0), 0.0)  # 10 s at the written tempo
    held = hold_spans(tm, [(2.0, 3.0, 2.5), (20.0, 21.0, 2.0)])  # the second lies beyond the excerpt
    assert held.midi_to_audio(2.0) == pytest.approx(2.0)
    assert held.midi_to_audio(3.0) == pytest.approx(4.5)     # one written second held 2.5 s
    assert held.midi_to_audio(2.5) == pytest.approx(3.25)    # evenly through the hold
    assert held.midi_to_audio(8.0) - held.midi_to_audio(7.0) == pytest.approx(1.0)
    assert held.audio_s[-1] == pytest.approx(11.5)
    with pytest.raises(ValueError):
        hold_spans(tm, [(2.0, 3.0, 0.0)])


def test_a_held_span_ending_a_hair_from_a_point_of_the_map_saves_and_reads_back(tmp_path):
    from benchmarks.warp import load_truth

    tm = TimeMap(np.array([0.0, 1.0, 2.0 + 2e-6, 4.0]), np.array([0.0, 1.0, 2.0 + 2e-6, 4.0]))
    held = hold_spans(tm, [(1.0, 2.0, 2.0)])  # its end 2 us before a point: the two would round to one
    assert held.midi_to_audio(2.0) == pytest.approx(3.0) and held.audio_s[-1] == pytest.approx(5.0, abs=1e-5)
    held.save(tmp_path / "t.truth.json")
    back = load_truth(tmp_path / "t.truth.json")
    assert back.midi_to_audio(2.0) == pytest.approx(3.0)
