"""Falling behind the audio: the output stays within the lag bound, says so, and recovers."""

import json
import time

import pytest

from follower.audio_io import FileSource
from follower.pacing import MAX_LEVEL, RECOVER_S, Pacer
from follower.runner import RunOptions, load, run
from follower.runstats import Stats


def test_each_time_behind_the_pacer_strides_more_up_to_its_limit():
    p = Pacer(0.25, 0.05)
    assert p.level == 1 and p.enough(0.01)
    assert not p.behind(0.25) and p.behind(0.26)
    p.fell_behind(0.0)
    assert p.level == 2 and not p.enough(0.07) and p.enough(0.1)
    for t in (1.0, 2.0, 3.0):
        p.fell_behind(t)
    assert p.level == MAX_LEVEL == p.max_level


def test_the_pacer_goes_back_to_every_update_only_when_the_updates_would_fit():
    p = Pacer(0.25, 0.05)
    p.fell_behind(0.0)
    p.fell_behind(0.0)
    # busy 40 % of the time at level 4: twice the work (80 %) would not leave the headroom
    t = 0.0
    while t < 3 * RECOVER_S:
        t += 0.2
        p.processed(t, 0.08)
    assert p.level == 4
    # the load went: 5 % busy, so the level halves every RECOVER_S
    for _ in range(int(2 * RECOVER_S / 0.2) + 2):
        t += 0.2
        p.processed(t, 0.01)
    assert p.level == 1


def test_slow_processing_keeps_the_output_within_half_a_second_reports_it_and_recovers(
        chroma_bundle, corpus_index, rendered, tmp_path, capsys):
    """Updates take 3x their hop for four seconds of audio (a machine whose cores are taken): every
    update still goes out within 0.5 s of its audio, the skipping is counted in the JSON lines and in
    --stats, and once the updates are fast again the follower computes every one of them."""
    slow = (2.0, 6.0)  # audio seconds during which each update costs 150 ms (the hop is 50 ms)
    make_engine = load(RunOptions(bundle_dir=str(chroma_bundle), index_path=str(corpus_index)))

    def make_slow_engine(rate_hz, **kw):
        engine = make_engine(rate_hz, **kw)
        first = getattr(engine, "main", engine)  # the engine at the written tempo (follower.two_speeds)
        update = first._update

        def slow_update():
            if slow[0] <= first._n / first.fps < slow[1]:
                time.sleep(0.15)
            return update()

        first._update = slow_update
        return engine

    out = tmp_path / "u.jsonl"
    options = RunOptions(bundle_dir=str(chroma_bundle), index_path=str(corpus_index), osc_target="127.0.0.1:9",
                         console=False, jsonl_path=str(out), stats=True, max_lag_s=0.25)
    stats = Stats()
    assert run(FileSource(rendered["path"], realtime=True), make_slow_engine, options, stats=stats) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert max(row["lag_ms"] for row in rows) <= 500, sorted(row["lag_ms"] for row in rows)[-5:]
    during = [row for row in rows if slow[0] + 0.5 <= row["t"] < slow[1]]
    assert during[-1]["skipped"] > during[0]["skipped"] > 0  # counted as it happens
    assert stats.skipped == rows[-1]["skipped"] > 0 and stats.behind >= 1 and stats.max_stride > 1
    # recovered: the last two seconds have every update (one per 50 ms hop) and skip nothing more
    tail = [row for row in rows if row["t"] >= rows[-1]["t"] - 2.0]
    assert tail[0]["skipped"] == tail[-1]["skipped"]
    assert len(tail) >= 2.0 * 20 - 2
    err = capsys.readouterr().err
    assert "processing cannot keep up with the audio" in err
    assert f"updates skipped {stats.skipped} " in err and "output lag p99" in err
    assert rows[-1]["t"] == pytest.approx(rendered["duration_s"], abs=0.1)
