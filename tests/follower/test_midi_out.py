"""MIDI out: clock at the followed tempo, Song Position Pointer on lock / jump / relock, bar/beat CCs.

The planner is checked with made-up updates; the sink through a mido loopback port (in
real time, by the arrival times of the clocks) and through the runner following a MIDI
performance; and a real rtmidi port where the platform has a MIDI system.
"""

import threading
import time
from types import SimpleNamespace

import mido
import numpy as np
import pytest

from follower.midi_out import ClockPlanner, MidiClockOut, MidiOutConfig, bar_beat


def update(t, beats, bpm=120.0, state="following", piece="p"):
    return SimpleNamespace(t=t, state=state, piece=piece if state != "searching" else None,
                           position_beats=beats if state != "searching" else None, bpm=bpm)


def run_planner(updates, config=None):
    planner = ClockPlanner(config)
    return planner, [m for u in updates for m in planner.step(u)]


class Loopback(mido.ports.BaseIOPort):
    """Messages sent arrive, stamped with the monotonic clock."""

    def _open(self, **kwargs):
        self.arrived = []

    def _send(self, msg):
        self.arrived.append((time.monotonic(), msg))


def test_bar_and_beat_numbers():
    assert bar_beat(0.0, 4) == (1, 1)
    assert bar_beat(10.0, 4) == (3, 3)
    assert bar_beat(11.99, 4) == (3, 4)
    assert bar_beat(12.0, 3) == (5, 1)
    assert bar_beat(-0.5, 4) == (1, 1)


def test_lock_sends_song_position_then_continue_then_clocks_that_keep_the_tempo():
    # locked at beat 10.3 at 1 s, then 120 bpm for 5 s: 2 beats a second
    ups = [update(1 + k * 0.05, 10.3 + 2 * k * 0.05) for k in range(101)]
    planner, msgs = run_planner(ups)
    kinds = [m.type for m in msgs]
    assert kinds[:3] == ["control_change", "songpos", "continue"]
    assert msgs[0].control == 23 and msgs[0].value == 1                      # state: following
    assert msgs[1].pos == 41                                                 # 10.3 beats -> sixteenth 41
    assert "start" not in kinds and "stop" not in kinds
    clocks = np.array([m.time for m in msgs if m.type == "clock"])
    # every clock the position has passed (plus the look-ahead) and no more
    assert len(clocks) == pytest.approx(24 * (ups[-1].position_beats + 2 * 0.1 - 10.25), abs=1)
    steady = np.diff(clocks[clocks > 1.5])
    assert np.median(steady) == pytest.approx(60 / (120 * 24), rel=0.01)
    assert np.all(np.diff(clocks) > 0)
    # the catch-up from the sixteenth to the position runs at most twice the tempo's rate
    assert np.min(np.diff(clocks)) >= 60 / (120 * 24) / 2 - 1e-9


def test_the_clock_follows_a_tempo_change_and_halts_when_the_player_pauses():
    ups, beats = [], 4.0
    for k in range(200):  # 120 bpm for 3 s, 90 bpm for 3 s, a 2 s pause (position held), 90 bpm on
        t = k * 0.05
        bpm = 120.0 if t < 3 else 90.0
        if not 6 <= t < 8:
            beats += bpm / 60 * 0.05
        ups.append(update(t, beats, bpm))
    _, msgs = run_planner(ups)
    clocks = np.array([m.time for m in msgs if m.type == "clock"])
    assert np.median(np.diff(clocks[(clocks > 1) & (clocks < 3)])) == pytest.approx(60 / (120 * 24), rel=0.02)
    assert np.median(np.diff(clocks[(clocks > 4) & (clocks < 6)])) == pytest.approx(60 / (90 * 24), rel=0.02)
    in_pause = clocks[(clocks > 6.2) & (clocks < 8)]
    assert len(in_pause) == 0                     # no clock while the position stands still
    assert (clocks > 8).sum() > 24                # and on again afterwards


