"""Bach10 (Duan & Pardo 2011) as evaluation data: real recordings with a note-level alignment.

Each folder ``NN-Name/`` holds ``NN-Name.flac`` (the ensemble mix), ``NN-Name.mid``
(the score, fermatas written out) and ``NN-Name.txt`` (audio onset ms, MIDI onset ms,
pitch, voice). Snippet pairs are cut at every distinct MIDI onset: the roll centre
is its roll frame, the audio centre the frame of the same onset in the recording,
read off the alignment (median over the chord's notes; linear interpolation
between onsets, so any score time maps to a performance time).

Bach10 are the music21 chorales BWV 255, 256, 274, 275, 296, 297, 326, 327, 364, 385.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from follower.errors import BadAudioError, ConfigError
from follower.features import FeatureConfig, spectrogram
from follower.midi import load_midi, piano_roll
from follower.snippets import SnippetConfig, audio_input, cut, roll_input, score_roll

BACH10_BWV = {1: 255, 2: 256, 3: 274, 4: 275, 5: 296, 6: 297, 7: 326, 8: 327, 9: 364, 10: 385}


@dataclass
class RealPiece:
    name: str
    bwv: int
    spectrogram: np.ndarray   # (frames, n_bins) float32
    roll: np.ndarray          # (frames, n_channels, n_pitches) uint8, channels of the snippet config
    midi_onset_s: np.ndarray  # distinct score onsets (s, the .mid's timeline)
    audio_onset_s: np.ndarray # the same onsets in the recording

    def score_to_audio_s(self, t_s):
        """Performance time of score time ``t_s`` (piecewise linear between aligned onsets)."""
        return np.interp(t_s, self.midi_onset_s, self.audio_onset_s)


def read_alignment(path) -> tuple[np.ndarray, np.ndarray]:
    """Distinct MIDI onsets (s) and their audio onsets (s), both increasing."""
    try:
        rows = np.loadtxt(path, ndmin=2)
    except (OSError, ValueError) as e:
        raise ConfigError(f"{path}: not a Bach10 alignment (audio ms, MIDI ms, pitch, voice) ({e})") from e
    if rows.shape[1] < 2 or len(rows) < 2:
        raise ConfigError(f"{path}: expected rows of audio onset ms, MIDI onset ms, pitch, voice")
    midi_ms, audio_ms = rows[:, 1], rows[:, 0]
    onsets = np.unique(midi_ms)
    audio = np.array([np.median(audio_ms[midi_ms == t]) for t in onsets])
    audio = np.maximum.accumulate(audio)  # a performance does not go backwards
    return onsets / 1000.0, audio / 1000.0


def load_piece(folder, snippet_config: SnippetConfig, feature_config: FeatureConfig) -> RealPiece:
    import soundfile as sf

    folder = Path(folder)
    name = folder.name
    m = re.match(r"(\d+)-", name)
    if not m or int(m.group(1)) not in BACH10_BWV:
        raise ConfigError(f"{folder}: expected a Bach10 folder named NN-Name with NN in 01..10")
    try:
        signal, rate = sf.read(folder / f"{name}.flac", dtype="float32", always_2d=False)
    except Exception as e:  # soundfile raises RuntimeError/LibsndfileError
        raise BadAudioError(f"{folder / (name + '.flac')}: cannot read it ({e})") from e
    spec = spectrogram(signal, rate, feature_config)
    score = load_midi(folder / f"{name}.mid")
    roll = score_roll(score, snippet_config, feature_config.frame_rate_hz)
    midi_s, audio_s = read_alignment(folder / f"{name}.txt")
    return RealPiece(name, BACH10_BWV[int(m.group(1))], spec, roll, midi_s, audio_s)


def load_bach10(root, snippet_config: SnippetConfig, feature_config: FeatureConfig, *, progress=True) -> list:
    from tqdm import tqdm

    folders = sorted(p for p in Path(root).iterdir() if p.is_dir() and re.match(r"\d\d-", p.name))
    if not folders:
        raise ConfigError(f"{root}: no Bach10 folders (NN-Name/); point --bach10 at real/bach10")
    return [load_piece(f, snippet_config, feature_config)
            for f in tqdm(folders, desc="Bach10", unit="piece", disable=not progress)]


class RealPairs:
    """Aligned snippet pairs of real pieces, with the ``SplitData`` batch interface."""

    def __init__(self, pieces: list, snippet_config: SnippetConfig, feature_config: FeatureConfig):
        fps = feature_config.frame_rate_hz
        self.pieces, self.snippet_config = pieces, snippet_config
        rows = []
        for i, p in enumerate(pieces):
            roll_c = np.floor(p.midi_onset_s * fps).astype(np.int64)
            audio_c = np.floor(p.score_to_audio_s(p.midi_onset_s) * fps).astype(np.int64)
            ok = (audio_c < len(p.spectrogram)) & (roll_c < len(p.roll))
            _, first = np.unique(roll_c[ok], return_index=True)  # one pair per onset frame
            rows.append(np.stack([np.full(len(first), i), audio_c[ok][first], roll_c[ok][first]], 1))
        self.pairs = np.concatenate(rows)
        self.piece_of_pair = self.pairs[:, 0]

    def audio_batch(self, pair_idx) -> np.ndarray:
        p = self.pairs[np.atleast_1d(np.asarray(pair_idx))]
        w = [cut(self.pieces[r].spectrogram, [c], self.snippet_config.audio_frames)[0] for r, c in p[:, :2]]
        return audio_input(np.stack(w))

    def roll_batch(self, pair_idx) -> np.ndarray:
        p = self.pairs[np.atleast_1d(np.asarray(pair_idx))]
        w = [cut(self.pieces[r].roll, [c], self.snippet_config.roll_frames)[0] for r, c in p[:, [0, 2]]]
        return roll_input(np.stack(w), self.snippet_config)


def onset_frames(score, frame_rate_hz: float) -> np.ndarray:
    """Distinct roll frames in which a note starts (database snippet centres)."""
    return np.flatnonzero(piano_roll(score, frame_rate_hz, onsets=True).any(axis=1))


def bwv_of(path) -> int | None:
    """BWV number in a chorale file name such as bach_bwv255.mid or bach_bwv48.3.mid (-> 48)."""
    m = re.search(r"bwv(\d+)", Path(path).name, re.IGNORECASE)
    return int(m.group(1)) if m else None
