"""Audio sources: a file (replayed) and an input device (live), feeding one block queue.

Both sources only *deliver* blocks into a bounded :class:`BlockQueue`; the worker
in :mod:`follower.runner` takes them out and does all the work, so a file is
processed exactly as live input is (madmom's principle).

* :class:`DeviceSource`: a sounddevice ``InputStream`` whose callback copies the
  block into the queue and counts overflows (PortAudio's input_overflow flag, and
  blocks dropped because the worker fell behind). Nothing else runs in the callback.
* :class:`FileSource`: a thread reading the file with soundfile (wav, flac, ogg,
  mp3; any rate and channel count) block by block, paced in real time or, with
  ``realtime=False``, as fast as the worker takes them (it then waits instead of
  dropping), in long blocks whose windows the engine embeds in batches.
"""

from __future__ import annotations

import contextlib
import os
import queue
import sys
import threading
import time
from pathlib import Path

from .errors import BadAudioError, ConfigError, MissingToolError

EOF = None  # the sentinel a source puts when it has no more audio


class BlockQueue:
    """Bounded queue of audio blocks; a full queue drops (live) or waits (file).

    Each block is stamped with the monotonic time it arrived, so the worker knows how
    old the audio it processes is (the lag between the audio and the output).
    """

    def __init__(self, max_blocks: int = 256):
        self._q: queue.Queue = queue.Queue(maxsize=max_blocks)
        self.max_blocks = max_blocks
        self.dropped = 0
        self.stamp = time.monotonic()  # arrival time of the item get() returned last (at first: its creation)

    def put_nowait(self, block) -> None:
        try:
            self._q.put_nowait((time.monotonic(), block))
        except queue.Full:
            self.dropped += 1

    def put_last(self, item) -> None:
        """Enqueue an end marker even when full (the oldest block makes room): it must arrive."""
        while True:
            try:
                self._q.put_nowait((time.monotonic(), item))
                return
            except queue.Full:
                try:
                    self._q.get_nowait()
                    self.dropped += 1
                except queue.Empty:
                    pass

    def put(self, block, stop: threading.Event) -> bool:
        while not stop.is_set():
            try:
                self._q.put((time.monotonic(), block), timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def get(self, timeout: float):
        self.stamp, item = self._q.get(timeout=timeout)
        return item

    def drain(self) -> list:
        """Every item waiting now, oldest first, as (arrival time, item); never blocks."""
        out = []
        while True:
            try:
                out.append(self._q.get_nowait())
            except queue.Empty:
                return out

    def depth(self) -> int:
        """Items waiting (approximate while the source is putting)."""
        return self._q.qsize()


@contextlib.contextmanager
def quiet_stderr(active: bool = True):
    """Silence what C libraries print on file descriptor 2 (libmpg123 warns about damaged mp3 files
    on its own, which would add lines to the one error line the user gets)."""
    if not active:
        yield
        return
    try:
        saved = os.dup(2)
    except OSError:  # no stderr at all
        yield
        return
    sys.stderr.flush()
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


class FileSource:
    """Replays an audio file into the queue; see the module docstring."""

    PACED_BLOCK = 1024          # samples per block in real time (the engine cuts longer blocks to this size)
    FAST_BLOCK = 128 * 1024     # without pacing (3-6 s): the engine embeds their windows in batches

    def __init__(self, path, *, block_frames: int | None = None, realtime: bool = True):
        import soundfile as sf

        self.path = Path(path)
        self.name = str(path)
        if not self.path.is_file():
            raise BadAudioError(f"{path}: no such audio file")
        if self.path.stat().st_size == 0:
            raise BadAudioError(f"{path}: empty file (0 bytes); give a wav, flac, ogg or mp3 recording")
        try:
            with quiet_stderr(self.path.suffix.lower() == ".mp3"):
                info = sf.info(str(self.path))
        except Exception as e:  # soundfile raises LibsndfileError / RuntimeError / TypeError
            raise BadAudioError(f"{path}: not a readable audio file ({e}); give a wav, flac, ogg or mp3 "
                                "recording") from e
        if info.frames == 0 or info.samplerate <= 0:
            raise BadAudioError(f"{path}: holds no audio samples; give a non-empty recording")
        self.rate_hz = float(info.samplerate)
        self.channels = int(info.channels)
        self.duration_s = info.frames / info.samplerate
        # paced: small blocks, as a sound card delivers them; fast: long ones (Engine._embed_ahead)
        self.block_frames = int(block_frames or (self.PACED_BLOCK if realtime else self.FAST_BLOCK))
        self.realtime = realtime
        self.queue_blocks = 64
        self.overflows = 0
        self._thread = None
        self._error = None

    def start(self, blocks: BlockQueue, stop: threading.Event) -> None:
        self._thread = threading.Thread(target=self._run, args=(blocks, stop), name="file-source", daemon=True)
        self._thread.start()

    def _run(self, blocks: BlockQueue, stop: threading.Event) -> None:
        import soundfile as sf

        try:
            t0 = time.monotonic()
            sent = 0
            with sf.SoundFile(str(self.path)) as f:
                while not stop.is_set():
                    block = f.read(self.block_frames, dtype="float32", always_2d=True)
                    if len(block) == 0:
                        break
                    if self.realtime:  # release a block when its last sample "has been played"
                        wait = t0 + (sent + len(block)) / self.rate_hz - time.monotonic()
                        if wait > 0:
                            stop.wait(wait)
                    if not blocks.put(block, stop):
                        return
                    sent += len(block)
        except Exception as e:  # noqa: BLE001 - reported by the worker as one line
            blocks.put(BadAudioError(f"{self.path}: reading failed after {sent / self.rate_hz:.1f} s ({e})"), stop)
            return
        blocks.put(EOF, stop)

    def stop(self) -> None:
        if self._thread is not None:
            self._thread.join(timeout=2)


def require_sounddevice():
    try:
        import sounddevice as sd
    except OSError as e:  # sounddevice raises OSError when the PortAudio library is missing
        raise MissingToolError(f"PortAudio is not available ({e}); install it (Debian: apt-get install "
                               "libportaudio2; macOS: brew install portaudio)") from e
    return sd


def input_devices() -> list[dict]:
    """Every device with input channels: index, name, host API, channels, default rate."""
    sd = require_sounddevice()
    apis = sd.query_hostapis()
    out = []
    for i, d in enumerate(sd.query_devices()):
        if d["max_input_channels"] > 0:
            out.append({"id": i, "name": d["name"], "hostapi": apis[d["hostapi"]]["name"],
                        "channels": d["max_input_channels"], "rate_hz": d["default_samplerate"]})
    return out


def resolve_device(device) -> int | None:
    """Device id from an index or a unique case-insensitive name substring; None = default input."""
    sd = require_sounddevice()
    if device is None or device == "":
        try:
            sd.query_devices(kind="input")
        except Exception as e:  # noqa: BLE001 - PortAudioError or ValueError when there is none
            raise ConfigError(f"there is no default audio input ({e}); list them with `follower devices` "
                              "and pass --device ID") from e
        return None
    devices = input_devices()
    if str(device).isdigit():
        n = int(device)
        if not any(d["id"] == n for d in devices):
            raise ConfigError(f"--device {n}: no audio input with that id; list them with `follower devices`")
        return n
    hits = [d for d in devices if str(device).lower() in d["name"].lower()]
    exact = [d for d in hits if d["name"].lower() == str(device).lower()]
    if len(exact) == 1 or len(hits) == 1:
        return (exact or hits)[0]["id"]
    if not hits:
        raise ConfigError(f"--device {device!r}: no audio input of that name; list them with `follower devices`")
    raise ConfigError(f"--device {device!r} matches several inputs ({', '.join(d['name'] for d in hits)}); "
                      "give its id")


class DeviceSource:
    """Live input through PortAudio; see the module docstring."""

    RETRY_S = 1.0  # how often a vanished device is looked for again (reopen)

    def __init__(self, device=None, *, rate_hz: float | None = None, channels: int = 1,
                 block_frames: int = 512, buffer_s: float = 5.0):
        sd = require_sounddevice()
        self._sd = sd
        self._asked = device                 # as given: an id, a name, or None (the default input)
        self.device = resolve_device(device)
        info = sd.query_devices(self.device, kind="input")
        self.device_name = str(info["name"])  # what a device that comes back is found by (reopen)
        self.name = f"input {info['name']!r}"
        self.rate_hz = float(rate_hz or info["default_samplerate"])
        self.channels = max(1, min(int(channels), int(info["max_input_channels"])))
        self.block_frames = int(block_frames)
        # how much audio may wait for the worker before blocks are dropped
        self.queue_blocks = max(8, int(buffer_s * self.rate_hz / self.block_frames) + 1)
        self.duration_s = None
        self.realtime = True
        self.overflows = 0
        self._stream = None
        self._blocks = None
        self._generation = 0  # which stream the callbacks belong to: a closed one's are ignored
        # PortAudio's calls on one stream must not overlap (two aborts join its thread twice and can
        # hang): the worker's reopen and the main thread's stop both close it, so they take turns
        self._lock = threading.RLock()

    def _callback(self, generation, indata, status) -> None:
        if generation != self._generation:
            return
        if status.input_overflow:
            self.overflows += 1
        self._blocks.put_nowait(indata.copy())  # all work happens in the worker

    def _finished(self, generation) -> None:
        # PortAudio stopped the stream (device gone, or closed by us): wake the worker
        if generation == self._generation:
            self._blocks.put_last(EOF)

    def _open(self) -> None:
        with self._lock:  # reentrant: reopen calls it holding the lock
            self._generation += 1
            generation = self._generation
            self._stream = self._sd.InputStream(
                device=self.device, channels=self.channels, samplerate=self.rate_hz, blocksize=self.block_frames,
                dtype="float32", callback=lambda indata, frames, t, status: self._callback(generation, indata, status),
                finished_callback=lambda: self._finished(generation))
            self._stream.start()

    def start(self, blocks: BlockQueue, stop: threading.Event) -> None:
        self._blocks = blocks
        try:
            self._open()
        except Exception as e:  # noqa: BLE001 - PortAudioError: busy, unsupported rate...
            raise ConfigError(f"cannot open {self.name} at {self.rate_hz:g} Hz, {self.channels} channel(s) "
                              f"({e}); try --rate or another --device (see `follower devices`)") from e

    def reopen(self, blocks: BlockQueue, stop: threading.Event) -> bool:
        """After the stream ended (the device vanished): close it, then every ``RETRY_S`` look for the
        device again -- by the name it had, else as it was first asked for -- and open it with the same
        settings. True once audio flows again; False if ``stop`` was set first."""
        self._blocks = blocks
        while not stop.is_set():
            with self._lock:
                self._close()
                try:
                    # PortAudio lists the devices when it is initialised: only a fresh start sees one
                    # that came back (no stream of ours is open now)
                    self._sd._terminate()
                    self._sd._initialize()
                    names = [d for d in input_devices() if d["name"] == self.device_name]
                    self.device = names[0]["id"] if names else resolve_device(self._asked)
                    self._open()
                    blocks.stamp = time.monotonic()  # the stall clock starts now
                    return True
                except Exception:  # noqa: BLE001 - not back yet (absent, busy, half-initialised): try again
                    pass
            stop.wait(self.RETRY_S)
        return False

    @property
    def active(self) -> bool:
        return self._stream is not None and self._stream.active

    def _close(self) -> None:
        with self._lock:
            stream, self._stream = self._stream, None
            self._generation += 1  # whatever the old stream still calls back is ignored
            if stream is not None:
                try:
                    stream.abort()
                    stream.close()
                except Exception:  # noqa: BLE001 - the device may already be gone
                    pass

    def stop(self) -> None:
        self._close()
