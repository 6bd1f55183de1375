"""The engine for MIDI input: piano-roll frames in, the same updates out as for audio.

:class:`MidiEngine` is :class:`follower.engine.Engine` with two parts swapped:

* the front end: the blocks pushed are already piano-roll frames
  (:mod:`follower.midi_frontend`, one row per frame at the engine's frame rate), so
  the streaming spectrogram is replaced by a pass-through;
* the query embedding: the newest window of played roll is embedded by the bundle's
  *score* encoder. The index rows are score-encoder embeddings of the corpus rolls, so
  the search compares like with like (docs/benchmarks.md, "MIDI input", measures this
  against rendering the MIDI to audio with a synthesizer and following the audio).

Votes, verification, re-ranking, the lock policy and the tracker are the audio
engine's, unchanged: a frame with no sounding note is silence, as a quiet audio frame is.
The frame-level fine aligner (:mod:`follower.aligner`) is off: it compares spectrogram
frames with harmonic templates, and these frames are played roll, not spectrum.
"""

from __future__ import annotations

import numpy as np

from .engine import Engine, EngineConfig, templates_off
from .errors import BundleError
from .snippets import roll_input


class _RollFrames:
    """Stands in for the streaming spectrogram: the pushed block already is frames."""

    tuning = None  # piano-roll frames carry MIDI pitches: nothing to tune (follower.tuning)

    def __init__(self, width: int):
        self.width = width

    def reset(self) -> None:
        pass

    def push(self, block, *, last: bool = False) -> np.ndarray:
        block = np.asarray(block, np.float32)
        if block.size == 0:
            return np.zeros((0, self.width), np.float32)
        if block.ndim != 2 or block.shape[1] != self.width:
            raise ValueError(f"MIDI engine expects roll frames of {self.width} values, got shape {block.shape}")
        return block


class MidiEngine(Engine):
    """Push blocks of roll frames (``(n, n_channels * n_pitches)``); get :class:`follower.engine.Update` back."""

    def __init__(self, bundle, index, *, config: EngineConfig | None = None):
        # the re-ranking's note templates are spectra, and a played roll is none: the embeddings alone,
        # with the lock rules fitted for them
        config = templates_off(config)
        super().__init__(bundle, index, input_rate_hz=bundle.config.features.sample_rate_hz, config=config)
        sc = bundle.config.snippets
        if sc.roll_frames != sc.audio_frames:
            raise BundleError(f"{bundle.path}: roll_frames={sc.roll_frames} differs from audio_frames="
                              f"{sc.audio_frames}; MIDI input needs both windows to span the same time")
        self.roll_shape = (len(sc.roll_channels), sc.n_pitches)
        self.n_bins = self.roll_shape[0] * self.roll_shape[1]
        self._spec = _RollFrames(self.n_bins)
        # an audio engine may embed the windows of a long block ahead, in batches, with the
        # *audio* encoder; roll windows are embedded one by one by _embed below
        self._exact = False
        self._fine_on = False  # templates are spectra; a played roll would need its own comparison
        self._noise_flatness = 1.0  # a played roll is notes, never noise: loudness alone says silence
        self.reset()  # the frame ring, sized for roll frames

    def _embed(self, window: np.ndarray, loud: np.ndarray | None = None) -> np.ndarray:
        # (``loud``: the audio engine's cue for its encoder of windows that are still filling; a roll
        # window is embedded by the score encoder whatever it holds)
        rolls = window.reshape(1, self.width, *self.roll_shape)
        return self.bundle.score(roll_input(rolls, self.bundle.config.snippets))[0]
