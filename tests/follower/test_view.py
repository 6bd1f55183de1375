"""The live view's server (``follower/view.py``) and piece rolls (``follower/view_score.py``), over real HTTP.

The page itself, in a real browser during a replay, is tested in ``test_view_browser.py``.
"""

import dataclasses
import json
import re
import socket
import time
import urllib.error
import urllib.request

import pytest

from follower.engine import Update
from follower.errors import ConfigError
from follower.index import load_index
from follower.view import VIEW_HZ, LiveView, ViewOptions, host_name
from follower.view_page import PAGE
from follower.view_score import PieceScores
from conftest import sigint_default
from test_listen_alsa import _skip_reason as alsa_skip_reason
from test_listen_alsa import alsa_home  # noqa: F401  (a fixture: the ALSA file-plugin capture device)


def update(t, state="following", piece="piece3", position_s=10.0, tempo=1.1):
    locked = piece is not None
    return Update(t=t, piece=piece, title="Test piece 3" if locked else None,
                  position_s=position_s if locked else None, position_beats=2 * position_s if locked else None,
                  tempo=tempo if locked else None, bpm=120 * tempo if locked else None, confidence=0.8,
                  state=state, latency_ms=5.0, candidates=[("piece3", 2.5), ("piece1", float("nan"))])


def get(url, host=None):
    req = urllib.request.Request(url, headers={"Host": host} if host else {})
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


@pytest.fixture()
def view(corpus_index):
    index = load_index(corpus_index)
    v = LiveView(ViewOptions(port=0), PieceScores(index, corpus_index))
    yield v
    v.close()


def test_the_page_is_served_whole_from_the_follower_with_nothing_fetched_elsewhere(view):
    status, headers, body = get(view.url)
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert "default-src 'self'" in headers["Content-Security-Policy"]
    page = body.decode()
    assert page == PAGE
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)  # no CDN, no remote script or style
    assert "EventSource(\"/events\")" in page


def test_it_binds_to_localhost_by_default_and_refuses_other_host_names(view):
    assert view.server.server_address[0] == "127.0.0.1"
    assert view.url.startswith("http://127.0.0.1:")
    assert get(view.url + "state")[0] == 200
    status, _, body = get(view.url + "state", host="attacker.example")  # a DNS-rebinding page
    assert status == 403 and b"localhost only" in body
    assert host_name("[::1]:8765") == "[::1]" and host_name("localhost") == "localhost"


def test_state_follows_the_newest_update_as_plain_json(view):
    status, _, body = get(view.url + "state")
    assert status == 200 and json.loads(body)["state"] == "starting"
    view.emit(update(1.0, state="searching", piece=None))
    view.emit(update(2.0))
    snap = json.loads(get(view.url + "state")[2])
    assert snap["t"] == 2.0 and snap["piece"] == "piece3" and snap["state"] == "following"
    assert snap["position_s"] == 10.0 and snap["tempo"] == 1.1 and snap["bpm"] == 132.0
    assert snap["candidates"] == [["piece3", 2.5], ["piece1", None]]  # NaN is not JSON: null
    assert snap["also_at_beats"] == []
    view.emit(dataclasses.replace(update(2.05), also_at_s=[2.5], also_at_beats=[5.0]))  # music written out twice
    assert json.loads(get(view.url + "state")[2])["also_at_beats"] == [5.0]
    assert 'id="alsobox"' in PAGE and "also_at_beats" in PAGE
    view.emit(update(2.1))
    snap = json.loads(get(view.url + "state")[2])
    assert snap["ended"] is False
    view.finish()
    assert json.loads(get(view.url + "state")[2])["ended"] is True


def test_piece_roll_comes_from_the_midi_the_index_was_built_from(view, corpus):
    status, _, body = get(view.url + "piece?id=piece3")
    assert status == 200
    roll = json.loads(body)
    assert roll["piece"] == "piece3" and roll["title"] == "Test piece 3" and roll["missing"] is None
    assert roll["source"] == str(corpus / "piece3.mid")
    assert len(roll["notes"]) == 160  # 40 chords of four voices (conftest.write_piece)
    assert roll["duration_s"] == pytest.approx(20.0, abs=0.01)
    assert roll["beats_s"][:3] == [0.0, 0.5, 1.0] and len(roll["beats_s"]) == 41
    assert all(a < b and roll["pitch_lo"] <= p <= roll["pitch_hi"] for a, b, p in roll["notes"])
    sub = json.loads(get(view.url + "piece?id=set_b/piece7")[2])  # a piece in a subfolder of the corpus
    assert sub["source"] == str(corpus / "set_b" / "piece7.mid")


