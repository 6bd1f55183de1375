"""Bach10 ground truth on the corpus chorale's own timeline.

Bach10 ships, per recording, a note-level manual alignment between the audio and
its own MIDI (fermatas written out, its own tempo). The follower's index holds the
music21 chorale of the same BWV number, whose timeline differs (120 bpm, fermatas
not held). The truth is therefore composed of two maps:

  audio s --(Bach10 note alignment)--> Bach10 MIDI s --(chord alignment)--> corpus MIDI s

The second map is found by dynamic time warping over the two scores' onset chords
(sets of pitches starting together): only chords whose pitch sets agree exactly
anchor it, and positions between anchors are interpolated.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from follower.midi import Score, load_midi

from .warp import TimeMap

# Bach10 recordings -> music21 chorales (data/README.md: BWV 255, 256, 274, 275, 296,
# 297, 326, 327, 364, 385, in the recordings' alphabetical order; checked by
# chord_alignment: every pair below agrees on >= 90 % of its onset chords).
BACH10_PIECES = {
    "01-AchGottundHerr": "bach_bwv255",
    "02-AchLiebenChristen": "bach_bwv256",
    "03-ChristederdubistTagundLicht": "bach_bwv274",
    "04-ChristeDuBeistand": "bach_bwv275",
    "05-DieNacht": "bach_bwv296",
    "06-DieSonne": "bach_bwv297",
    "07-HerrGott": "bach_bwv326",
    "08-FuerDeinenThron": "bach_bwv327",
    "09-Jesus": "bach_bwv364",
    "10-NunBitten": "bach_bwv385",
}


def onset_chords(score: Score, *, resolution_s: float = 0.01) -> tuple[np.ndarray, list[frozenset]]:
    """Distinct onset times and the set of pitches starting at each."""
    notes = score.pitched
    keys = np.round(notes["start_s"] / resolution_s).astype(np.int64)
    times, chords = [], []
    for k in np.unique(keys):
        times.append(float(notes["start_s"][keys == k].min()))
        chords.append(frozenset(int(p) for p in notes["pitch"][keys == k]))
    return np.array(times), chords


def chord_alignment(a: Score, b: Score) -> tuple[np.ndarray, np.ndarray, float]:
    """Matched onset times (a_s, b_s) of two renderings of the same score, and the
    share of a's chords that found an exact partner."""
    ta, ca = onset_chords(a)
    tb, cb = onset_chords(b)
    cost = np.array([[1.0 - len(x & y) / len(x | y) for y in cb] for x in ca])
    path = _dtw_path(cost)
    pairs = [(i, j) for i, j in path if cost[i, j] == 0.0]
    # keep one-to-one, strictly increasing anchors
    ai, bj, last_i, last_j = [], [], -1, -1
    for i, j in pairs:
        if i > last_i and j > last_j:
            ai.append(i)
            bj.append(j)
            last_i, last_j = i, j
    return ta[ai], tb[bj], len(ai) / len(ta)


def _dtw_path(cost: np.ndarray) -> list[tuple[int, int]]:
    n, m = cost.shape
    acc = np.full((n + 1, m + 1), np.inf)
    acc[0, 0] = 0.0
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            acc[i, j] = cost[i - 1, j - 1] + min(acc[i - 1, j - 1], acc[i - 1, j], acc[i, j - 1])
    i, j, path = n, m, []
    while i > 0 and j > 0:
        path.append((i - 1, j - 1))
        step = int(np.argmin([acc[i - 1, j - 1], acc[i - 1, j], acc[i, j - 1]]))
        i, j = (i - 1, j - 1) if step == 0 else (i - 1, j) if step == 1 else (i, j - 1)
    return path[::-1]


def read_note_alignment(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(audio_s, midi_s) per distinct MIDI onset: the median audio onset of its notes."""
    rows = np.loadtxt(path, delimiter="\t", ndmin=2)
    if rows.shape[1] < 2:
        raise ValueError(f"{path}: expected tab-separated audio ms, MIDI ms, pitch, voice")
    midi_ms = rows[:, 1]
    onsets = np.unique(midi_ms)
    audio_s = np.array([np.median(rows[midi_ms == m, 0]) for m in onsets]) / 1000.0
    return audio_s, onsets / 1000.0


def _increasing(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    keep_x, keep_y = [x[0]], [y[0]]
    for a, b in zip(x[1:], y[1:]):
        if a > keep_x[-1] and b > keep_y[-1]:
            keep_x.append(a)
            keep_y.append(b)
    return np.array(keep_x), np.array(keep_y)


def bach10_truth(recording_dir: Path, corpus_midi: Path) -> tuple[TimeMap, float]:
    """Audio seconds of a Bach10 recording -> seconds of the corpus chorale, and the
    share of the recording's onset chords matched in the corpus chorale."""
    name = Path(recording_dir).name
    audio_s, b10_midi_s = read_note_alignment(Path(recording_dir) / f"{name}.txt")
    b10_anchor_s, corpus_anchor_s, matched = chord_alignment(
        load_midi(Path(recording_dir) / f"{name}.mid"), load_midi(corpus_midi))
    corpus_s = np.interp(b10_midi_s, b10_anchor_s, corpus_anchor_s, left=np.nan, right=np.nan)
    ok = np.isfinite(corpus_s)
    a, c = _increasing(audio_s[ok], corpus_s[ok])
    return TimeMap(a, c), matched
