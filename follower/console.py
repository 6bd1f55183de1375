"""The performer's live line on the console, beside OSC (``osc.py``) and JSON lines (``jsonlog.py``).

Like the other outputs it takes each engine update through ``emit(update)`` and is
finished with ``close()``. On a terminal one line is rewritten in place (a change
of state or piece leaves the old line on screen); otherwise (a pipe, a file) a line
is written at each change of state or piece and at most once a second between them.
The line reads (README, "Following a performance")::

        4.4s  following  bach_bwv362  beat   72.0  (  36.0 s)  tempo x0.90 = 108 bpm  conf 0.91

and, while the music heard is written out elsewhere in the piece too (``Update.also_at_beats``),
ends with ``  also at beat 8.0`` (the other places, earliest first).
"""

from __future__ import annotations

import sys
from typing import TextIO

LINE_EVERY_S = 1.0   # off a terminal: the longest a state is repeated silently
TTY_WIDTH = 100      # a rewritten line is padded to this width (wipes a longer previous one)
TTY_MAX = 120        # and cut at this one (stays one terminal row)


def line(u) -> str:
    """One update as the console shows it."""
    if u.piece is None:
        best = f"  best guess {u.candidates[0][0]} ({u.confidence:.2f})" if u.candidates else ""
        return f"{u.t:7.1f}s  {u.state:9s}{best}"
    also = getattr(u, "also_at_beats", None)
    return (f"{u.t:7.1f}s  {u.state:9s}  {u.piece}  beat {u.position_beats:6.1f}  ({u.position_s:6.1f} s)  "
            f"tempo x{u.tempo:.2f} = {u.bpm:3.0f} bpm  conf {u.confidence:.2f}"
            + (f"  also at beat {', '.join(f'{b:.1f}' for b in also)}" if also else ""))


class Console:
    """The live line on ``stream`` (default: sys.stdout at construction); see the module docstring."""

    def __init__(self, stream: TextIO | None = None):
        self.stream = sys.stdout if stream is None else stream
        self.tty = self.stream.isatty()
        self._last_t = -1e9
        self._last_key = None

    def emit(self, u) -> None:
        key = (u.state, u.piece)
        if self.tty:  # one line rewritten in place; a change of state or piece stays on screen
            keep = "\n" if key != self._last_key and self._last_key is not None else ""
            self.stream.write(keep + "\r" + line(u).ljust(TTY_WIDTH)[:TTY_MAX])
            self.stream.flush()
        elif key != self._last_key or u.t - self._last_t >= LINE_EVERY_S:
            self.stream.write(line(u) + "\n")
            self.stream.flush()
            self._last_t = u.t
        self._last_key = key

    def close(self) -> None:
        if self.tty:  # end the rewritten line so that what follows starts on its own
            self.stream.write("\n")
