"""MIDI in: played notes -> piano-roll frames at the engine's frame rate.

The MIDI front end stands where the spectrogram stands for audio. Note-ons,
note-offs and the sustain pedal (CC 64) of a performance, live or from a file, are
turned into piano-roll frames laid out exactly as :func:`follower.snippets.score_roll`
lays out a score: frame ``j`` covers ``[j, j + 1) / fps`` seconds of the
*performance*, channel ``sustain`` marks every pitch sounding at any moment of the
frame, channel ``onset`` every pitch struck in it, pitches folded into the bundle's
range by octaves, drums (channel 10) left out. :class:`follower.midi_engine.MidiEngine`
embeds the newest window of these frames with the bundle's *score* encoder, so the
search is roll against roll (the index rows are score embeddings), not audio against
roll (docs/benchmarks.md, "MIDI input").

The sustain pedal: a key released while the pedal is down keeps sounding, as on the
instrument, until the pedal comes up (``RollConfig.pedal``; measured both ways).

Frames leave the front end as float32 rows of ``n_channels * n_pitches`` values
(velocities 0..127, channel-major), the form the engine's frame ring holds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .config import JsonConfig
from .midi import DRUM_CHANNEL
from .snippets import SnippetConfig

SUSTAIN_CC = 64


@dataclass(frozen=True)
class RollConfig(JsonConfig):
    pedal: bool = True   # a key released under the sustain pedal sounds on until the pedal is released


class RollFrontEnd:
    """Feed ``(time_s, mido message)`` in time order with :meth:`feed`; get finished frames back.

    ``time_s`` is performance time from the start of the stream; a frame is returned
    once the stream has passed its end (by :meth:`feed` or :meth:`until`).
    """

    def __init__(self, snippets: SnippetConfig, frame_rate_hz: float, config: RollConfig | None = None):
        self.snippets = snippets
        self.fps = float(frame_rate_hz)
        self.config = config or RollConfig()
        self.channels = tuple(snippets.roll_channels)
        self.n_pitches = snippets.n_pitches
        self.width = len(self.channels) * self.n_pitches
        self.reset()

    def reset(self) -> None:
        self._j = 0                                   # the frame being filled
        self._held: dict = {}                         # (channel, note) -> folded pitch row, key down
        self._velocity: dict = {}                     # (channel, note) -> velocity of its last strike
        self._pedalled: dict = {}                     # (channel, note) -> row, key up under the pedal
        self._pedal = np.zeros(16, bool)
        self._touched = np.zeros(self.n_pitches, np.float32)  # sounding at some moment of this frame
        self._struck = np.zeros(self.n_pitches, np.float32)   # struck in this frame
        self.last_t = 0.0

    def _row(self, note: int) -> int:
        p = int(note)
        while p < self.snippets.pitch_lo:
            p += 12
        while p > self.snippets.pitch_hi:
            p -= 12
        return p - self.snippets.pitch_lo

    def _close(self) -> np.ndarray:
        parts = {"sustain": self._touched, "onset": self._struck}
        frame = np.concatenate([parts[c] for c in self.channels]).astype(np.float32)
        self._j += 1
        # the next frame starts with what sounds now
        self._touched = np.zeros(self.n_pitches, np.float32)
        for key, row in list(self._held.items()) + list(self._pedalled.items()):
            self._touched[row] = max(self._touched[row], self._velocity[key])
        self._struck = np.zeros(self.n_pitches, np.float32)
        return frame

    def until(self, t_s: float) -> list[np.ndarray]:
        """Frames that end at or before ``t_s`` and are not returned yet."""
        out = []
        while (self._j + 1) / self.fps <= t_s:
            out.append(self._close())
        self.last_t = max(self.last_t, t_s)
        return out

    def feed(self, t_s: float, msg) -> list[np.ndarray]:
        """Apply one message at ``t_s`` (not before the previous one); return the frames it finished."""
        t_s = max(float(t_s), self.last_t)
        out = self.until(t_s)
        kind = msg.type
        if kind in ("note_on", "note_off") and msg.channel != DRUM_CHANNEL:
            key = (msg.channel, msg.note)
            if kind == "note_on" and msg.velocity > 0:
                row = self._row(msg.note)
                self._velocity[key] = msg.velocity
                self._held[key] = row
                self._pedalled.pop(key, None)
                self._touched[row] = max(self._touched[row], msg.velocity)
                self._struck[row] = max(self._struck[row], msg.velocity)
            else:
                row = self._held.pop(key, None)
                if row is not None and self.config.pedal and self._pedal[msg.channel]:
                    self._pedalled[key] = row
                elif row is not None:
                    self._velocity.pop(key, None)
        elif kind == "control_change" and msg.control == SUSTAIN_CC:
            down = msg.value >= 64
            self._pedal[msg.channel] = down
            if not down:
                for key in [k for k in self._pedalled if k[0] == msg.channel]:
                    del self._pedalled[key]
                    self._velocity.pop(key, None)
        return out

    @property
    def sounding(self) -> bool:
        return bool(self._held or self._pedalled)
