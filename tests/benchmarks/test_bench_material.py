"""Test material: time-warped fluidsynth renders, score cuts, and the Bach10 truth."""


import numpy as np
import pytest


from benchmarks.bach10 import chord_alignment
from benchmarks.midi_crop import crop_midi
from benchmarks.paths import HELD_OUT_SOUNDFONT
from benchmarks.render import excerpt_events, put_in_room, read_events, synthesize
from benchmarks.warp import TimeMap, warp_from_ratio
from follower.midi import load_midi
from training.paths import data_root

RATE = 22050


def write_midi(path, notes, *, bpm=120, tracks=1):
    """notes: (start_beats, length_beats, pitch, track) at ``bpm``; 480 ticks per beat."""
    import mido

    mid = mido.MidiFile(ticks_per_beat=480)
    for k in range(tracks):
        events = []
        if k == 0:
            events.append((0, mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(bpm))))
        for start, length, pitch, track in notes:
            if track == k:
                events.append((int(start * 480), mido.Message("note_on", note=pitch, velocity=90, channel=k)))
                events.append((int((start + length) * 480), mido.Message("note_off", note=pitch, channel=k)))
        events.sort(key=lambda e: (e[0], e[1].type == "note_on"))
        track_msgs, last = mido.MidiTrack(), 0
        for tick, msg in events:
            track_msgs.append(msg.copy(time=tick - last))
            last = tick
        mid.tracks.append(track_msgs)
    mid.save(str(path))
    return path


def rms(x, t0, t1):
    return float(np.sqrt(np.mean(x[int(t0 * RATE):int(t1 * RATE)] ** 2)))


@pytest.mark.skipif(not HELD_OUT_SOUNDFONT.exists(), reason=f"{HELD_OUT_SOUNDFONT} missing (timgm6mb-soundfont)")
def test_render_places_notes_where_the_time_map_says(tmp_path):
    pytest.importorskip("fluidsynth", reason="pyfluidsynth not installed")
    # 120 bpm: A4 at MIDI 1.0-1.5 s, E5 at 2.0-2.5 s; render from MIDI 0.5 s at half speed
    midi = write_midi(tmp_path / "two.mid", [(2, 1, 69, 0), (4, 1, 76, 0)])
    events, n_voices = read_events(midi)
    assert n_voices == 1 and [e.time_s for e in events if e.kind == "on"] == [1.0, 2.0]
    tm = warp_from_ratio(np.full(501, 0.5), start_midi_s=0.5)  # 5 s of audio: MIDI 0.5..3.0
    assert tm.midi_to_audio(1.0) == pytest.approx(1.0) and tm.midi_to_audio(2.0) == pytest.approx(3.0)
    audio = synthesize(excerpt_events(events, tm), [73], duration_s=5.0, sample_rate_hz=RATE,
                       soundfont=HELD_OUT_SOUNDFONT, rng=np.random.default_rng(0))
    assert len(audio) == 5 * RATE
    assert rms(audio, 0.0, 0.95) < 1e-4 < rms(audio, 1.05, 1.5)  # silent until the first note, at audio 1.0 s
    assert rms(audio, 2.6, 2.95) < 0.2 * rms(audio, 1.05, 1.5)  # it ended (MIDI 1.5 s = audio 2.0 s) and decayed
    segment = audio[int(3.1 * RATE):int(3.6 * RATE)]
    spectrum = np.abs(np.fft.rfft(segment * np.hanning(len(segment))))
    peak_hz = np.argmax(spectrum) * RATE / len(segment)
    assert peak_hz == pytest.approx(659.3, rel=0.03)  # E5 sounds from audio 3.0 s