def test_a_jump_relocates_and_lost_stops_and_relock_continues():
    ups = [update(k * 0.05, 20 + 0.1 * k) for k in range(20)]                    # 20 .. 21.9
    ups += [update(1.0 + k * 0.05, 8 + 0.1 * k) for k in range(20)]              # jump back to beat 8
    ups += [update(2.0 + k * 0.05, 10, state="lost") for k in range(10)]         # lost
    ups += [update(2.5 + k * 0.05, 30 + 0.1 * k) for k in range(10)]             # relocked at beat 30
    ups += [update(3.0, None, state="searching")]
    planner, msgs = run_planner(ups)
    transport = [(m.type, getattr(m, "pos", None)) for m in msgs if m.type in ("songpos", "start", "continue",
                                                                                 "stop")]
    assert transport == [("songpos", 80), ("continue", None),
                         ("stop", None), ("songpos", 32), ("continue", None),    # the jump
                         ("stop", None),                                          # lost
                         ("songpos", 120), ("continue", None),                    # relocked
                         ("stop", None)]                                          # searching again
    states = [m.value for m in msgs if m.type == "control_change" and m.control == 23]
    assert states == [1, 2, 1, 0]
    assert planner.locates == 3
    times = [m.time for m in msgs]
    assert times == sorted(times)
    # no clock between a stop and the next continue
    running = False
    for m in msgs:
        running = {"continue": True, "start": True, "stop": False}.get(m.type, running)
        assert m.type != "clock" or running


def test_start_at_the_beginning_and_bar_beat_control_changes_on_each_beat():
    config = MidiOutConfig(channel=3, beats_per_bar=3.0)
    ups = [update(k * 0.05, 0.0 + 2 * k * 0.05) for k in range(80)]   # 0 .. 7.9 beats
    _, msgs = run_planner(ups, config)
    assert [m.type for m in msgs[:2]] == ["control_change", "start"]
    ccs = [m for m in msgs if m.type == "control_change" and m.control in (20, 21, 22)]
    assert all(m.channel == 2 for m in ccs)
    triples = [(ccs[i].value, ccs[i + 1].value, ccs[i + 2].value) for i in range(0, len(ccs), 3)]
    bars_beats = [(msb * 128 + lsb, beat) for msb, lsb, beat in triples]
    assert bars_beats == [(1, 1), (1, 2), (1, 3), (2, 1), (2, 2), (2, 3), (3, 1), (3, 2), (3, 3)]
    # each beat's control changes go out with the clock that lands on it
    beat_times = [m.time for m in msgs if m.type == "control_change" and m.control == 22][1:]
    clock_times = [m.time for m in msgs if m.type == "clock"]
    assert beat_times == [clock_times[24 * k - 1] for k in range(1, len(beat_times) + 1)]


def test_in_real_time_the_clocks_arrive_at_the_tempo(tmp_path):
    """Updates every 50 ms at 150 bpm into the sink; the loopback port times the clocks' arrival."""
    port = Loopback("loopback")
    out = MidiClockOut(port, realtime=True)
    t0 = time.monotonic()
    beats = 6.0
    k = 0
    while k * 0.05 < 3.0:
        wait = t0 + k * 0.05 - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        out.emit(update(k * 0.05, beats + 2.5 * k * 0.05, bpm=150.0))
        k += 1
    out.close()
    clocks = np.array([t for t, m in port.arrived if m.type == "clock"])
    steady = clocks[clocks > clocks[0] + 0.5]
    rate = (len(steady) - 1) / (steady[-1] - steady[0])
    assert rate == pytest.approx(150 / 60 * 24, rel=0.05)
    assert port.arrived[-1][1].type == "stop"
    assert [m.type for _, m in port.arrived[:3]] == ["control_change", "songpos", "continue"]


