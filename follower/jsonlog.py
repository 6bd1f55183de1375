"""``--jsonl PATH|-``: one JSON object per engine update, for scripts and users' tools.

Exactly these keys, in this order (batch evaluation relies on them):

  t               seconds of audio consumed
  piece           piece id (MIDI path relative to the corpus folder, no suffix) or null
  title           the piece's title or null
  position_s      position of the newest audio on the MIDI's timeline (s) or null
  position_beats  the same in quarter-note beats or null
  tempo           ratio to the MIDI's written tempo (1.0 = as written) or null
  confidence      0..1
  state           searching | following | lost
  latency_ms      processing time of this update
  lag_ms          live or real-time input: how long ago the newest audio of this update arrived when
                  the update went out (the output's lag behind the audio), or null (--fast replay)
  skipped         updates left out so far to keep up with the audio (--max-lag): more than 0 means
                  the machine was too busy for a while
  also_at_s       while following: the other places of the piece (MIDI s, earliest first) that play
                  the notes heard since the follower last placed itself -- music written out twice,
                  which no audio tells apart until it differs; [] where the place is unique
  also_at_beats   the same in quarter-note beats
"""

from __future__ import annotations

import json
import sys

from .errors import ConfigError

KEYS = ("t", "piece", "title", "position_s", "position_beats", "tempo", "confidence", "state", "latency_ms",
        "lag_ms", "skipped", "also_at_s", "also_at_beats")


def record(u) -> dict:
    def r(x, nd):
        return None if x is None else round(float(x), nd)

    return {"t": r(u.t, 3), "piece": u.piece, "title": u.title, "position_s": r(u.position_s, 3),
            "position_beats": r(u.position_beats, 3), "tempo": r(u.tempo, 4), "confidence": r(u.confidence, 4),
            "state": u.state, "latency_ms": r(u.latency_ms, 3), "lag_ms": r(u.lag_ms, 1), "skipped": int(u.skipped),
            "also_at_s": [r(x, 3) for x in u.also_at_s], "also_at_beats": [r(x, 3) for x in u.also_at_beats]}


class JsonlWriter:
    """Line-buffered JSON lines; a write that fails (a full disk) stops them with one line, never the follower.

    ``failed`` is then set, and the run ends with exit code 2 once the audio is done;
    OSC and the console carry on meanwhile (on stage the music does not wait).
    """

    def __init__(self, target: str):
        self.target = target
        self.to_stdout = target == "-"
        self.written = 0
        self.failed = False
        if self.to_stdout:
            self._f = sys.stdout
        else:
            try:
                self._f = open(target, "w", buffering=1, encoding="utf-8")
            except OSError as e:
                raise ConfigError(f"--jsonl {target}: cannot write it ({e.strerror}); give a writable path or -") from e

    def emit(self, u) -> None:
        if self.failed:
            return
        try:
            self._f.write(json.dumps(record(u)) + "\n")
            if self.to_stdout:
                self._f.flush()
            self.written += 1
        except BrokenPipeError:
            raise  # stdout's reader went away (| head): the run ends quietly
        except OSError as e:
            self._fail(e)

    def _fail(self, e: OSError) -> None:
        self.failed = True
        print(f"error: --jsonl {self.target}: writing failed after {self.written} lines ({e.strerror or e}); "
              "JSON lines stop here, the follower carries on; free space or give another path",
              file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.to_stdout:
            return
        try:
            self._f.close()  # flushes what is buffered
        except OSError as e:
            if not self.failed:
                self._fail(e)