def test_room_sets_the_noise_level():
    rng = np.random.default_rng(1)
    dry = np.sin(2 * np.pi * 440 * np.arange(RATE * 2) / RATE).astype(np.float32)
    wet = put_in_room(dry, rng, sample_rate_hz=RATE, rt60_s=0.5, direct_to_reverb_db=6.0, snr_db=20.0)
    assert np.abs(wet).max() == pytest.approx(0.9)
    # energy away from 440 Hz is the added noise: about 20 dB below the tone
    spec = np.abs(np.fft.rfft(wet)) ** 2
    f = np.fft.rfftfreq(len(wet), 1 / RATE)
    tone = spec[np.abs(f - 440) < 20].sum()
    assert 12 < 10 * np.log10(tone / spec[np.abs(f - 440) >= 20].sum()) < 28


def test_crop_midi_starts_the_score_at_the_cut(tmp_path):
    midi = write_midi(tmp_path / "three.mid", [(0, 1, 60, 0), (1, 2, 62, 0), (3, 1, 64, 0), (5, 1, 65, 0)])
    offset = crop_midi(midi, 0.75, tmp_path / "cut.mid", end_s=2.0)  # 0.75 s = beat 1.5
    assert offset == pytest.approx(0.75)
    cut = load_midi(tmp_path / "cut.mid")
    # D (began before the cut) is dropped; E at beat 3 -> 0.75 s after the cut; F starts after end_s
    assert cut.notes["pitch"].tolist() == [64]
    assert cut.notes["start_s"][0] == pytest.approx(0.75)


def test_chord_alignment_maps_across_a_held_fermata(tmp_path):
    chords = [(b, 1, p, 0) for b, p in enumerate([60, 62, 64, 65, 67, 69])] + \
             [(b, 1, p - 12, 1) for b, p in enumerate([60, 59, 57, 55, 53, 52])]
    plain = write_midi(tmp_path / "plain.mid", chords, bpm=120, tracks=2)
    # the same music slower (90 bpm) with beat 2's chord held for 3 beats (a written-out fermata)
    held = [(b + (2 if b > 2 else 0), 3 if b == 2 else 1, p, t) for b, _, p, t in chords]
    fermata = write_midi(tmp_path / "fermata.mid", held, bpm=90, tracks=2)
    a_s, b_s, matched = chord_alignment(load_midi(fermata), load_midi(plain))
    assert matched == 1.0
    np.testing.assert_allclose(b_s, np.arange(6) * 0.5)
    np.testing.assert_allclose(a_s, np.array([0, 1, 2, 5, 6, 7]) * 60 / 90, atol=1e-4)  # tempo in whole µs


@pytest.mark.skipif(not (data_root() / "real" / "bach10").is_dir(), reason="../shared/data/real/bach10 absent")
def test_bach10_truth_covers_each_recording():
    from benchmarks.bach10 import BACH10_PIECES, bach10_truth

    root = data_root()
    for name, pid in BACH10_PIECES.items():
        tm, matched = bach10_truth(root / "real" / "bach10" / name, root / "midi" / "bach-chorales" / f"{pid}.mid")
        assert matched > 0.85, name  # the recording really is that chorale
        tempo = np.diff(tm.midi_s) / np.diff(tm.audio_s)
        assert 0.6 < np.median(tempo) < 1.0, name  # played a little slower than the written 120 bpm
        assert isinstance(tm, TimeMap) and tm.audio_s[-1] > 20.0


