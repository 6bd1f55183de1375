"""A lock soon after the music starts takes the piece's beginning where the frames heard since cannot
tell it from the locked place (follower.start_prior)."""

from __future__ import annotations

import numpy as np
import pytest

from follower.aligner import FineAligner, FineConfig, score_templates
from follower.errors import ConfigError
from follower.features import FeatureConfig
from follower.start_prior import StartPrior

from conftest import have_fluidsynth, render, write_piece

FC = FeatureConfig()
FPS = FC.frame_rate_hz
CFG = FineConfig()
SECTION_S = 10.0


def _notes(*sections):
    """Sections of 10 s, each 20 three-note chords of 0.5 s, one after the other: (onset, end, pitch)."""
    onsets, pitches = [], []
    for k, chords in enumerate(sections):
        for i, chord in enumerate(chords):
            onsets += [k * SECTION_S + 0.5 * i] * 3
            pitches += list(chord)
    onsets = np.array(onsets)
    return onsets, onsets + 0.5, np.array(pitches)


def _templates(*sections) -> np.ndarray:
    return score_templates(*_notes(*sections), FC, CFG)


RNG = np.random.default_rng(7)
A, B = RNG.integers(48, 80, size=(20, 3)), RNG.integers(48, 80, size=(20, 3))
C = RNG.integers(48, 80, size=(20, 3))


def _frames(templates, score_s):
    """The audio frames of the score at ``score_s`` (one per frame): the templates themselves."""
    return templates[np.minimum((np.asarray(score_s) * FPS).astype(int), len(templates) - 1)]


def _start_prior(**kw) -> StartPrior:
    args = dict(start_prior_s=CFG.start_prior_s, pause_s=4.0, fps=FPS, margin=CFG.hold_margin,
                evidence=CFG.hold_evidence, leak_s=CFG.hold_leak_s)
    return StartPrior(**(args | kw))


def _heard(prior: StartPrior, frames, *, silence_before: int = 0) -> None:
    for _ in range(silence_before):
        prior.add(np.zeros(frames.shape[1], np.float32), False)
    for f in frames:
        prior.add(f, True)


def test_a_lock_on_the_repeat_of_the_opening_goes_to_the_beginning():
    t = _templates(A, A, B)
    aligner = FineAligner(t, FPS, CFG)
    prior = _start_prior()
    played = np.arange(int(3 * FPS)) / FPS                      # the first 3 s, from the first note
    _heard(prior, _frames(t, played), silence_before=10)
    start = prior.place(aligner, SECTION_S + played[-1], 0.0, 1.0, CFG.max_disagree_s)  # locked on the repeat
    assert start == pytest.approx(played[-1], abs=0.06)
    assert prior.place(aligner, played[-1] + 0.3, 0.0, 1.0, CFG.max_disagree_s) is None  # already there


def test_music_started_elsewhere_keeps_its_lock():
    t = _templates(A, A, B)
    aligner = FineAligner(t, FPS, CFG)
    prior = _start_prior()
    played = 2 * SECTION_S + 1.0 + np.arange(int(3 * FPS)) / FPS  # from 1 s into B
    _heard(prior, _frames(t, played), silence_before=10)
    assert prior.place(aligner, played[-1], 0.0, 1.0, CFG.max_disagree_s) is None  # B is not the opening


def test_a_lock_on_a_later_copy_goes_to_the_earliest_one():
    """Music started mid-piece at a passage written out twice (B A C A): a lock on the second A takes
    the first, unless only the beginning is weighed; a lock on the first stays."""
    notes = _notes(B, A, C, A)
    t = score_templates(*notes, FC, CFG)
    aligner = FineAligner(t, FPS, CFG)
    prior = _start_prior()
    played = SECTION_S + 2.0 + np.arange(int(3 * FPS)) / FPS   # 2 s into the first A, for 3 s
    _heard(prior, _frames(t, played), silence_before=10)
    second = played[-1] + 2 * SECTION_S
    assert prior.place(aligner, second, 0.0, 1.0, CFG.max_disagree_s, notes=notes) == pytest.approx(played[-1],
                                                                                                    abs=0.06)
    assert prior.place(aligner, second, 0.0, 1.0, CFG.max_disagree_s) is None  # B, the opening, is other music
    assert prior.place(aligner, played[-1], 0.0, 1.0, CFG.max_disagree_s, notes=notes) is None
    # C heard: no earlier copy; the lock stays
    prior = _start_prior()
    played = 2 * SECTION_S + 2.0 + np.arange(int(3 * FPS)) / FPS
    _heard(prior, _frames(t, played), silence_before=10)
    assert prior.place(aligner, played[-1], 0.0, 1.0, CFG.max_disagree_s, notes=notes) is None


