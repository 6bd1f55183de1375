"""The real PortAudio capture path, fed from a raw PCM file through an ALSA `file` plugin.

The test writes its own ~/.asoundrc (HOME points at a temporary folder) defining a
capture device whose samples come from ``infile`` (raw float32, the format the
follower's InputStream asks for); its slave, ALSA's null device, is not paced, so
the capture runs faster than real time and ``--buffer`` holds the whole file.
Everything runs in subprocesses: PortAudio reads the ALSA configuration once.
"""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf


def _skip_reason():
    try:
        import sounddevice  # noqa: F401
    except OSError as e:
        return f"PortAudio is absent ({e}); apt-get install libportaudio2"
    if not Path("/usr/share/alsa/alsa.conf").is_file():
        return "ALSA is absent (no /usr/share/alsa/alsa.conf); apt-get install libasound2 alsa-utils"
    import sounddevice as sd

    if not any(api["name"] == "ALSA" for api in sd.query_hostapis()):
        return "PortAudio was built without ALSA"
    return None


pytestmark = pytest.mark.skipif(_skip_reason() is not None, reason=_skip_reason() or "")

ASOUNDRC = """\
pcm.follower_test {{
    type file
    slave.pcm {{
        type null
    }}
    file "/dev/null"
    infile "{infile}"
    format "raw"
    hint.description "follower test capture"
}}
"""


@pytest.fixture
def alsa_home(tmp_path, rendered):
    import soxr

    audio, rate = sf.read(rendered["path"], dtype="float32")
    mono = soxr.resample(audio.mean(axis=1), rate, 22050).astype("<f4")
    infile = tmp_path / "capture.raw"
    mono.tofile(infile)
    (tmp_path / ".asoundrc").write_text(ASOUNDRC.format(infile=infile))
    env = dict(os.environ, HOME=str(tmp_path))
    env.pop("ALSA_CONFIG_PATH", None)
    return env, len(mono) / 22050


