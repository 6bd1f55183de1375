"""The frame-level fine aligner: templates from notes, following rendered audio, engine wiring."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from follower.aligner import FineAligner, FineConfig, pitch_templates, score_templates
from follower.features import FeatureConfig, spectrogram
from follower.midi import load_midi

FC = FeatureConfig()


def test_pitch_templates_share_partials_where_the_pitches_do():
    pt = pitch_templates(FC, FineConfig())
    assert (pt >= 0).all() and pt[21:109].sum(axis=1).min() > 0
    lit = {p: set(np.flatnonzero(pt[p]).tolist()) for p in (60, 62, 72)}
    # an octave up starts on the second partial's bands; a whole tone up has its own fundamental (16 bands per octave blur semitones)
    assert set(sorted(lit[72])[:2]) <= lit[60]
    assert not set(sorted(lit[62])[:2]) & lit[60]
    # the loudest band is the fundamental's: an octave up moves it up (bands are ordered by frequency)
    assert pt[69].argmax() < pt[81].argmax() < pt[93].argmax()


def test_score_templates_are_unit_rows_and_notes_fade_after_their_end():
    cfg = FineConfig(release_s=0.2)
    t = score_templates([0.0, 1.0], [1.0, 2.0], [60, 67], FC, cfg)
    fps = FC.frame_rate_hz
    assert t.shape[1] == FC.n_bins
    norms = np.linalg.norm(t, axis=1)
    assert np.allclose(norms[norms > 0], 1.0, atol=1e-5)
    c_only, g_only = t[int(0.5 * fps)], t[int(1.9 * fps)]
    just_after = t[int(1.0 * fps) + 1]  # G has started, C still rings
    assert np.dot(just_after, c_only) > np.dot(g_only, c_only) + 0.05
    no_release = score_templates([0.0, 1.0], [1.0, 2.0], [60, 67], FC, dataclasses.replace(cfg, release_s=1e-6))
    assert np.dot(no_release[int(1.0 * fps) + 1], c_only) < np.dot(just_after, c_only)


def test_empty_frames_are_zero_not_nan():
    t = score_templates([1.0], [1.5], [60], FC, FineConfig())
    assert np.isfinite(t).all() and not t[0].any()


def _truth_score_s(rendered, audio_s):
    return rendered["start_s"] + rendered["tempo"] * audio_s


def test_the_aligner_corrects_an_offset_anchor_on_rendered_audio(rendered, corpus):
    """Anchored 0.6 s off (as the embedding path may be), it finds the notes: median error under 0.1 s."""
    import soundfile as sf

    audio, rate = sf.read(rendered["path"], dtype="float32", always_2d=True)
    spec = spectrogram(audio.mean(axis=1), rate, FC)
    score = load_midi(corpus / "piece3.mid").pitched
    cfg = FineConfig()
    al = FineAligner(score_templates(score["start_s"], score["end_s"], score["pitch"], FC, cfg), FC.frame_rate_hz, cfg)
    fps, tempo = FC.frame_rate_hz, rendered["tempo"]
    centre_s = (np.arange(len(spec)) + 1) / fps - FC.frame_size_samples / 2 / FC.sample_rate_hz
    loud = spec.max(axis=1) >= 0.05
    al.reset(_truth_score_s(rendered, centre_s[0]) + 0.6)
    err = []
    inside = _truth_score_s(rendered, centre_s) < score["end_s"].max() - 0.5  # not the render's ringing tail
    for i in np.flatnonzero(inside):
        anchor = _truth_score_s(rendered, centre_s[i]) + 0.6
        pos = al.step(spec[i:i + 1], loud[i:i + 1], np.array([anchor]), tempo)
        err.append(pos - _truth_score_s(rendered, centre_s[i]))
    err = np.abs(np.array(err[int(3 * fps):]))  # after three seconds
    assert np.median(err) <= 0.1 and np.mean(err <= 0.2) >= 0.95, np.percentile(err, [50, 90])


def test_a_silent_frame_holds_the_position():
    cfg = FineConfig()
    t = score_templates(np.arange(10.0), np.arange(10.0) + 1, 60 + np.arange(10), FC, cfg)
    al = FineAligner(t, FC.frame_rate_hz, cfg)
    al.reset(3.0)
    before = al.step(np.zeros((1, FC.n_bins), np.float32), np.array([False]), np.array([3.0]), 1.0)
    after = al.step(np.zeros((5, FC.n_bins), np.float32), np.zeros(5, bool), np.full(5, 3.0), 1.0)
    assert after == pytest.approx(before)


def _voice_led_chords():
    """Eight one-second chords of three notes, each sharing two with the next (as voice leading
    does: only one band differs): their onsets (one per note) and 50 ms templates."""
    chords = [(48, 60, 64), (48, 60, 65), (48, 62, 65), (47, 62, 65), (47, 62, 67), (48, 64, 67), (48, 60, 67), (48, 60, 64)]
    onsets = np.repeat(np.arange(8.0), 3)
    return onsets, score_templates(onsets, onsets + 1.0, np.array(chords).ravel(), FC, FineConfig())


def test_with_onset_wait_a_held_chord_keeps_the_aligner_before_the_next_onset():
    """A chord held three times as long as written: without the wait the belief drifts on into the
    next chord at the tempo; with it, it waits at the chord's end until the next is heard."""
    onsets, t = _voice_led_chords()
    fps = int(FC.frame_rate_hz)
    noise = np.random.default_rng(0).uniform(0, 0.08, (7 * fps, t.shape[1])).astype(np.float32)
    # the audio: chords 0-1 as written, chord 2 held for 3 s, then chord 3 (the templates stand for the audio)
    audio = noise + np.concatenate([np.repeat(t[int((c + 0.5) * fps)][None], n * fps, 0)
                                    for c, n in ((0, 1), (1, 1), (2, 3), (3, 2))])
    positions = {}
    # a soft emission in plain cosine, so that the tempo alone would carry the belief on (the centred
    # emission holds this chord by itself: the next test)
    for wait in (0.0, 0.5):
        cfg = FineConfig(onset_wait=wait, sharpness=2.0, centre_emission=False)
        al = FineAligner(t, FC.frame_rate_hz, cfg, onsets_s=onsets)
        al.reset(0.0)
        pos = [al.step(audio[i:i + 1], np.array([True]), np.array([al.position_s]), 1.0) for i in range(len(audio))]
        positions[wait] = np.array(pos)
    in_hold = slice(int(3.5 * fps), 5 * fps)   # the last 1.5 s of the held chord
    assert positions[0.0][in_hold].max() > 3.05   # ran on into chord 3 (onset 3.0 s) before it sounded
    assert 2.9 < positions[0.5][in_hold].min() <= positions[0.5][in_hold].max() < 3.0  # waited at its onset
    assert positions[0.5][-1] > 3.9                # and moves on once chord 3 is heard
    # played as written, each chord's onset is heard when the tempo says: at most a frame's lag
    steady = noise[:6 * fps] + np.concatenate([np.repeat(t[int((c + 0.5) * fps)][None], fps, 0) for c in range(6)])
    paths = []
    for wait in (0.0, 0.5):
        cfg = FineConfig(onset_wait=wait, sharpness=2.0, centre_emission=False)
        al = FineAligner(t, FC.frame_rate_hz, cfg, onsets_s=onsets)
        al.reset(0.0)
        paths.append([al.step(steady[i:i + 1], np.array([True]), np.array([al.position_s]), 1.0)
                      for i in range(len(steady))])
    lag = np.abs(np.subtract(*paths))[int(1.5 * fps):]  # (after the fresh start's spread)
    assert np.median(lag) < 0.06 and lag[-2 * fps:].max() < 0.08
    with pytest.raises(Exception, match="onset_wait"):
        FineConfig(onset_wait=1.0)