def test_a_request_never_names_a_path_only_a_piece_of_the_index(view):
    for pid in ("../../etc/passwd", "/etc/passwd", "piece3.mid", ""):
        status, _, body = get(view.url + "piece?id=" + urllib.request.quote(pid))
        assert status == 404 and "no piece" in json.loads(body)["error"]
    assert get(view.url + "nothing-here")[0] == 404


def test_a_piece_whose_midi_is_not_found_is_drawn_from_the_notes_in_the_index(corpus_index, corpus, tmp_path,
                                                                              monkeypatch):
    index = load_index(corpus_index)
    index.header["sources"] = [str(tmp_path / "moved-away")]
    monkeypatch.chdir(tmp_path)
    roll = PieceScores(index, corpus_index).get("piece3")
    assert roll["source"] == "index" and roll["missing"] is None
    from follower.midi import load_midi

    notes = load_midi(corpus / "piece3.mid").pitched
    assert len(roll["notes"]) == len(notes) and roll["notes"][0][2] == int(notes["pitch"][0])
    assert roll["beats_s"][:3] == pytest.approx([0.0, 0.5, 1.0], abs=0.01)  # the corpus' 120 bpm


def test_a_piece_whose_midi_is_not_found_says_what_to_do(corpus_index, tmp_path, monkeypatch):
    import dataclasses

    index = dataclasses.replace(load_index(corpus_index), note_start=None)  # an index from before notes
    index.header["sources"] = [str(tmp_path / "moved-away")]
    monkeypatch.chdir(tmp_path)
    roll = PieceScores(index, corpus_index).get("piece3")
    assert roll["notes"] == [] and roll["duration_s"] == pytest.approx(20.0, abs=0.01)
    assert "no MIDI file for piece3" in roll["missing"] and "--view-midi DIR" in roll["missing"]


def test_view_midi_folders_are_searched_first(corpus_index, corpus, tmp_path):
    import shutil

    index = load_index(corpus_index)
    index.header["sources"] = [str(tmp_path / "moved-away")]
    shutil.copytree(corpus, tmp_path / "elsewhere")
    roll = PieceScores(index, corpus_index, midi_dirs=[tmp_path / "elsewhere"]).get("piece2")
    assert roll["source"] == str(tmp_path / "elsewhere" / "piece2.mid") and len(roll["notes"]) == 160