def test_devices_lists_the_alsa_capture_device(alsa_home):
    env, _ = alsa_home
    r = subprocess.run([sys.executable, "-m", "follower.cli", "devices"], capture_output=True, text=True,
                       env=env, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "follower_test" in r.stdout and "ALSA" in r.stdout


def test_listen_follows_what_the_device_captures(alsa_home, chroma_bundle, corpus_index, rendered):
    env, duration_s = alsa_home
    r = subprocess.run([sys.executable, "-m", "follower.cli", "listen", "--device", "follower_test", "--rate", "22050",
                        "--duration", f"{duration_s:.2f}", "--buffer", "60", "--bundle", str(chroma_bundle),
                        "--index", str(corpus_index), "--osc", "127.0.0.1:9", "--jsonl", "-", "--stats",
                        "--max-lag", "inf"],  # the capture runs faster than real time: let it queue
                       capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert rows[-1]["t"] == pytest.approx(duration_s, abs=0.1)
    late = [row for row in rows if row["t"] > 9 and rendered["start_s"] + row["t"] * rendered["tempo"] < 19.5]
    assert late and all(row["piece"] == "piece3" and row["state"] == "following" for row in late)
    err = [row["position_s"] - (rendered["start_s"] + row["t"] * rendered["tempo"]) for row in late]
    assert np.mean(np.abs(err) < 0.5) >= 0.9
    assert "input overflows" in r.stderr


def test_a_device_that_disappears_ends_the_run_with_one_line(alsa_home, chroma_bundle, corpus_index):
    env, _ = alsa_home
    script = textwrap.dedent(f"""
        import sys, threading
        from follower import cliutil, runner
        from follower.audio_io import DeviceSource

        # max_lag_s: the capture runs faster than real time; let it queue instead of skipping updates
        options = runner.RunOptions(bundle_dir={str(chroma_bundle)!r}, index_path={str(corpus_index)!r},
                                    osc_target="127.0.0.1:9", console=False, max_lag_s=float("inf"))

        def go(a):
            make_engine = runner.load(a)
            source = DeviceSource("follower_test", rate_hz=22050, buffer_s=2)
            start = source.start

            def start_then_vanish(blocks, stop):
                start(blocks, stop)
                # what an unplugged interface does to PortAudio: the stream ends by itself (taking
                # the source's turn, as PortAudio's own thread would not race its reopen or stop)
                def vanish():
                    with source._lock:
                        source._stream.abort()
                threading.Timer(1.0, vanish).start()

            source.start = start_then_vanish
            return runner.run(source, make_engine, a)

        sys.exit(cliutil.run_main(go, options))
    """)
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "stopped (the device disappeared?)" in lines[0], r.stderr


def test_with_reconnect_a_device_that_disappears_and_comes_back_is_followed_again(alsa_home, chroma_bundle,
                                                                                    corpus_index, tmp_path):
    """The capture device, fed in real time through a named pipe, vanishes (its stream ends, and it
    cannot be opened: its pipe is gone), then comes back: listen --reconnect says lost, waits, and
    follows the piece again."""
    env, _ = alsa_home
    fifo = tmp_path / "live.fifo"
    os.mkfifo(fifo)
    (tmp_path / ".asoundrc").write_text(ASOUNDRC.format(infile=fifo))
    script = textwrap.dedent(f"""
        import os, sys, threading, time
        import numpy as np
        from follower import cliutil, runner
        from follower.audio_io import DeviceSource

        options = runner.RunOptions(bundle_dir={str(chroma_bundle)!r}, index_path={str(corpus_index)!r},
                                    osc_target="127.0.0.1:9", console=False, jsonl_path="-", reconnect=True,
                                    duration_s=18.0)
        fifo, away = {str(fifo)!r}, {str(fifo) + ".away"!r}
        audio = np.fromfile({str(tmp_path / "capture.raw")!r}, dtype="<f4")
        fd = os.open(fifo, os.O_RDWR)  # read-write: never blocks, and PortAudio's probing open finds a writer

        def play():  # the music goes on, in real time, 512 frames per write, whether captured or not
            t0, sent = time.monotonic(), 0
            while True:
                i = sent % (len(audio) - 512)
                os.write(fd, audio[i:i + 512].tobytes())
                sent += 512
                time.sleep(max(0.0, t0 + sent / 22050 - 0.05 - time.monotonic()))

        def go(a):
            make_engine = runner.load(a)
            source = DeviceSource("follower_test", rate_hz=22050, buffer_s=5)
            start = source.start

            def start_then_vanish(blocks, stop):
                start(blocks, stop)
                threading.Thread(target=play, daemon=True).start()
                def unplug():
                    os.rename(fifo, away)     # the device cannot be opened any more ...
                    with source._lock:        # ... and its stream ends by itself, as when unplugged
                        source._stream.abort()
                    time.sleep(2.0)
                    os.rename(away, fifo)     # plugged in again
                threading.Timer(7.0, unplug).start()

            source.start = start_then_vanish
            return runner.run(source, make_engine, a)

        sys.exit(cliutil.run_main(go, options))
    """)
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    states = [row["state"] for row in rows]
    runs = [(row["t"], row["state"], row["piece"]) for i, row in enumerate(rows)
            if i == 0 or states[i] != states[i - 1]]
    assert ("following", "piece3") in [(s, p) for _, s, p in runs], runs
    gone = next(i for i, row in enumerate(rows) if row["state"] == "lost")
    assert rows[gone]["t"] == pytest.approx(7.0, abs=1.0), runs  # said when it vanished
    after = rows[gone + 1:]
    assert after and after[0]["state"] == "searching", runs  # back: the piece is identified afresh ...
    assert after[0]["t"] >= rows[gone]["t"]  # ... on the same clock
    assert any(row["state"] == "following" and row["piece"] == "piece3" for row in after), runs
    assert rows[-1]["t"] == pytest.approx(18.0, abs=0.1)  # and the run went on to its --duration
    err = r.stderr.strip().splitlines()
    assert any("stopped (the device disappeared?); waiting for it to come back (--reconnect)" in line for line in err)
    assert any("is back; following again" in line for line in err), r.stderr
    assert "Traceback" not in r.stderr