def test_a_floor_under_the_audio_does_not_blur_neighbouring_chords_in_the_centred_emission():
    """A flat floor under every band (a room's reverberation, noise) adds the same to the audio's
    cosine with every template, so chords that share two of three notes become alike: in plain
    cosine the belief drifts into the next chord while the last is still held. Compared with
    each one's mean across the bands taken off, the held chord is still told from the next."""
    onsets, t = _voice_led_chords()
    fps = int(FC.frame_rate_hz)
    rng = np.random.default_rng(0)
    # chords 0-1 as written, chord 2 held for 3 s, then chord 3 (the templates stand for the audio)
    chords_heard = np.concatenate([np.repeat(t[int((c + 0.5) * fps)][None], n * fps, 0)
                                   for c, n in ((0, 1), (1, 1), (2, 3), (3, 2))])
    in_hold = slice(int(3.5 * fps), 5 * fps)  # the last 1.5 s of the held chord

    def run(floor, centre):
        audio = chords_heard + floor + rng.uniform(0, 0.08, chords_heard.shape).astype(np.float32)
        cfg = FineConfig(onset_wait=0.0, sharpness=9.0, centre_emission=centre)  # no wait: the emission alone
        al = FineAligner(t, FC.frame_rate_hz, cfg, onsets_s=onsets)
        al.reset(0.0)
        return np.array([al.step(audio[i:i + 1], np.array([True]), np.array([al.position_s]), 1.0)
                         for i in range(len(audio))])

    for centre in (False, True):  # without a floor both hold chord 2 until chord 3 sounds
        assert run(0.0, centre)[in_hold].max() < 3.0
    plain, centred = run(0.2, False), run(0.2, True)
    assert plain[in_hold].max() > 3.05            # plain cosine: into chord 3 (onset 3.0 s) before it sounds
    assert 2.9 < centred[in_hold].min() <= centred[in_hold].max() < 3.0
    assert centred[-1] > 3.9                      # and on into chord 3 once it is heard
    # the comparisons that decide disputes and the start (FineAligner.match) stay plain cosines
    al = FineAligner(t, FC.frame_rate_hz, FineConfig(centre_emission=True))
    frame = t[int(2.5 * fps)] + 0.2
    near = t[int(2.5 * fps) - 10:int(2.5 * fps) + 11]  # match_window_s 0.5 on either side
    assert al.match(frame, 2.5) == pytest.approx(float((near @ (frame / np.linalg.norm(frame))).max()), rel=1e-6)

