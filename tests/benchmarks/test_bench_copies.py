"""benchmarks.copies: which misses land on another statement of the notes the truth plays."""

import numpy as np

from benchmarks.copies import count_misses, piano_roll, same_notes_within
from benchmarks.warp import JumpMap, TimeMap
from follower.midi import NOTE_DTYPE


def phrase(start_s, pitches, step_s=0.5):
    notes = np.zeros(len(pitches), NOTE_DTYPE)
    notes["start_s"] = start_s + step_s * np.arange(len(pitches))
    notes["end_s"] = notes["start_s"] + step_s
    notes["pitch"] = pitches
    return notes


RNG = np.random.default_rng(0)
A = RNG.integers(55, 80, 12)   # a 6 s phrase
B = RNG.integers(55, 80, 12)   # another
# A written out twice (0-6 s, 6-12 s), then B (12-18 s)
NOTES = np.concatenate([phrase(0.0, A), phrase(6.0, A), phrase(12.0, B)])
# a player starting at the second statement, at the written tempo: audio t -> MIDI 7 + t
TRUTH = TimeMap(np.array([0.0, 11.0]), np.array([7.0, 18.0]))


def rec(t, position_s, piece="a", state="following"):
    return {"t": t, "piece": piece, "position_s": position_s, "state": state}


def test_the_other_statement_is_a_copy_and_other_music_is_not():
    roll = piano_roll(NOTES)
    heard = np.linspace(8.0, 10.0, 48)     # MIDI instants the truth played: inside the second A
    assert same_notes_within(roll, heard, -6.0, 0.5)       # the first A
    assert same_notes_within(roll, heard, -5.6, 0.5)       # ... reported 0.4 s off it
    assert not same_notes_within(roll, heard, -5.3, 0.5)   # ... 0.7 s off it: a miss of the copy too
    assert not same_notes_within(roll, heard, 4.0, 0.5)    # B
    assert not same_notes_within(roll, heard, 0.8, 0.5)    # the truth's own notes are no copy


def test_count_misses_separates_copies_from_other_misses():
    records = [rec(0.5, 1.5),                     # 1 s off, heard 0.5 s: too little to call it a copy
               rec(3.0, 4.0),                     # the first A for the second: a copy
               rec(3.5, 10.7),                    # 0.2 s off: a hit
               rec(4.0, 14.0),                    # B: a miss
               rec(4.5, 5.5, state="lost"),       # not following: not counted
               rec(5.0, 6.0, piece="b")]          # another piece: not counted
    m = count_misses(records, "a", TRUTH, NOTES)
    assert (m.locked, m.missed, m.at_copy, m.named, m.names_places) == (4, 3, 1, 0, False)
    # a follower that names the other places: the copy's report named the truth's place too
    records[1]["also_at_s"] = [10.2]
    m = count_misses(records, "a", TRUTH, NOTES)
    assert (m.at_copy, m.named, m.names_places) == (1, 1, True)


def test_heard_audio_starts_again_at_a_jump():
    # the player plays the first A from MIDI 1 s for 4 s, then jumps to the second A at MIDI 7 s
    jumped = JumpMap((TimeMap(np.array([0.0, 4.0]), np.array([1.0, 5.0])),
                      TimeMap(np.array([4.0, 10.0]), np.array([7.0, 13.0]))))
    # 1.5 s after the jump: the audio since it is too short, whatever came before it
    assert count_misses([rec(5.5, 2.5)], "a", jumped, NOTES).at_copy == 0
    assert count_misses([rec(7.0, 4.0)], "a", jumped, NOTES).at_copy == 1