def test_a_copy_whose_frames_differ_is_not_taken():
    """The notes test finds an earlier statement, but the frames heard prove the locked place (its notes
    changed after the heard stretch the notes compare: a varied repeat): the lock stays."""
    from follower.same_notes import copies_before

    varied = A.copy()
    varied[:2] = C[:2]                                           # the first second of the earlier statement differs
    notes = _notes(B, varied, C, A)
    t = score_templates(*notes, FC, CFG)
    aligner = FineAligner(t, FPS, CFG)
    prior = _start_prior()
    played = 3 * SECTION_S + np.arange(int(6 * FPS)) / FPS    # the second A from its start, 6 s
    _heard(prior, _frames(t, played), silence_before=10)
    heard_s = len(played) / FPS
    assert copies_before(notes, played[-1], 1.0, heard_s, earliest_s=heard_s + 2.0, latest_s=played[-1] - 2.0)
    assert prior.place(aligner, played[-1], 0.0, 1.0, CFG.max_disagree_s, notes=notes) is None


def test_only_a_lock_soon_after_the_music_started_is_weighed():
    t = _templates(A, A, B)
    aligner = FineAligner(t, FPS, CFG)
    prior = _start_prior(start_prior_s=2.0)
    played = np.arange(int(3 * FPS)) / FPS
    _heard(prior, _frames(t, played))
    assert prior.heard == len(played)
    assert prior.place(aligner, SECTION_S + played[-1], 0.0, 1.0, CFG.max_disagree_s) is None  # 3 s > 2 s
    # a pause longer than pause_s: the music starts again, and the count with it
    _heard(prior, _frames(t, played[:20]), silence_before=int(4.0 * FPS))
    assert prior.heard == 20
    assert prior.place(aligner, SECTION_S + played[19], 0.0, 1.0, CFG.max_disagree_s) == pytest.approx(played[19],
                                                                                                          abs=0.06)
    assert not _start_prior(start_prior_s=0.0).enabled


def test_bad_settings_are_one_clear_error():
    with pytest.raises(ConfigError, match="start_prior_s"):
        FineConfig(start_prior_s=-1.0)
    assert FineConfig.from_dict(FineConfig(start_prior_s=3.0).to_dict()).start_prior_s == 3.0


@pytest.mark.skipif(not have_fluidsynth(), reason="FluidSynth or the TimGM6mb soundfont is absent")
def test_a_rendered_piece_played_from_its_first_note_is_followed_at_its_beginning(chroma_bundle, tmp_path):
    """A piece whose first 6 s come twice, rendered from its first note: a lock on the repeat is moved
    to the beginning, and the whole rendition is followed where it is."""
    from follower.bundle import load_bundle
    from follower.engine import FOLLOWING, Engine
    from follower.index import build_index

    rng = np.random.default_rng(5)
    opening, melody = rng.integers(0, 7, 12), rng.integers(0, 3, 12)
    rest, rest_melody = rng.integers(0, 7, 16), rng.integers(0, 3, 16)
    corpus = tmp_path / "corpus"
    write_piece(corpus / "twice.mid", seed=1, roots=np.concatenate([opening, opening, rest]),
                melody=np.concatenate([melody, melody, rest_melody]))
    for i in range(4):
        write_piece(corpus / f"other{i}.mid", seed=200 + i)
    bundle = load_bundle(chroma_bundle)
    index = build_index([corpus], bundle, hop_frames=2, progress=False)
    piece = list(index.piece_ids).index("twice")
    audio = np.concatenate([np.zeros(11025, np.float32), render(corpus / "twice.mid")])  # 0.5 s of silence first

    # a lock on the repeat (6 s later) 3 s into the music goes to where the music is
    engine = Engine(bundle, index, input_rate_hz=22050)
    engine.push(audio[: 11025 + 3 * 22050])
    heard_s = 3.0
    centre_s = heard_s - engine.lag_s                           # the window centre, in the score (tempo 1)
    engine._lock(piece, 6.0 + centre_s, 1.0)
    assert engine.tracker.position_s == pytest.approx(centre_s, abs=0.3)
    engine.reset()
    engine._lock(piece, 6.0 + centre_s, 1.0)                   # no music heard: nothing to weigh
    assert engine.tracker.position_s == pytest.approx(6.0 + centre_s)

    # the whole rendition, through the engine's own decisions
    engine = Engine(bundle, index, input_rate_hz=22050)
    ups = []
    for s in range(0, len(audio), 1024):
        ups += engine.push(audio[s:s + 1024])
    on = [u for u in ups if u.state == FOLLOWING and u.piece == "twice"]
    assert on, "the piece should be followed"
    err = np.array([abs(u.position_s - max(u.t - 0.5, 0.0)) for u in on])
    assert np.mean(err <= 0.5) >= 0.9, np.percentile(err, [50, 90])
