"""When something outside breaks: the network, the disk, a signal, a damaged index or bundle, a second follower.

Each case runs the real command (subprocesses) against real receivers: a python-osc
UDP server on loopback, a full disk (/dev/full), a network namespace whose only
route is taken away mid-run (root, `unshare` and `ip` needed; skipped otherwise).
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from pythonosc.dispatcher import Dispatcher
from pythonosc.osc_server import ThreadingOSCUDPServer

from conftest import sigint_default
from follower.errors import BundleError

REPO = Path(__file__).resolve().parents[2]


def follower_cmd(*args):
    return [sys.executable, "-m", "follower.cli", *map(str, args)]


def run(*args, timeout=120):
    return subprocess.run(follower_cmd(*args), capture_output=True, text=True, timeout=timeout, cwd=REPO)


def one_line(stderr, match, prefix="error: "):
    assert "Traceback" not in stderr, stderr
    lines = [line for line in stderr.strip().splitlines() if not line.startswith("stats:")]
    assert len(lines) == 1 and lines[0].startswith(prefix), stderr
    assert match in lines[0], lines[0]


@pytest.fixture
def receiver():
    """A real OSC server on loopback: [(address, args, arrival time)]."""
    got = []
    d = Dispatcher()
    d.set_default_handler(lambda address, *args: got.append((address, args, time.monotonic())))
    server = ThreadingOSCUDPServer(("127.0.0.1", 0), d)
    # two `--fast` replays send faster than this Python server drains: a deep receive buffer
    # (as Max's would be, at live pace it never fills) so that no datagram is dropped here
    import socket

    try:
        server.socket.setsockopt(socket.SOL_SOCKET, getattr(socket, "SO_RCVBUFFORCE", socket.SO_RCVBUF), 16 << 20)
    except OSError:  # not root: as deep as the system allows
        server.socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 << 20)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1], got
    server.shutdown()
    server.server_close()


def settle(got, quiet_s=0.3, timeout=5.0):
    """Wait until the receiver has heard nothing new for quiet_s."""
    end, n = time.monotonic() + timeout, -1
    while time.monotonic() < end and n != len(got):
        n = len(got)
        time.sleep(quiet_s)


# -- the disk ------------------------------------------------------------------------

@pytest.mark.skipif(not Path("/dev/full").exists(), reason="no /dev/full on this system")
def test_jsonl_to_a_full_disk_is_one_line_and_osc_carries_on(chroma_bundle, corpus_index, rendered, receiver):
    port, got = receiver
    r = run("replay", rendered["path"], "--fast", "--bundle", chroma_bundle, "--index", corpus_index,
            "--osc", f"127.0.0.1:{port}", "--jsonl", "/dev/full", "--stats", "--quiet")
    assert r.returncode == 2
    one_line(r.stderr, "--jsonl /dev/full: writing failed after 0 lines (No space left on device)")
    stats = [line for line in r.stderr.splitlines() if line.startswith("stats:")][0]
    n_updates = int(stats.split()[1])
    assert n_updates == pytest.approx(rendered["duration_s"] * 20, abs=3)  # the whole file was followed
    settle(got)
    positions = [g for g in got if g[0] == "/follower/position"]
    assert len(positions) > n_updates / 2  # Max kept hearing where the player is
    assert got[-1][:2] == ("/follower/state", ("stopped",))


# -- signals -------------------------------------------------------------------------

@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_stops_cleanly(sig, chroma_bundle, corpus_index, rendered, receiver, tmp_path):
    import soundfile as sf

    port, got = receiver
    jsonl = tmp_path / "out.jsonl"
    # three times the render: on a starved machine the signal still lands long before the end
    audio, rate = sf.read(rendered["path"], dtype="float32")
    long_take = tmp_path / "long.flac"
    sf.write(long_take, np.concatenate([audio] * 3), rate)
    total_s = 3 * rendered["duration_s"]
    p = subprocess.Popen(follower_cmd("replay", long_take, "--bundle", chroma_bundle, "--index", corpus_index,
                                      "--osc", f"127.0.0.1:{port}", "--jsonl", jsonl, "--quiet", "--stats"),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO,
                         preexec_fn=sigint_default)
    try:  # real time: wait for 2 s of updates, then stop it as a service manager or Ctrl-C would
        end = time.monotonic() + 60
        while time.monotonic() < end and (not jsonl.exists() or jsonl.read_text().count("\n") < 40):
            time.sleep(0.1)
        p.send_signal(sig)
        out, err = p.communicate(timeout=20)
    finally:
        p.kill()
    assert p.returncode == 0, err
    assert "Traceback" not in err
    # nothing but the statistics (and, on a busy machine, the note that updates were skipped to keep up)
    assert [line for line in err.strip().splitlines()
            if not line.startswith(("stats:", "warning: processing cannot keep up"))] == [], err
    text = jsonl.read_text()
    assert text.endswith("\n")
    rows = [json.loads(line) for line in text.splitlines()]  # every line complete: flushed, nothing torn
    assert 40 <= len(rows) < total_s * 20 - 20  # it stopped early, where it was told to
    n_stats = int([line for line in err.splitlines() if line.startswith("stats:")][0].split()[1])
    assert n_stats == len(rows)
    settle(got)
    states = [g[1][0] for g in got if g[0] == "/follower/state"]
    assert states[-1] == "stopped" and states.count("stopped") == 1
    assert got[-1][:2] == ("/follower/state", ("stopped",))


# -- the network ---------------------------------------------------------------------

def _netns_reason():
    if os.geteuid() != 0:
        return "needs root for a private network namespace"
    if not shutil.which("unshare") or not shutil.which("ip"):
        return "needs unshare (util-linux) and ip (iproute2)"
    r = subprocess.run(["unshare", "-n", "sh", "-c", "ip link set lo up && ip addr add 10.77.0.1/24 dev lo"],
                       capture_output=True, text=True)
    if r.returncode != 0:
        return f"cannot make a network namespace here ({r.stderr.strip()})"
    return None


netns = pytest.mark.skipif(_netns_reason() is not None, reason=str(_netns_reason()))


@netns
def test_an_unreachable_osc_host_at_start_is_one_line(chroma_bundle, corpus_index, rendered):
    # a namespace with no route at all: 10.77.0.2 is unreachable, as with the cable pulled
    r = subprocess.run(["unshare", "-n", *follower_cmd("replay", rendered["path"], "--fast", "--bundle", chroma_bundle,
                                                       "--index", corpus_index, "--osc", "10.77.0.2:9000")],
                       capture_output=True, text=True, timeout=120, cwd=REPO)
    assert r.returncode == 2
    one_line(r.stderr, "--osc 10.77.0.2:9000: cannot send there (Network is unreachable)")


@netns
def test_the_network_going_away_mid_run_is_one_warning_and_the_follower_carries_on(
        chroma_bundle, corpus_index, rendered, tmp_path):
    # the OSC host is on a network (10.77.0.0/24, routed through the namespace's loopback) whose
    # address and route are taken away after 100 updates
    script = textwrap.dedent(f"""
        import subprocess, sys
        from follower import cliutil, runner
        from follower.audio_io import FileSource

        class Unplug:
            n = 0
            def emit(self, u):
                self.n += 1
                if self.n == 100:
                    subprocess.run(["ip", "addr", "del", "10.77.0.1/24", "dev", "lo"], check=True)
            def close(self):
                pass

        options = runner.RunOptions(bundle_dir={str(chroma_bundle)!r}, index_path={str(corpus_index)!r},
                                    osc_target="10.77.0.2:9000", console=False, stats=True,
                                    jsonl_path={str(tmp_path / "out.jsonl")!r})
        go = lambda o: runner.run(FileSource({str(rendered["path"])!r}, realtime=False), runner.load(o), o,
                                  observers=[Unplug()])
        sys.exit(cliutil.run_main(go, options))
    """)
    setup = "ip link set lo up && ip addr add 10.77.0.1/24 dev lo"
    r = subprocess.run(["unshare", "-n", "sh", "-c", f'{setup} && exec "$0" -c "$1"', sys.executable, script],
                       capture_output=True, text=True, timeout=120, cwd=REPO)
    assert r.returncode == 0, r.stderr
    one_line(r.stderr, "warning: OSC to 10.77.0.2:9000: sending failed (Network is unreachable); the follower "
                       "carries on", prefix="warning: ")
    stats = [line for line in r.stderr.splitlines() if line.startswith("stats:")][0]
    assert " send errors 0" not in stats
    rows = (tmp_path / "out.jsonl").read_text().splitlines()
    assert len(rows) == pytest.approx(rendered["duration_s"] * 20, abs=3)  # followed to the end


# -- a second follower ---------------------------------------------------------------

def test_two_followers_on_one_osc_port_are_told_apart_by_their_prefix(chroma_bundle, corpus_index, rendered,
                                                                      receiver):
    port, got = receiver
    common = ["--fast", "--bundle", chroma_bundle, "--index", corpus_index, "--osc", f"127.0.0.1:{port}", "--quiet"]
    procs = [subprocess.Popen(follower_cmd("replay", rendered["path"], *common, *extra), stderr=subprocess.PIPE,
                              text=True, cwd=REPO)
             for extra in ([], ["--osc-prefix", "/stage/violin"])]
    for p in procs:
        assert p.wait(timeout=120) == 0, p.stderr.read()
    settle(got)
    first = [g for g in got if g[0].startswith("/follower/")]
    second = [g for g in got if g[0].startswith("/stage/violin/")]
    assert len(first) + len(second) == len(got)
    for msgs, prefix in ((first, "/follower"), (second, "/stage/violin")):
        pieces = {g[1][0] for g in msgs if g[0] == f"{prefix}/piece"}
        assert pieces == {"piece3"}
        assert [g[1] for g in msgs if g[0] == f"{prefix}/state"][-1] == ("stopped",)


def test_a_bad_osc_prefix_is_one_line(chroma_bundle, corpus_index, rendered):
    r = run("replay", rendered["path"], "--fast", "--bundle", chroma_bundle, "--index", corpus_index,
            "--osc-prefix", "violin")
    assert r.returncode == 2
    one_line(r.stderr, "--osc-prefix 'violin': expected an OSC address")


# -- damaged or edited index and bundle -------------------------------------------------

def _copy(src: Path, dst: Path) -> Path:
    shutil.copy(src, dst)
    return dst


def test_a_truncated_index_is_one_line(chroma_bundle, corpus_index, rendered, tmp_path):
    bad = tmp_path / "cut.index.npz"
    bad.write_bytes(corpus_index.read_bytes()[: corpus_index.stat().st_size // 2])
    r = run("replay", rendered["path"], "--fast", "--bundle", chroma_bundle, "--index", bad, "--osc", "127.0.0.1:9")
    assert r.returncode == 2
    one_line(r.stderr, f"{bad}: not a follower index")


def test_a_flipped_byte_in_the_index_is_refused(corpus_index, tmp_path):
    from follower.index import load_index

    data = bytearray(corpus_index.read_bytes())
    with zipfile.ZipFile(corpus_index) as z:
        info = z.getinfo("embeddings.npy")
    data[info.header_offset + 30 + len(info.filename) + 200] ^= 0x40  # inside the stored embeddings
    bad = tmp_path / "flip.index.npz"
    bad.write_bytes(bytes(data))
    with pytest.raises(BundleError, match="not a follower index"):  # the zip's CRC-32 catches it
        load_index(bad)


def test_an_index_edited_consistently_is_caught_by_its_checksum(corpus_index, tmp_path):
    from follower.index import load_index

    # rewritten with valid zip CRCs and an unchanged header: only the content checksum can tell
    with np.load(corpus_index, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["position_s"] = arrays["position_s"] + np.float32(1.0)
    bad = tmp_path / "edited.index.npz"
    with open(bad, "wb") as f:
        np.savez(f, **arrays)
    with pytest.raises(BundleError, match="do not match the checksum in its header"):
        load_index(bad)
    assert json.loads(str(arrays["header"]))["sha256"]  # indexes carry it
    load_index(corpus_index)  # the original still loads


def test_an_index_whose_header_is_not_an_object_is_one_line(corpus_index, tmp_path):
    from follower.index import load_index

    with np.load(corpus_index, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["header"] = np.array("[1, 2]")
    bad = tmp_path / "header.index.npz"
    with open(bad, "wb") as f:
        np.savez(f, **arrays)
    with pytest.raises(BundleError, match="header is not a JSON object"):
        load_index(bad)


@pytest.mark.parametrize("damage", ["truncated onnx", "edited onnx", "truncated config"])
def test_a_damaged_bundle_is_one_line(damage, chroma_bundle, corpus_index, rendered, tmp_path):
    bundle = tmp_path / "bundle"
    shutil.copytree(chroma_bundle, bundle)
    onnx = bundle / "audio_encoder.onnx"
    if damage == "truncated onnx":
        onnx.write_bytes(onnx.read_bytes()[:-100])
    elif damage == "edited onnx":
        data = bytearray(onnx.read_bytes())
        data[-20] ^= 0x01
        onnx.write_bytes(bytes(data))
    else:
        cfg = bundle / "config.json"
        cfg.write_text(cfg.read_text()[:50])
    r = run("replay", rendered["path"], "--fast", "--bundle", bundle, "--index", corpus_index, "--osc", "127.0.0.1:9")
    assert r.returncode == 2
    one_line(r.stderr, "config.json" if damage == "truncated config" else "checksum differs from config.json")


# -- the input device disappears -------------------------------------------------------

def _alsa_reason():
    try:
        import sounddevice as sd
    except OSError as e:
        return f"PortAudio is absent ({e}); apt-get install libportaudio2"
    if not Path("/usr/share/alsa/alsa.conf").is_file():
        return "ALSA is absent; apt-get install libasound2"
    if not any(api["name"] == "ALSA" for api in sd.query_hostapis()):
        return "PortAudio was built without ALSA"
    return None


@pytest.mark.skipif(_alsa_reason() is not None, reason=str(_alsa_reason()))
def test_a_vanished_device_is_reported_lost_then_stopped(chroma_bundle, corpus_index, rendered, receiver, tmp_path):
    import soundfile as sf
    import soxr

    from test_listen_alsa import ASOUNDRC

    port, got = receiver
    audio, rate = sf.read(rendered["path"], dtype="float32")
    infile = tmp_path / "capture.raw"
    soxr.resample(audio.mean(axis=1), rate, 22050).astype("<f4").tofile(infile)
    (tmp_path / ".asoundrc").write_text(ASOUNDRC.format(infile=infile))
    env = dict(os.environ, HOME=str(tmp_path))
    env.pop("ALSA_CONFIG_PATH", None)
    jsonl = tmp_path / "out.jsonl"
    script = textwrap.dedent(f"""
        import sys, threading
        from follower import cliutil, runner
        from follower.audio_io import DeviceSource

        options = runner.RunOptions(bundle_dir={str(chroma_bundle)!r}, index_path={str(corpus_index)!r},
                                    osc_target="127.0.0.1:{port}", console=False, jsonl_path={str(jsonl)!r},
                                    max_lag_s=float("inf"))

        def go(a):
            make_engine = runner.load(a)
            source = DeviceSource("follower_test", rate_hz=22050, buffer_s=30)
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
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=60, cwd=REPO)
    assert r.returncode == 2, r.stderr
    one_line(r.stderr, "stopped (the device disappeared?); reconnect it and restart `follower listen`")
    rows = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert len(rows) > 1 and rows[-1]["state"] == "lost" and rows[-2]["state"] != "lost"
    assert rows[-1]["t"] == rows[-2]["t"]  # the lost line restates the last update; no audio was invented
    settle(got)
    states = [g[1][0] for g in got if g[0] == "/follower/state"]
    assert states[-2:] == ["lost", "stopped"]
