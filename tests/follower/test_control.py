"""OSC in from the stage (follower.control): a real python-osc client sends, the follower's server receives."""

import json
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
from pythonosc.udp_client import SimpleUDPClient

from conftest import one_line_error
from follower.control import LISTEN, RESET, Control, Listening
from follower.errors import ConfigError


def wait_for(control, n, timeout=5.0):
    end = time.time() + timeout
    while control.received < n and time.time() < end:
        time.sleep(0.01)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def control():
    c = Control(f"127.0.0.1:{free_port()}")
    yield c
    c.close()


def client(control):
    host, port = control.address.rsplit(":", 1)
    return SimpleUDPClient(host, int(port))


def test_messages_are_handed_over_in_the_order_they_came(control):
    c = client(control)
    c.send_message("/follower/reset", [])
    c.send_message("/follower/listen", [0])
    c.send_message("/follower/listen", [1])
    wait_for(control, 3)
    assert control.take() == [(RESET, None), (LISTEN, False), (LISTEN, True)]
    assert control.take() == []


def test_the_prefix_names_the_follower(capsys):
    control = Control(f"127.0.0.1:{free_port()}", prefix="/violin")
    try:
        c = client(control)
        c.send_message("/follower/reset", [])  # another follower's message
        c.send_message("/violin/reset", [])
        wait_for(control, 1)
        time.sleep(0.1)
        assert control.take() == [(RESET, None)]
        assert "/follower/reset: not a message of the follower (it knows /violin/reset" in capsys.readouterr().err
    finally:
        control.close()


def test_unknown_messages_and_bad_arguments_are_ignored_with_one_line_each(control, capsys):
    c = client(control)
    for _ in range(3):
        c.send_message("/follower/start", [])
        c.send_message("/follower/listen", ["yes"])
    c.send_message("/follower/listen", [2])  # (the same address: already warned)
    c.send_message("/follower/reset", [])
    wait_for(control, 1)
    time.sleep(0.1)
    assert control.take() == [(RESET, None)]
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2, err
    assert any("/follower/start: not a message of the follower" in line for line in err)
    assert any("/follower/listen yes: expected one argument, 0 (hear nothing) or 1" in line for line in err)


def test_a_port_in_use_is_refused_in_one_line():
    taken = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    taken.bind(("127.0.0.1", 0))
    try:
        with pytest.raises(ConfigError, match=r"--control 127\.0\.0\.1:\d+: cannot receive there .*free port"):
            Control(f"127.0.0.1:{taken.getsockname()[1]}")
    finally:
        taken.close()
    with pytest.raises(ConfigError, match="--control '9001': expected HOST:PORT, e.g. 127.0.0.1:9001"):
        Control("9001")


class CountingEngine:
    def __init__(self):
        self.restarts = 0

    def restart(self):
        self.restarts += 1


def test_listening_restarts_the_engine_and_feeds_it_silence(control, capsys):
    engine, listening = CountingEngine(), Listening(control, "mic")
    block = np.ones((512, 1), np.float32)
    c = client(control)
    c.send_message("/follower/listen", [0])
    wait_for(control, 1)
    listening.apply(engine, 3.0)
    assert engine.restarts == 1 and not listening.heard(block).any() and listening.heard(block).shape == block.shape
    c.send_message("/follower/listen", [0])  # again: nothing changes
    c.send_message("/follower/listen", [1])
    wait_for(control, 3)
    listening.apply(engine, 5.0)
    assert engine.restarts == 2 and listening.heard(block) is block
    c.send_message("/follower/reset", [])
    wait_for(control, 4)
    listening.apply(engine, 7.5)
    assert engine.restarts == 3 and listening.on
    assert capsys.readouterr().err.splitlines() == [
        "mic: hearing nothing until /follower/listen 1 from 3.0 s (/follower/listen)",
        "mic: identifying afresh from 5.0 s (/follower/listen)",
        "mic: identifying afresh from 7.5 s (/follower/reset)",
    ]
    nothing = Listening(None, "mic")
    nothing.apply(engine, 8.0)
    assert engine.restarts == 3 and nothing.heard(block) is block


def test_listen_0_during_a_real_time_replay_silences_the_follower(chroma_bundle, corpus_index, rendered):
    """End to end: `follower replay --control` paced in real time; Max says listen 0 once a piece is followed."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "follower.cli", "replay", str(rendered["path"]),
                             "--bundle", str(chroma_bundle), "--index", str(corpus_index), "--osc", "127.0.0.1:9",
                             "--control", f"127.0.0.1:{port}", "--jsonl", "-", "--duration", "9"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    sender = SimpleUDPClient("127.0.0.1", port)
    rows, muted_at = [], None
    try:
        for line in proc.stdout:
            rows.append(json.loads(line))
            if muted_at is None and rows[-1]["state"] == "following":
                sender.send_message("/follower/listen", [0])
                muted_at = rows[-1]["t"]
        err = proc.stderr.read()
        assert proc.wait(timeout=60) == 0, err
    finally:
        proc.kill()
    assert muted_at is not None, "no piece was followed before the message"
    assert "hearing nothing until /follower/listen 1" in err
    # the message arrives within a few updates; from then on the follower hears silence and follows nothing
    after = [r for r in rows if r["t"] > muted_at + 1.0]
    assert after and all(r["state"] == "searching" and r["piece"] is None for r in after)


def test_a_bad_control_address_is_one_line(chroma_bundle, corpus_index, rendered):
    r = subprocess.run([sys.executable, "-m", "follower.cli", "replay", str(rendered["path"]), "--fast",
                        "--bundle", str(chroma_bundle), "--index", str(corpus_index), "--osc", "127.0.0.1:9",
                        "--control", "localhost:99999"], capture_output=True, text=True, timeout=120)
    one_line_error(r, "--control 'localhost:99999': port 99999 is outside 1..65535")
