"""OSC out, received by a real python-osc UDP server on loopback."""

import threading
import time

import pytest
from pythonosc.dispatcher import Dispatcher
from pythonosc.osc_server import ThreadingOSCUDPServer

from follower.engine import Update
from follower.errors import ConfigError
from follower.osc import OscSender, parse_host_port


@pytest.fixture
def receiver():
    got = []
    d = Dispatcher()
    d.set_default_handler(lambda address, *args: got.append((address, args)))
    server = ThreadingOSCUDPServer(("127.0.0.1", 0), d)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1], got
    server.shutdown()
    server.server_close()


def update(t, piece="bwv1", state="following"):
    import numpy as np

    return Update(t=np.float64(t), piece=piece, title="Wie schön", position_s=np.float32(12.5),
                  position_beats=np.float64(25.0), tempo=np.float32(1.1), bpm=np.float64(132.0),
                  confidence=np.float32(0.4), state=state, latency_ms=1.0,
                  candidates=[("bwv1", np.float32(0.5)), ("bwv2", 0.1)])


def wait_for(got, n, timeout=3.0):
    end = time.time() + timeout
    while len(got) < n and time.time() < end:
        time.sleep(0.01)


def test_messages_arrive_with_the_right_types(receiver):
    port, got = receiver
    osc = OscSender(f"127.0.0.1:{port}")
    osc.emit(update(0.05))
    osc.emit(update(0.10))  # piece and state are not repeated within a second
    osc.emit(update(1.20))  # ... but are after one
    osc.emit(Update(1.25, None, None, None, None, None, None, 0.0, "searching", 1.0, []))
    # 5 + 3 + 5 messages while following, then the one state message of searching: wait for
    # all 14 (waiting for 13 raced the last one on a busy machine)
    wait_for(got, 14, timeout=10.0)
    by = {}
    for address, args in got:
        by.setdefault(address, []).append(args)
    assert by["/follower/piece"] == [("bwv1", "Wie schön", pytest.approx(0.4))] * 2
    pos = by["/follower/position"][0]
    assert [type(v) for v in pos] == [float, float, float] and pos[:2] == (25.0, 12.5)
    assert [type(v) for v in by["/follower/tempo"][0]] == [float, float]
    assert by["/follower/tempo"][0][1] == 132.0
    assert by["/follower/state"] == [("following",), ("following",), ("searching",)]
    cand = by["/follower/candidates"][0]
    assert [type(v) for v in cand] == [str, float, str, float] and cand[0] == "bwv1"
    assert len(by["/follower/position"]) == 3  # not while searching
    assert osc.errors == 0


def test_other_places_go_out_while_there_are_some_then_once_empty(receiver):
    import dataclasses

    port, got = receiver
    osc = OscSender(f"127.0.0.1:{port}")
    twice = dataclasses.replace(update(0.05), also_at_s=[2.5, 40.0], also_at_beats=[5.0, 80.0])
    for u in (update(0.0), twice, dataclasses.replace(twice, t=0.1), update(0.15), update(0.2)):
        osc.emit(u)
    wait_for(got, 20, timeout=10.0)  # 5 messages, 4, 4, 4 (the empty one), 3
    also = [args for address, args in got if address == "/follower/also_at"]
    assert also == [(5.0, 2.5, 80.0, 40.0)] * 2 + [()]  # beats and seconds of each place; then none, once
    assert all(type(v) is float for v in also[0])


def test_nobody_listening_never_blocks_or_raises():
    osc = OscSender("127.0.0.1:9")  # discard port; nothing listens
    t0 = time.perf_counter()
    for i in range(200):
        osc.emit(update(i * 0.05))
    assert time.perf_counter() - t0 < 1.0


@pytest.mark.parametrize("target,match", [("localhost", "expected HOST:PORT"), ("127.0.0.1:http", "not a number"),
                                          ("127.0.0.1:70000", "outside 1..65535"),
                                          ("no-such-host.invalid:9000", "cannot resolve host")])
def test_bad_targets_are_one_clear_error(target, match):
    with pytest.raises(ConfigError, match=match):
        OscSender(target)


def test_ipv6_brackets():
    assert parse_host_port("[::1]:9000") == ("::1", 9000)