@pytest.mark.skipif(not HELD_OUT_SOUNDFONT.exists(), reason=f"{HELD_OUT_SOUNDFONT} missing (timgm6mb-soundfont)")
def test_a_jump_rendition_plays_its_two_segments_and_says_where_it_jumps(tmp_path):
    pytest.importorskip("fluidsynth", reason="pyfluidsynth not installed")
    import json

    import soundfile as sf

    from benchmarks.material import JUMP_TEMPO, render_jump_item
    from benchmarks.warp import JumpMap, load_truth

    # one note every beat (0.5 s) for 60 s, a new pitch each beat
    midi = write_midi(tmp_path / "scale.mid", [(b, 0.9, 48 + b % 36, 0) for b in range(120)])
    for seed in range(3):  # whatever kind of jump each seed draws
        audio, truth_path = tmp_path / f"j{seed}.flac", tmp_path / f"j{seed}.truth.json"
        duration_s = render_jump_item(midi, audio, truth_path, np.random.default_rng([5, seed]), programs=[0],
                                      instruments="piano")
        truth, meta = load_truth(truth_path), json.loads(truth_path.read_text())
        assert isinstance(truth, JumpMap) and len(truth.jumps_s) == 1
        first, second = truth.segments
        assert second.midi_s[0] < first.midi_s[-1] - 1.0          # every kind jumps back
        assert meta["jump"] in ("repeat", "skip back", "restart")
        if meta["jump"] == "restart":
            assert second.audio_s[0] - first.audio_s[-1] >= 2.0    # with a pause before
        slopes = np.diff(first.midi_s) / np.diff(first.audio_s)
        assert JUMP_TEMPO[0] - 1e-6 <= slopes.min() and slopes.max() <= JUMP_TEMPO[1] + 1e-6
        signal, rate = sf.read(audio)
        assert len(signal) / rate == pytest.approx(duration_s, abs=0.05)
        assert truth.audio_to_midi(duration_s - 0.5) == pytest.approx(second.audio_to_midi(duration_s - 0.5))


