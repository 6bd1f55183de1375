"""The chroma + subsequence-DTW peer names the right piece of a small corpus built in code."""


import numpy as np
import pytest


from benchmarks.paths import HELD_OUT_SOUNDFONT

pytest.importorskip("librosa", reason="librosa (training extra) is needed for the chroma peer")
pytest.importorskip("fluidsynth", reason="pyfluidsynth not installed")
if not HELD_OUT_SOUNDFONT.exists():
    pytest.skip(f"{HELD_OUT_SOUNDFONT} missing (timgm6mb-soundfont)", allow_module_level=True)


def random_piece(path, rng):
    """40 beats at 120 bpm: a melody in quarters over a bass in half notes."""
    import mido

    mid = mido.MidiFile(ticks_per_beat=480)
    for voice, (low, length) in enumerate([(60, 1), (40, 2)]):
        track, last = mido.MidiTrack(), 0
        for k in range(40 // length):
            pitch = int(low + rng.integers(0, 15))
            on, off = k * length * 480, (k + 1) * length * 480
            track.append(mido.Message("note_on", note=pitch, velocity=90, channel=voice, time=on - last))
            track.append(mido.Message("note_off", note=pitch, channel=voice, time=off - on))
            last = off
        mid.tracks.append(track)
    mid.save(str(path))


def test_identifies_a_mid_piece_excerpt_and_its_position(tmp_path):
    import soundfile as sf

    from benchmarks.chroma_identifier import ChromaCorpus, identify_file
    from benchmarks.metrics import load_jsonl
    from benchmarks.render import excerpt_events, read_events, synthesize
    from benchmarks.warp import warp_from_ratio

    rng = np.random.default_rng(7)
    corpus_dir = tmp_path / "corpus"
    corpus_dir.mkdir()
    for k in range(4):
        random_piece(corpus_dir / f"piece_{k}.mid", rng)
    events, _ = read_events(corpus_dir / "piece_2.mid")
    tm = warp_from_ratio(np.full(801, 0.9), start_midi_s=6.0)  # 8 s of audio from MIDI 6 s, 10 % slower
    audio = synthesize(excerpt_events(events, tm), [73, 42], duration_s=8.0, sample_rate_hz=22050,
                       soundfont=HELD_OUT_SOUNDFONT, rng=rng)
    sf.write(tmp_path / "excerpt.flac", audio, 22050)

    corpus = ChromaCorpus.build(corpus_dir, tmp_path / "cache")
    assert corpus.pieces == [f"piece_{k}" for k in range(4)]
    stats = identify_file(corpus, tmp_path / "excerpt.flac", tmp_path / "log.jsonl")
    records = load_jsonl(tmp_path / "log.jsonl")
    assert stats["duration_s"] == pytest.approx(8.0)
    assert records[-1]["piece"] == "piece_2"
    assert abs(records[-1]["position_s"] - tm.audio_to_midi(min(records[-1]["t"], 8.0))) < 1.0
    # the cache is reused: same arrays back
    again = ChromaCorpus.build(corpus_dir, tmp_path / "cache")
    np.testing.assert_array_equal(again.chroma, corpus.chroma)