def read_events(url, n, timeout=10):
    """The first ``n`` server-sent events of ``url``: [(event, data, arrival time)]."""
    host, port = re.match(r"http://([^:/]+):(\d+)/", url).groups()
    s = socket.create_connection((host, int(port)), timeout=timeout)
    s.sendall(f"GET /events HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode())
    buf, events = b"", []
    try:
        while len(events) < n:
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
            while b"\n\n" in buf:
                block, buf = buf.split(b"\n\n", 1)
                fields = dict(line.split(": ", 1) for line in block.decode().splitlines()
                              if ": " in line and not line.startswith(":"))
                if "event" in fields:
                    events.append((fields["event"], json.loads(fields["data"]), time.monotonic()))
    finally:
        s.close()
    return events


def test_events_are_throttled_and_always_carry_the_newest_update(view):
    import threading

    stop = threading.Event()

    def feed():  # the engine's pace: an update every 50 ms, for 2 s
        t = 0.0
        while not stop.is_set() and t < 2.0:
            view.emit(update(t, position_s=10 + 1.1 * t))
            t += 0.05
            time.sleep(0.05)

    threading.Thread(target=feed, daemon=True).start()
    events = read_events(view.url, 12)
    stop.set()
    assert [e[0] for e in events] == ["state"] * 12
    ts = [e[1]["t"] for e in events]
    assert ts == sorted(ts) and len(set(ts)) == len(ts)  # news only, in order
    gaps = [b[2] - a[2] for a, b in zip(events[1:], events[2:])]
    assert min(gaps) >= 0.9 / VIEW_HZ  # at most VIEW_HZ a second, though the engine sends 20
    assert max(ts) - min(ts) >= 0.05 * 8  # ... and it still keeps up with the engine


def test_closing_ends_every_stream_with_an_end_event(corpus_index):
    import threading

    v = LiveView(ViewOptions(port=0), PieceScores(load_index(corpus_index), corpus_index))
    v.emit(update(1.0))
    got = []
    reader = threading.Thread(target=lambda: got.extend(read_events(v.url, 3)))
    reader.start()
    time.sleep(0.5)
    v.close()
    reader.join(timeout=5)
    assert [e[0] for e in got] == ["state", "state", "end"]
    assert got[0][1]["ended"] is False and got[1][1]["ended"] is True  # the last picture says it has ended


def test_a_port_in_use_is_one_clear_error(view):
    port = view.server.server_address[1]
    with pytest.raises(ConfigError, match=f"--view-port {port}: already in use"):
        LiveView(ViewOptions(port=port))


def test_bad_view_options_are_refused_with_the_option_named():
    with pytest.raises(ConfigError, match="--view-port 70000 is outside"):
        ViewOptions(port=70000)
    with pytest.raises(ConfigError, match="--view-linger -1"):
        ViewOptions(linger_s=-1)
    with pytest.raises(ConfigError, match="--view-host no-such-host.invalid: cannot resolve"):
        LiveView(ViewOptions(host="no-such-host.invalid", port=0))


def test_the_view_options_of_the_command_line():
    import argparse

    from follower import listen_cli, replay_cli
    from follower.runner import RunOptions

    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers()
    replay_cli.register(sub)
    listen_cli.register(sub)
    assert RunOptions.from_args(parser.parse_args(["replay", "a.wav"])).view is None
    o = RunOptions.from_args(parser.parse_args(["replay", "a.wav", "--view"]))
    assert o.view == ViewOptions() and (o.view.host, o.view.port, o.view.linger_s) == ("127.0.0.1", 8765, 30.0)
    o = RunOptions.from_args(parser.parse_args(["listen", "--view", "--view-port", "0", "--view-host", "0.0.0.0",
                                                "--view-midi", "a", "--view-midi", "b", "--view-linger", "5"]))
    assert o.view == ViewOptions(host="0.0.0.0", port=0, midi_dirs=("a", "b"), linger_s=5.0)


def test_a_bad_view_port_on_the_command_line_is_one_line(tmp_path):
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-m", "follower.cli", "replay", str(tmp_path / "a.wav"), "--view",
                        "--view-port", "99999"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and r.stderr.strip() == \
        "error: --view-port 99999 is outside 0..65535 (0 = any free port)"


@pytest.mark.skipif(alsa_skip_reason() is not None, reason=alsa_skip_reason() or "")
def test_listen_serves_the_view_from_a_real_capture_device(alsa_home, chroma_bundle, corpus_index, rendered):
    """`follower listen --view` on the ALSA file-plugin device of test_listen_alsa.py (captures faster than real
    time); with --duration the run ends by itself, and the view lingers with the last picture."""
    import signal
    import subprocess
    import sys
    import threading

    env, duration_s = alsa_home
    proc = subprocess.Popen([sys.executable, "-m", "follower.cli", "listen", "--device", "follower_test", "--rate",
                             "22050", "--duration", f"{duration_s:.2f}", "--buffer", "60", "--bundle",
                             str(chroma_bundle), "--index", str(corpus_index), "--osc", "127.0.0.1:9", "--quiet",
                             "--view", "--view-port", "0", "--view-linger", "20",
                             "--max-lag", "inf"],  # the capture runs faster than real time: let it queue
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env,
                            preexec_fn=sigint_default)
    lines: list = []
    threading.Thread(target=lambda: lines.extend(proc.stderr), daemon=True).start()
    try:
        deadline = time.monotonic() + 90
        while not any("stays at" in line for line in lines) and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.1)
        url = next(m.group(0) for line in lines if (m := re.search(r"http://\S+/", line)))
        snap = json.loads(get(url + "state")[2])
        assert snap["ended"] is True and snap["piece"] == "piece3" and snap["state"] == "following"
        assert snap["t"] == pytest.approx(duration_s, abs=0.1)
        assert len(json.loads(get(url + "piece?id=piece3")[2])["notes"]) == 160
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
