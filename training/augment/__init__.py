"""Random variation of training snippets on the fly: acoustic colouring and tempo stretch."""


def augmented_split(split, *, tempo_range, augment_audio: bool, frame_rate_hz: float, seed: int):
    """``split`` as ``training train`` augments it: stretched first (``tempo_range``, played /
    rendered tempo; None: no stretch), then rooms, microphones and noise (``augment_audio``)."""
    if tempo_range is not None:
        from .tempo import TempoAugmentConfig, TempoStretchedSplit

        split = TempoStretchedSplit(split, TempoAugmentConfig(scale_range=tuple(tempo_range)), seed=seed + 3)
    if augment_audio:
        from .acoustic import AudioAugmentConfig, AugmentedSplit

        split = AugmentedSplit(split, AudioAugmentConfig(frame_rate_hz=frame_rate_hz), seed=seed + 2)
    return split


def checked_tempo_range(value) -> tuple:
    """``value`` as (low, high) floats; ConfigError unless 0 < low <= high."""
    from follower.errors import ConfigError

    lo, hi = value
    if not 0 < lo <= hi:
        raise ConfigError(f"tempo_range={tuple(value)!r} must satisfy 0 < low <= high")
    return float(lo), float(hi)


class AugmentsTrainingAudio:
    """For the frozen configs with ``tempo_range``, ``augment_audio`` and ``seed`` fields that train an
    audio encoder against fixed score embeddings (``training partial-audio``, ``training student-audio``)."""

    def augmented(self, split, frame_rate_hz: float):
        """The training ``split`` as ``training train`` augments it (stretch, then rooms)."""
        return augmented_split(split, tempo_range=self.tempo_range, augment_audio=self.augment_audio,
                               frame_rate_hz=frame_rate_hz, seed=self.seed)
