"""studies.repeat_positions: updates off by more than 0.5 s told apart by whether the notes there repeat."""

import numpy as np

from benchmarks.warp import TimeMap
from studies.repeat_positions import item_counts, locked_positions, same_music, table


def _notes(phrases):
    """(onset, end, pitch) of quarter notes, one phrase (a list of pitches) after the other."""
    pitches = [p for phrase in phrases for p in phrase]
    onset = np.arange(len(pitches), dtype=np.float64) * 0.5
    return onset, onset + 0.5, np.array(pitches, np.int64)


A = [60, 62, 64, 65, 67, 65, 64, 62] * 2          # 8 s
B = [55, 57, 59, 60, 62, 64, 66, 67] * 2          # 8 s, other notes
NOTES = _notes([A, A, B])                          # a phrase written out twice, then something else


def test_the_other_copy_of_a_written_out_repeat_is_the_same_music_and_other_music_is_not():
    assert same_music(NOTES, 7.0, 15.0)                  # 8 s apart, inside the two copies of A
    assert not same_music(NOTES, 15.0, 23.0)             # A against B
    assert not same_music(NOTES, 7.0, 7.0 + 2.3)         # the same phrase, shifted off its beat pattern


def test_only_far_updates_at_the_same_notes_count_and_the_table_says_what_that_changes():
    truth = TimeMap(np.array([0.0, 24.0]), np.array([0.0, 24.0]))
    t = np.arange(0.05, 24.0, 0.05)
    position = t.copy()
    copy = (t > 12) & (t < 15.9)
    position[copy] -= 8.0                                # on the first copy while the players play the second
    position[(t > 18) & (t < 20)] += 3.0                 # lost in B: other notes there
    records = [{"t": float(x), "piece": "p", "state": "following", "position_s": float(y)} for x, y in zip(t, position)]
    records[5] = {"t": float(t[5]), "piece": "q", "state": "following", "position_s": 1.0}   # another piece: left out
    pos, true_s = locked_positions(records, "p", truth)
    assert len(pos) == len(records) - 1
    c = item_counts(pos, true_s, NOTES)
    far_copy = int(np.sum(copy))
    assert c["n"] == len(pos) and c["same_notes"] == far_copy
    assert c["within_05"] == c["n"] - far_copy - int(np.sum((t > 18) & (t < 20)))
    text = table({"chorale": c})
    assert text.splitlines()[2].startswith("| chorale |") and text.count("|") == 18
