"""How many updates the worker computes when the machine is too busy for all of them.

Live input (or a file replayed in real time) does not wait for the follower. The
worker (:mod:`follower.runner`) asks a :class:`Pacer` two things:

* **behind?** More than ``max_lag_s`` of audio is waiting: the worker takes all of it
  at once and computes only the newest update over it (the skipped updates' audio
  still enters the window), so the queue never grows and the output catches up at
  once. Each time this happens the pacer also **strides**: from then on the worker
  computes one update per ``level`` hops of audio (1, 2, then 4), leaving the rest of
  the time to whatever else the machine runs, instead of falling behind again and
  again (each time by ``max_lag_s``).
* **recover?** Every ``RECOVER_S`` of wall time at a level above 1, the pacer looks at
  the share of that time the worker spent processing; when twice that share (the
  work of twice the updates) would still leave ``1 - HEADROOM`` idle, it halves the
  level. When the load goes, the follower is back to every update within a few
  seconds; while it lasts, the level settles where the updates fit.

Every update left out is counted (``Engine.skipped_updates``, ``--stats``, the
``skipped`` key of the JSON lines).
"""

from __future__ import annotations

MAX_LEVEL = 4      # at most one update per 4 hops (200 ms at the default hop): the tracker still steps
RECOVER_S = 2.0    # wall time over which the worker's busy share is measured before a level is halved
HEADROOM = 0.6     # halve the level only if twice the work would keep the worker busy at most this share


class Pacer:
    """See the module docstring; ``hop_s`` is the audio per engine update."""

    def __init__(self, max_lag_s: float, hop_s: float):
        self.max_lag_s = max_lag_s
        self.hop_s = hop_s
        self.level = 1
        self.max_level = 1
        self._since = None       # wall time the current measurement window began
        self._busy = 0.0         # processing time inside it

    def behind(self, waiting_s: float) -> bool:
        """Is more audio waiting than the lag allows?"""
        return waiting_s > self.max_lag_s

    def fell_behind(self, now: float) -> None:
        """A new episode of falling behind: stride more."""
        self.level = min(self.level * 2, MAX_LEVEL)
        self.max_level = max(self.max_level, self.level)
        self._since, self._busy = now, 0.0

    def enough(self, held_s: float) -> bool:
        """Is ``held_s`` of audio enough for the next update at this level?"""
        return self.level == 1 or held_s >= self.level * self.hop_s - 1e-9

    def processed(self, now: float, busy_s: float) -> None:
        """Account ``busy_s`` of processing that ended at wall time ``now``; maybe lower the level."""
        if self.level == 1:
            return
        if self._since is None:
            self._since = now - busy_s
        self._busy += busy_s
        span = now - self._since
        if span >= RECOVER_S:
            if 2.0 * self._busy / span <= HEADROOM:
                self.level //= 2
            self._since, self._busy = now, 0.0