@pytest.mark.parametrize("args, message", [
    (["--set", "test", "--seed", "8"], "only for --set tuning"),
    (["--set", "test", "--piano", "2"], "only for --set tuning"),
    (["--set", "tuning", "--piano", "-1"], "--piano"),
    (["--set", "test", "--from-start"], "only for --set tuning"),
    (["--set", "test", "--outside", "4"], "only for --set tuning"),
    (["--set", "tuning", "--outside", "-2"], "--outside"),
    (["--set", "test", "--tempo", "0.35,0.5"], "only for --set tuning"),
    (["--set", "tuning", "--tempo", "0.5"], "--tempo"),
    (["--set", "tuning", "--tempo", "0.6,0.4"], "--tempo"),
    (["--set", "test", "--fermatas"], "only for --set tuning"),
    (["--set", "test", "--microphone"], "only for --set tuning"),
])
def test_tuning_options_refuse_what_they_cannot_do_in_one_line(args, message, tmp_path, capsys):
    from benchmarks.material import main

    assert main(args + ["--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert not any(tmp_path.iterdir())  # nothing rendered


def test_other_tuning_seeds_draw_validation_pieces_only():
    import csv

    from benchmarks import paths
    from benchmarks.material import chorale_selection, piano_validation

    if not (paths.chorale_dir() / "splits.csv").is_file():
        pytest.skip("the chorale corpus is absent")
    split = {r["file"]: r["split"] for r in csv.DictReader(open(paths.chorale_dir() / "splits.csv"))}
    assert {split[m.name] for m, _ in chorale_selection("valid", 12, 8)} == {"valid"}
    if paths.piano_dir().is_dir():
        from training.data.corpus import midi_corpus

        valid = {str(p.source) for p in midi_corpus(paths.piano_dir()) if p.split == "valid"}
        picked = piano_validation(3, 8)
        assert picked and {str(m) for m in picked} <= valid


@pytest.mark.skipif(not HELD_OUT_SOUNDFONT.exists(), reason=f"{HELD_OUT_SOUNDFONT} missing (timgm6mb-soundfont)")
def test_tuning_excerpts_from_the_start_begin_at_the_first_note(tmp_path):
    pytest.importorskip("fluidsynth", reason="pyfluidsynth not installed")
    from benchmarks.material import render_item
    from benchmarks.warp import load_truth

    midi = write_midi(tmp_path / "scale.mid", [(b, 0.9, 48 + b % 36, 0) for b in range(80)])
    truth_path = tmp_path / "t.truth.json"
    render_item(midi, tmp_path / "t.flac", truth_path, np.random.default_rng(3), programs=[0], instruments="piano",
                start_frac=(0.0, 0.0), length_s=(10.0, 10.0), base_tempo=(0.8, 1.0))
    assert load_truth(truth_path).audio_to_midi(0.0) == pytest.approx(0.0, abs=1e-6)


@pytest.mark.skipif(not HELD_OUT_SOUNDFONT.exists(), reason=f"{HELD_OUT_SOUNDFONT} missing (timgm6mb-soundfont)")
def test_tuning_excerpts_at_a_far_tempo_stay_within_it(tmp_path):
    pytest.importorskip("fluidsynth", reason="pyfluidsynth not installed")
    import json

    from benchmarks.material import render_item

    midi = write_midi(tmp_path / "scale.mid", [(b, 0.9, 48 + b % 36, 0) for b in range(80)])
    truth_path = tmp_path / "t.truth.json"
    render_item(midi, tmp_path / "t.flac", truth_path, np.random.default_rng(3), programs=[0], instruments="piano",
                start_frac=(0.1, 0.2), length_s=(12.0, 12.0), base_tempo=(0.35, 0.5), tempo_clip=(0.35, 0.5))
    meta = json.loads(truth_path.read_text())
    assert 0.35 - 1e-6 <= meta["tempo_ratio_min"] <= meta["tempo_ratio_max"] <= 0.5 + 1e-6


def test_fermata_spans_are_the_scores_fermatas_on_the_midi_timeline():
    """The music21 score's fermatas land on onsets of the corpus MIDI, each held 1.5-3 times."""
    pytest.importorskip("music21", reason="music21 not installed")
    from benchmarks import paths
    from benchmarks.material import FERMATA_HOLD, fermata_spans

    midi = paths.chorale_dir() / "bach_bwv10.7.mid"
    if not midi.is_file():
        pytest.skip("the chorale corpus is absent")
    spans = fermata_spans(midi, np.random.default_rng(0))
    onsets = np.unique(load_midi(midi).notes["start_s"])
    assert len(spans) >= 3
    for start_s, end_s, factor in spans:
        assert np.abs(onsets - start_s).min() < 1e-6 and end_s > start_s
        assert FERMATA_HOLD[0] <= factor <= FERMATA_HOLD[1]


def test_outside_tuning_tunes_are_validation_tunes_the_outside_study_never_plays():
    from benchmarks import paths
    from benchmarks.material import tune_validation

    tunes = paths.data_root() / "midi" / "nottingham"
    if not tunes.is_dir() or not (paths.chorale_dir() / "splits.csv").is_file():
        pytest.skip("the Nottingham or chorale corpus is absent")
    from studies.outside_follow import default_outside_tunes
    from training.data.corpus import midi_corpus

    valid = {str(p.source) for p in midi_corpus(tunes) if p.split == "valid"}
    picked = tune_validation(24, 8)
    assert len(picked) == 24 and {str(m) for m in picked} <= valid
    assert not {m.name for m in picked} & {m.name for m in default_outside_tunes()}


def test_a_small_microphone_loses_the_bass_and_keeps_the_level():
    from benchmarks.material import MIC_HIGHPASS_HZ, through_microphone

    sr = 22050
    t = np.arange(2 * sr) / sr
    low, high = np.sin(2 * np.pi * 55.0 * t), np.sin(2 * np.pi * 1760.0 * t)
    heard, mic = through_microphone(low + high, np.random.default_rng(3), sr)
    assert MIC_HIGHPASS_HZ[0] <= mic["mic_highpass_hz"] <= MIC_HIGHPASS_HZ[1]
    spectrum = np.abs(np.fft.rfft(heard))
    at = lambda hz: spectrum[int(round(hz * len(t) / sr))]  # noqa: E731
    assert at(55.0) < 0.5 * at(1760.0)  # A1 down by 6 dB or more against A6 (equal before; the EQ adds its own)
    assert np.sqrt(np.mean(heard ** 2)) == pytest.approx(np.sqrt(np.mean((low + high) ** 2)), rel=1e-3)
    again, _ = through_microphone(low + high, np.random.default_rng(3), sr)
    np.testing.assert_array_equal(heard, again)  # seeded: the same render every time
