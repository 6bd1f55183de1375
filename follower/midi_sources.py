"""MIDI sources: a performance file (replayed) and a live MIDI input port.

Like the audio sources (:mod:`follower.audio_io`) they only *deliver* blocks into the
runner's :class:`follower.audio_io.BlockQueue`; here a block is a run of piano-roll
frames from :class:`follower.midi_frontend.RollFrontEnd` (``rate_hz`` is the frame
rate, so the runner's seconds and ``--duration`` mean what they mean for audio), and
``is_midi`` tells the runner to build the MIDI engine.

* :class:`MidiFileSource`: a performance file (its tempo map gives the performance
  time), paced in real time one frame at a time, or with ``realtime=False`` as fast as
  the worker takes them.
* :class:`MidiPortSource`: a MIDI input port. The port's callback only stamps each
  message with the monotonic clock and queues it; a thread closes one frame every
  frame period, so silence (nobody playing) still advances time as it does for audio.
"""

from __future__ import annotations

import queue
import threading
import time
from pathlib import Path

import numpy as np

from .audio_io import EOF, BlockQueue
from .errors import BadMidiError
from .midi_frontend import SUSTAIN_CC, RollConfig, RollFrontEnd

MIDI_SUFFIXES = (".mid", ".midi", ".smf", ".kar")


def is_midi_path(path) -> bool:
    return Path(str(path)).suffix.lower() in MIDI_SUFFIXES


def performance_events(path) -> list:
    """``(time_s, message)`` of the notes and sustain pedal of a MIDI performance, in time order.

    Times are seconds from the file's start by its own tempo map (a recorded
    performance: its timing is the performer's). Bad files raise BadMidiError.
    """
    import mido

    from .midi import load_midi

    load_midi(path)  # the one place that says what is wrong with a MIDI file
    mid = mido.MidiFile(str(path), clip=True)
    t, events = 0.0, []
    for msg in mid:  # all tracks merged, delta times in seconds
        t += msg.time
        if msg.type in ("note_on", "note_off") or (msg.type == "control_change" and msg.control == SUSTAIN_CC):
            events.append((t, msg))
    return events


def roll_frames(events, front: RollFrontEnd, *, tail_s: float = 0.0) -> np.ndarray:
    """Every frame of a whole performance, up to its last event plus ``tail_s``."""
    front.reset()
    frames = []
    for t, msg in events:
        frames += front.feed(t, msg)
    end = (events[-1][0] if events else 0.0) + tail_s
    frames += front.until(end + 1.0 / front.fps)  # the frame holding the last event
    if not frames:
        return np.zeros((0, front.width), np.float32)
    return np.stack(frames)


def front_end_for(bundle_dir, config: RollConfig | None = None) -> RollFrontEnd:
    """The MIDI front end shaped for a bundle (its roll layout and frame rate), from its config alone."""
    from .bundle import read_config
    from .paths import resolve_bundle

    cfg = read_config(resolve_bundle(bundle_dir))
    return RollFrontEnd(cfg.snippets, cfg.features.frame_rate_hz, config)


class MidiFileSource:
    """Replays a MIDI performance file as piano-roll frames; see the module docstring."""

    is_midi = True

    def __init__(self, path, front: RollFrontEnd, *, realtime: bool = True, block_frames: int = 1):
        self.path = Path(path)
        self.name = str(path)
        if not self.path.is_file():
            raise BadMidiError(f"{path}: no such MIDI file")
        self._frames = roll_frames(performance_events(path), front)
        if not len(self._frames):
            raise BadMidiError(f"{path}: holds no notes to follow")
        self.rate_hz = front.fps
        self.duration_s = len(self._frames) / front.fps
        self.realtime = realtime
        self.block_frames = max(1, int(block_frames)) if realtime else 16
        self.queue_blocks = 64
        self.overflows = 0
        self._thread = None

    def start(self, blocks: BlockQueue, stop: threading.Event) -> None:
        self._thread = threading.Thread(target=self._run, args=(blocks, stop), name="midi-file-source", daemon=True)
        self._thread.start()

    def _run(self, blocks: BlockQueue, stop: threading.Event) -> None:
        t0 = time.monotonic()
        for i in range(0, len(self._frames), self.block_frames):
            block = self._frames[i:i + self.block_frames]
            if self.realtime:  # release a frame when its end "has been played"
                wait = t0 + (i + len(block)) / self.rate_hz - time.monotonic()
                if wait > 0 and stop.wait(wait):
                    return
            if not blocks.put(block, stop):
                return
        blocks.put(EOF, stop)

    def stop(self) -> None:
        if self._thread is not None:
            self._thread.join(timeout=2)


class MidiPortSource:
    """Follows a live MIDI input port; see the module docstring. ``port`` is a name or an open mido port."""

    is_midi = True

    def __init__(self, port, front: RollFrontEnd, *, buffer_s: float = 5.0):
        from .midi_ports import open_input

        self._events: queue.SimpleQueue = queue.SimpleQueue()
        self._port = open_input(port) if isinstance(port, str) else port
        self.name = f"MIDI input {getattr(self._port, 'name', port)!r}"
        self.front = front
        self.rate_hz = front.fps
        self.duration_s = None
        self.realtime = True
        self.queue_blocks = max(8, int(buffer_s * front.fps))
        self.overflows = 0
        self.messages = 0
        self._thread = None

    def _on_message(self, msg) -> None:
        self._events.put((time.monotonic(), msg))  # all work happens in the frame thread

    def start(self, blocks: BlockQueue, stop: threading.Event) -> None:
        self.front.reset()
        self._port.callback = self._on_message
        self._thread = threading.Thread(target=self._run, args=(blocks, stop), name="midi-port-source", daemon=True)
        self._thread.start()

    def _run(self, blocks: BlockQueue, stop: threading.Event) -> None:
        t0 = time.monotonic()
        j = 0
        while not stop.is_set():
            j += 1
            if stop.wait(max(0.0, t0 + j / self.rate_hz - time.monotonic())):
                break
            frames = []
            while True:
                try:
                    stamp, msg = self._events.get_nowait()
                except queue.Empty:
                    break
                self.messages += 1
                frames += self.front.feed(min(stamp - t0, j / self.rate_hz), msg)
            frames += self.front.until(j / self.rate_hz)
            if frames:
                blocks.put_nowait(np.stack(frames))

    def stop(self) -> None:
        if self._thread is not None:
            self._thread.join(timeout=2)
        try:
            self._port.callback = None
            self._port.close()
        except Exception:  # noqa: BLE001 - the device may already be gone
            pass
