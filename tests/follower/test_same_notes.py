"""The note test for copies (follower.same_notes): the same notes along two paths, re-quantised or not."""

import numpy as np
import pytest

from follower.same_notes import MIN_SPAN_S, SAME_NOTES, copies_before, overlap, same_notes, span_roll


def chorale(seed=0, chords=64, beat_s=0.5):
    """Four voices, one chord a beat: (onset_s, end_s, pitch) sorted by onset."""
    rng = np.random.default_rng(seed)
    onset = np.repeat(np.arange(chords) * beat_s, 4)
    pitch = np.concatenate([np.sort(rng.choice(np.arange(40, 80), 4, replace=False)) for _ in range(chords)])
    return onset.astype(np.float32), (onset + beat_s).astype(np.float32), pitch.astype(np.uint8)


def requantised(notes, step_s=0.125, offset_s=0.15, jitter_s=0.04, seed=1):
    """The same notes snapped to another grid (a roll set's 16ths), shifted on the timeline, a little jitter."""
    rng = np.random.default_rng(seed)
    onset, end, pitch = notes
    j = rng.uniform(-jitter_s, jitter_s, len(onset))
    on = np.round((onset + j) / step_s) * step_s + offset_s
    return on.astype(np.float32), (np.round((end + j) / step_s) * step_s + offset_s).astype(np.float32), pitch


def reharmonised(notes, seed=2):
    """The top voice kept, the three lower voices other pitches: another setting of one tune."""
    rng = np.random.default_rng(seed)
    onset, end, pitch = notes
    p = pitch.copy().reshape(-1, 4)
    p[:, :3] = np.sort(rng.choice(np.arange(40, 64), (len(p), 3)), axis=1)
    return onset, end, p.reshape(-1).astype(np.uint8)


def test_identical_notes_overlap_fully_and_transposed_ones_far_less():
    a = chorale()
    roll = span_roll(a, 20.0, 1.0, 8.0)
    assert overlap(roll, span_roll(a, 20.0, 1.0, 8.0)) == 1.0
    up = (a[0], a[1], (a[2] + 2).astype(np.uint8))
    assert overlap(roll, span_roll(up, 20.0, 1.0, 8.0)) < SAME_NOTES / 3  # chance coincidences only


def test_a_requantised_copy_is_the_same_notes_within_the_slack():
    a, b = chorale(), requantised(chorale())
    # the copy's path ends where its timeline has the same music: 0.15 s later
    assert same_notes(a, (20.0, 1.0), b, (20.15, 1.0), 8.0)
    # paths on a 0.4 s grid of cells land a cell off: only the slack finds the copy
    off = (20.4, 1.0)
    assert not same_notes(a, (20.0, 1.0), b, off, 8.0)
    assert same_notes(a, (20.0, 1.0), b, off, 8.0, slack_s=0.4)


def test_a_copy_at_another_tempo_is_compared_through_its_path():
    a = chorale()
    onset, end, pitch = a
    slow = (onset * 1.5, end * 1.5, pitch)  # written out at two thirds of the tempo
    assert same_notes(a, (20.0, 1.0), slow, (30.0, 1.5), 8.0)


def test_another_setting_of_the_tune_and_other_music_are_not_the_same_notes():
    a = chorale()
    for other in (reharmonised(a), chorale(seed=7)):
        assert not same_notes(a, (20.0, 1.0), other, (20.0, 1.0), 8.0, slack_s=0.4)


def test_short_alignments_and_silence_are_never_the_same_notes():
    a = chorale()
    assert not same_notes(a, (20.0, 1.0), a, (20.0, 1.0), MIN_SPAN_S - 0.5)
    assert same_notes(a, (20.0, 1.0), a, (20.0, 1.0), MIN_SPAN_S + 0.5)
    silent = (np.zeros(0, np.float32), np.zeros(0, np.float32), np.zeros(0, np.uint8))
    assert np.isnan(overlap(span_roll(silent, 20.0, 1.0, 8.0), span_roll(silent, 20.0, 1.0, 8.0)))
    assert not same_notes(silent, (20.0, 1.0), silent, (20.0, 1.0), 8.0)


@pytest.mark.parametrize("tempo", [0.5, 2.0])
def test_the_roll_spans_the_audio_at_the_path_tempo(tempo):
    a = chorale()
    roll = span_roll(a, 20.0, tempo, 4.0, steps=48)
    # the span covers tempo * 4 s of the piece, ending at 20 s: chords of 0.5 s each
    chords = len({int(np.floor((20.0 - tempo * 4.0 + (k + 0.5) * tempo * 4.0 / 48) / 0.5)) for k in range(48)})
    assert chords == int(tempo * 4.0 / 0.5)
    assert roll.any(axis=1).all() and roll.sum(axis=1).max() <= 4


def _sections(*parts, beat_s=0.5):
    """Sections of chorale() material one after the other (each 16 chords): a piece with copies."""
    onset, end, pitch = [], [], []
    for k, seed in enumerate(parts):
        on, off, p = chorale(seed, chords=16, beat_s=beat_s)
        onset.append(on + k * 16 * beat_s)
        end.append(off + k * 16 * beat_s)
        pitch.append(p)
    return np.concatenate(onset), np.concatenate(end), np.concatenate(pitch)


def test_copies_before_finds_each_earlier_statement_earliest_first():
    notes = _sections(1, 2, 1, 3, 1)                              # A B A C A, 8 s each
    at = 4 * 8.0 + 5.0                                            # 5 s into the last A
    found = copies_before(notes, at, 1.0, 3.0, earliest_s=3.0, latest_s=at - 2.0)
    assert found == pytest.approx([5.0, 2 * 8.0 + 5.0], abs=0.06)
    # another tempo: the path covers twice the written time; the copies are where the same notes are
    found = copies_before(notes, at, 1.5, 2.0, earliest_s=3.0, latest_s=at - 2.0)
    assert found == pytest.approx([5.0, 2 * 8.0 + 5.0], abs=0.06)
    # music heard at a place no other copy has (C) finds none, nor does a window with no room
    assert copies_before(notes, 3 * 8.0 + 5.0, 1.0, 3.0, earliest_s=3.0, latest_s=3 * 8.0) == []
    assert copies_before(notes, at, 1.0, 3.0, earliest_s=at, latest_s=at - 2.0) == []


def test_a_reharmonised_statement_is_not_a_copy():
    a = chorale(1, chords=16)
    b = reharmonised(a)
    notes = (np.concatenate([b[0], a[0] + 8.0]), np.concatenate([b[1], a[1] + 8.0]), np.concatenate([b[2], a[2]]))
    assert copies_before(notes, 8.0 + 5.0, 1.0, 3.0, earliest_s=3.0, latest_s=11.0) == []