def test_the_report_eases_into_the_next_onset_and_never_runs_ahead_of_the_aligner():
    """A chord held three times as long as written: the aligner reaches its end at the tempo and
    waits there, the report eases towards it instead; the next chord, once heard, moves the report
    on with the aligner. Played as written, the report trails the aligner by under a third of a chord."""
    onsets, t = _voice_led_chords()
    fps = int(FC.frame_rate_hz)
    noise = np.random.default_rng(0).uniform(0, 0.08, (7 * fps, t.shape[1])).astype(np.float32)
    held = noise + np.concatenate([np.repeat(t[int((c + 0.5) * fps)][None], n * fps, 0)
                                   for c, n in ((0, 1), (1, 1), (2, 3), (3, 2))])
    steady = noise[:6 * fps] + np.concatenate([np.repeat(t[int((c + 0.5) * fps)][None], fps, 0) for c in range(6)])

    def run(audio, ease_time):
        al = FineAligner(t, FC.frame_rate_hz, FineConfig(ease_time=ease_time, ease_from=0.7), onsets_s=onsets)
        al.reset(0.0)
        own, reported = [], []
        for i in range(0, len(audio), 2):  # two frames per step, as the engine's updates bring
            own.append(al.step(audio[i:i + 2], np.ones(2, bool), np.full(2, al.position_s), 1.0))
            reported.append(al.reported_s)
        return np.array(own), np.array(reported)

    own, reported = run(held, 0.5)
    assert (reported <= own + 1e-9).all()
    plain_own, plain_reported = run(held, 0.0)
    assert np.array_equal(plain_own, own) and np.array_equal(plain_reported, own)  # off: the aligner's own
    hold = slice(int(2.5 * fps) // 2, 5 * fps // 2)  # chord 2, written 2-3 s, sounds from 2 s to 5 s
    past = slice(int(2.9 * fps) // 2, int(3.3 * fps) // 2)  # its written end comes and goes at the tempo
    assert own[past].min() > 2.8                             # the aligner reaches the chord's end and waits
    assert (own - reported)[past].min() > 0.04                # ... and the report trails it (0.05-0.13 s here)
    assert np.all(np.diff(reported[past]) > 0) and reported[hold].max() < 3.0  # easing on, never over the onset
    assert reported[-1] == pytest.approx(own[-1]) and reported[-1] > 3.9  # chord 3 heard: with the aligner again
    own, reported = run(steady, 0.5)
    trail = (own - reported)[fps:]
    assert (trail >= -1e-9).all() and trail.max() < 0.25 and np.median(trail) < 0.05
    with pytest.raises(Exception, match="ease_from"):
        FineConfig(ease_from=1.5)

def _replay(bundle_dir, index, path, fine):
    import soundfile as sf

    from follower.bundle import load_bundle
    from follower.engine import Engine, EngineConfig

    audio, rate = sf.read(path, dtype="float32", always_2d=True)
    engine = Engine(load_bundle(bundle_dir, threads=1), index, input_rate_hz=rate, config=EngineConfig(fine=fine))
    out = []
    for s in range(0, len(audio), 4096):
        out += engine.push(audio[s:s + 4096], last=s + 4096 >= len(audio))
    return out


def test_the_engine_reports_the_fine_position_and_it_is_sharper(chroma_bundle, corpus_index, rendered):
    from follower.index import load_index

    index = load_index(corpus_index)
    assert index.has_notes
    errors = {}
    for name, fine in (("fine", FineConfig()), ("coarse", None)):
        end_s = float(index.duration_s[list(index.piece_ids).index(rendered["piece"])]) - 0.5
        ups = [u for u in _replay(chroma_bundle, index, rendered["path"], fine)
               if u.state == "following" and u.piece == rendered["piece"] and _truth_score_s(rendered, u.t) < end_s]
        assert len(ups) > 100, name
        errors[name] = np.abs([u.position_s - _truth_score_s(rendered, u.t) for u in ups])
    share = {name: float(np.mean(e <= 0.1)) for name, e in errors.items()}
    assert share["fine"] >= 0.7 and share["fine"] > share["coarse"], share



def test_the_engine_reports_the_eased_position_and_decides_on_the_aligners_own(chroma_bundle, corpus_index, rendered):
    """Only the report eases: the same updates, states and pieces as without it, never a position
    further on, and behind it somewhere (the rendered piece has chords to ease into)."""
    from follower.index import load_index

    index = load_index(corpus_index)
    eased = _replay(chroma_bundle, index, rendered["path"], FineConfig())
    plain = _replay(chroma_bundle, index, rendered["path"], FineConfig(ease_time=0.0))
    assert [(u.t, u.state, u.piece) for u in eased] == [(u.t, u.state, u.piece) for u in plain]
    pairs = [(e.position_s, p.position_s) for e, p in zip(eased, plain) if e.state == "following"]
    assert len(pairs) > 100
    trail = np.array([p - e for e, p in pairs])
    assert trail.min() >= -1e-9 and (trail > 0.01).sum() > 10

def test_an_index_without_notes_still_loads_and_follows_coarsely(corpus_index, tmp_path):
    from follower.index import ARRAYS, load_index, save_index

    index = load_index(corpus_index)
    old = dataclasses.replace(index, note_start=None, note_onset_s=None, note_end_s=None, note_pitch=None)
    path = save_index(old, tmp_path / "old.index.npz")
    with np.load(path, allow_pickle=False) as z:
        assert set(z.files) == {"header", *ARRAYS}
    again = load_index(path)
    assert not again.has_notes and again.notes(0) is None
    assert load_index(corpus_index).notes(3)[0].min() >= 0.0
