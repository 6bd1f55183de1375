"""One exception hierarchy for the whole project.

Messages name the offending value, what was expected and what to do, e.g.
``hop_samples=0 must be a positive integer``. The command-line entry points
catch :class:`FollowerError` and print it as a single line.
"""


class FollowerError(Exception):
    """Base class of every error the project raises on purpose."""


class ConfigError(FollowerError, ValueError):
    """A setting has an invalid value."""


class BadAudioError(FollowerError):
    """Audio input is missing, unreadable, empty or not finite."""


class BadMidiError(FollowerError):
    """A MIDI file is corrupt, empty, drum-only or otherwise unusable."""


class BundleError(FollowerError):
    """A model bundle or index is missing, corrupt, or does not match."""


class MissingToolError(FollowerError):
    """A system tool or resource (fluidsynth, a soundfont, PortAudio) is absent."""
