"""MIDI ports through mido and python-rtmidi (the ``midi`` extra): list, find, open.

A port is named as ``follower midi-ports`` lists it, by a unique case-insensitive
part of its name, or as ``virtual:NAME`` to create a new port of that name that other
programs (a DAW, a sequencer) connect to (ALSA and CoreMTC only, not Windows).

What can go wrong becomes one line: python-rtmidi missing (install the extra), no
MIDI system (Linux without the ALSA sequencer, /dev/snd/seq), no such port. The
ALSA library prints its own complaints straight to the C stderr; they are kept off
the terminal while a port is probed so that the one line is all the user sees.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile

from .errors import ConfigError, MissingToolError

VIRTUAL_PREFIX = "virtual:"
INSTALL_HINT = "pip install 'scorefollow[midi]' (python-rtmidi)"


@contextlib.contextmanager
def _quiet_c_stderr():
    """Send file descriptor 2 to a scratch file meanwhile (C libraries write there, not to sys.stderr)."""
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):  # stderr replaced (pytest capture): nothing to quiet
        yield
        return
    sys.stderr.flush()
    saved = os.dup(fd)
    with tempfile.TemporaryFile() as scratch:
        os.dup2(scratch.fileno(), fd)
        try:
            yield
        finally:
            os.dup2(saved, fd)
            os.close(saved)


def backend():
    """mido's rtmidi backend, or MissingToolError saying how to get it."""
    try:
        import rtmidi  # noqa: F401
    except ImportError as e:
        raise MissingToolError(f"MIDI ports need python-rtmidi, which is not installed: {INSTALL_HINT}; "
                               "MIDI files (follower replay x.mid) work without it") from e
    import mido

    return mido.Backend("mido.backends.rtmidi", load=True)


def _no_system(e: Exception) -> MissingToolError:
    return MissingToolError(f"no MIDI system to open ports on ({str(e).strip() or type(e).__name__}); on Linux "
                            "the ALSA sequencer must exist (/dev/snd/seq: modprobe snd-seq, or give a container "
                            "--device /dev/snd)")


def port_names() -> tuple[list[str], list[str]]:
    """(input names, output names) of the MIDI ports on this system."""
    b = backend()
    try:
        with _quiet_c_stderr():
            return list(b.get_input_names()), list(b.get_output_names())
    except (SystemError, RuntimeError, OSError) as e:
        raise _no_system(e) from e


def _resolve(name: str, names: list[str], kind: str, option: str) -> str:
    if name in names:
        return name
    hits = [n for n in names if name.lower() in n.lower()]
    if len(hits) == 1:
        return hits[0]
    listing = ", ".join(repr(n) for n in names) or "none"
    if not hits:
        raise ConfigError(f"{option} {name!r}: no MIDI {kind} port of that name (there are: {listing}); "
                          f"see `follower midi-ports`, or {option} {VIRTUAL_PREFIX}NAME to create one")
    raise ConfigError(f"{option} {name!r} matches several MIDI {kind} ports ({', '.join(map(repr, hits))}); "
                      "give more of the name")


def _open(name: str, kind: str, option: str):
    b = backend()
    virtual = name.startswith(VIRTUAL_PREFIX)
    try:
        with _quiet_c_stderr():
            if virtual:
                label = name[len(VIRTUAL_PREFIX):] or "scorefollow"
                return (b.open_input if kind == "input" else b.open_output)(label, virtual=True)
            names = b.get_input_names() if kind == "input" else b.get_output_names()
            real = _resolve(name, list(names), kind, option)
            return (b.open_input if kind == "input" else b.open_output)(real)
    except (SystemError, RuntimeError, OSError) as e:
        raise _no_system(e) from e
    except NotImplementedError as e:  # rtmidi: no virtual ports on Windows
        raise ConfigError(f"{option} {name}: this system cannot create virtual MIDI ports ({e}); "
                          "use a loopback driver (loopMIDI) and give its name") from e


def open_input(name: str):
    """An open mido input port (``--midi-in``)."""
    return _open(name, "input", "--midi-in")


def open_output(name: str):
    """An open mido output port (``--midi-out``)."""
    return _open(name, "output", "--midi-out")
