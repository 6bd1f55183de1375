"""What ``--stats`` reports, in constant memory however long the run.

A concert lasts hours: 20 updates a second for three hours is 216,000 updates, and
a Python list of their latencies alone would grow by ~7 MB. Percentiles therefore
come from fixed log-spaced histograms (0.5 % wide bins, 1 us .. 100 s), which the
report reads to better than 1 %; the largest value is kept exactly.
"""

from __future__ import annotations

import numpy as np

LO_MS, HI_MS, BINS = 1e-3, 1e5, 4000  # ratio between bin edges: 10 ** (8 / 4000) = 1.0046


class Histogram:
    """Counts of values (ms) in log-spaced bins; percentiles without keeping the values."""

    def __init__(self):
        self.counts = np.zeros(BINS + 2, np.int64)  # [under LO, bins..., over HI]
        self.n = 0
        self.max = 0.0
        self.total = 0.0

    def add(self, ms: float) -> None:
        ms = float(ms)
        if ms <= LO_MS:
            i = 0
        elif ms >= HI_MS:
            i = BINS + 1
        else:
            i = 1 + int(np.log10(ms / LO_MS) * BINS / 8.0)
        self.counts[i] += 1
        self.n += 1
        self.total += ms
        self.max = max(self.max, ms)

    def percentile(self, q: float) -> float:
        """The centre of the bin holding the q-th percentile (0 when empty)."""
        if self.n == 0:
            return 0.0
        i = int(np.searchsorted(np.cumsum(self.counts), q / 100.0 * self.n, side="left"))
        if i == 0:
            return LO_MS
        if i >= BINS + 1:
            return self.max
        return min(float(LO_MS * 10 ** ((i - 0.5) * 8.0 / BINS)), self.max)


class Stats:
    """The worker's processing time per update and in all, against audio time; lag and skipped updates."""

    def __init__(self):
        self.latency = Histogram()   # processing time of each update (the engine's own figure)
        self.lag = Histogram()       # per update: arrival of the newest audio it covers -> sent (real time only)
        self.busy_s = 0.0
        self.audio_s = 0.0
        self.skipped = 0             # updates left out on purpose while behind the audio
        self.behind = 0              # times the worker fell behind (episodes of skipping)
        self.max_backlog_s = 0.0     # the most audio ever waiting for the worker
        self.max_stride = 1          # the most hops of audio per computed update while behind (follower.pacing)
        self.reconnects = 0          # times a vanished input came back (listen --reconnect)

    @property
    def updates(self) -> int:
        return self.latency.n

    def report(self, source, blocks, osc) -> str:
        lat, lag = self.latency, self.lag
        rtf = self.busy_s / self.audio_s if self.audio_s else float("nan")
        return (f"stats: {lat.n} updates over {self.audio_s:.1f} s of audio; latency per update "
                f"p50 {lat.percentile(50):.2f} ms, p99 {lat.percentile(99):.2f} ms, "
                f"max {lat.max:.2f} ms; real-time factor {rtf:.3f} (processing / audio time); "
                f"input overflows {source.overflows}, blocks dropped {blocks.dropped}; "
                f"OSC sent {osc.sent}, send errors {osc.errors}; "
                + (f"output lag p99 {lag.percentile(99):.0f} ms, max {lag.max:.0f} ms; "
                   if getattr(source, "realtime", True) else  # --fast reads ahead of any clock: no lag to speak of
                   "output lag n/a (not real time); ") +
                f"updates skipped {self.skipped} (behind the audio {self.behind} times, at most one update per "
                f"{self.max_stride} hops)" + (f"; input reconnected {self.reconnects} times" if self.reconnects else ""))