def test_following_a_midi_performance_drives_the_clock(chroma_bundle, corpus_index, corpus, tmp_path, monkeypatch):
    """The runner with --midi-out: SPP at the lock matches the reported position, clocks count the beats."""
    import json

    from follower import midi_ports
    from follower.midi_sources import MidiFileSource, front_end_for
    from follower.runner import RunOptions, load, run
    from test_midi_input import write_performance

    port = Loopback("loopback")
    monkeypatch.setattr(midi_ports, "open_output", lambda name: port)
    perf = write_performance(corpus / "piece1.mid", tmp_path / "p.mid", tempo=1.2, start_s=3.0, seed=2)
    options = RunOptions(bundle_dir=str(chroma_bundle), index_path=str(corpus_index), osc_target="127.0.0.1:9",
                         jsonl_path=str(tmp_path / "p.jsonl"), console=False, midi_out="loopback")
    source = MidiFileSource(perf, front_end_for(chroma_bundle), realtime=False)
    assert run(source, load(options), options) == 0
    rows = [json.loads(line) for line in (tmp_path / "p.jsonl").read_text().splitlines()]
    msgs = [m for _, m in port.arrived]
    locks = [i for i, m in enumerate(msgs) if m.type == "songpos"]
    assert locks, [m.type for m in msgs[:10]]
    first = msgs[locks[0]]
    locked = next(r for r in rows if r["state"] == "following")
    assert first.pos == int(np.floor(locked["position_beats"] * 4))
    assert msgs[locks[0] + 1].type == "continue"
    assert msgs[-1].type == "stop"
    # clocks after the last locate stand for the beats followed since, within the look-ahead
    last = locks[-1]
    clocks = sum(m.type == "clock" for m in msgs[last:])
    final = [r for r in rows if r["state"] == "following"][-1]
    assert clocks / 24 == pytest.approx(final["position_beats"] - msgs[last].pos / 4, abs=0.5)


def _real_port_skip_reason():
    from follower.errors import FollowerError
    from follower.midi_ports import open_output

    try:
        port = open_output("virtual:scorefollow-test-probe")
    except FollowerError as e:
        return str(e)
    port.close()
    return None


def test_a_real_virtual_port_carries_the_clock():
    """Where the platform has a MIDI system: the sink sends to a virtual rtmidi port an input reads."""
    reason = _real_port_skip_reason()
    if reason:
        pytest.skip(f"no real MIDI port here: {reason}")
    from follower.midi_ports import open_input, port_names

    out = MidiClockOut("virtual:scorefollow-test", realtime=True)
    try:
        name = next(n for n in port_names()[0] if "scorefollow-test" in n)
        received = []
        inp = open_input(name)
        inp.callback = lambda m: received.append((time.monotonic(), m))
        t0 = time.monotonic()
        for k in range(40):
            time.sleep(max(0.0, t0 + k * 0.05 - time.monotonic()))
            out.emit(update(k * 0.05, 4.0 + 2 * k * 0.05))
    finally:
        out.close()
    time.sleep(0.2)
    inp.close()
    kinds = [m.type for _, m in received]
    assert kinds[:3] == ["control_change", "songpos", "continue"] and kinds[-1] == "stop"
    assert kinds.count("clock") == pytest.approx(24 * 2 * 40 * 0.05, abs=12)


def test_bad_ports_and_the_port_listing_are_one_line(corpus, chroma_bundle, corpus_index):
    """Without a MIDI system (or python-rtmidi, or such a port) the user reads one line naming the cause."""
    import subprocess
    import sys

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "follower.cli", *map(str, args)], capture_output=True,
                              text=True, timeout=120)

    r = cli("replay", corpus / "piece0.mid", "--fast", "--bundle", chroma_bundle, "--index", corpus_index,
            "--midi-out", "no such port")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    assert "no MIDI output port of that name" in lines[0] or "MIDI system" in lines[0] \
        or "python-rtmidi" in lines[0], lines[0]
    r = cli("midi-ports")
    if r.returncode == 0:
        assert "MIDI inputs" in r.stdout and "MIDI outputs" in r.stdout
    else:
        lines = r.stderr.strip().splitlines()
        assert r.returncode == 2 and len(lines) == 1 and "MIDI" in lines[0], r.stderr


def test_without_python_rtmidi_ports_say_how_to_get_it(monkeypatch):
    import sys

    from follower import midi_ports
    from follower.errors import MissingToolError

    monkeypatch.setitem(sys.modules, "rtmidi", None)  # import rtmidi now raises ImportError
    for call in (midi_ports.port_names, lambda: midi_ports.open_output("x"), lambda: midi_ports.open_input("x")):
        with pytest.raises(MissingToolError, match=r"pip install 'scorefollow\[midi\]'.*MIDI files .* work without"):
            call()
