"""The soak's per-update cost figures: thread CPU time beside wall time, windows, the machine's load.

On a shared machine the wall time of an update follows the other users' load; the
processing thread's CPU time (``time.thread_time``) is the follower's own cost. These
tests drive :class:`benchmarks.soak.Recorder` by hand (no audio device) with known work
between updates and check what the summary and its markdown say.
"""

import threading
import time
import types

import numpy as np
import pytest

from benchmarks import soak
from follower.runstats import Stats


def _update(t: float):
    return types.SimpleNamespace(t=t, latency_ms=4.0, state="following", piece="a")


def _spin(seconds: float) -> None:
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass


def test_cpu_time_counts_the_threads_work_and_not_its_waiting():
    rec = soak.Recorder(10, ["a"], Stats())
    rec.emit(_update(0.0))
    _spin(0.03)              # 30 ms of work on this thread
    rec.emit(_update(0.05))
    time.sleep(0.05)         # 50 ms of waiting: wall time passes, CPU time does not
    rec.emit(_update(0.10))
    assert np.isnan(rec.cpu_ms[0])  # nothing before the first update to measure from
    assert rec.cpu_ms[1] == pytest.approx(30, abs=5)
    assert rec.cpu_ms[2] < 5
    assert rec.wall[2] - rec.wall[1] >= 0.05


def test_another_threads_work_is_not_counted():
    rec = soak.Recorder(10, ["a"], Stats())
    rec.emit(_update(0.0))
    other = threading.Thread(target=_spin, args=(0.05,))
    other.start()
    other.join()
    rec.emit(_update(0.05))
    assert rec.cpu_ms[1] < 10


def _recorded_run(cpu_first: float, cpu_last: float, minutes: int = 30):
    """A run of ``minutes`` at 20 updates a second: known CPU and wall per update, load 10 then 2."""
    n = minutes * 60 * 20
    rec = soak.Recorder(n + 10, ["a"], Stats())
    rec.n = n
    rec.t[:n] = np.arange(n) * 0.05
    rec.wall[:n] = 1000.0 + rec.t[:n]
    first = rec.t[:n] < minutes * 60 / 2
    rec.cpu_ms[:n] = np.where(first, cpu_first, cpu_last)
    rec.cpu_ms[0] = np.nan
    rec.latency[:n] = np.where(first, 40.0, 10.0)  # the wall time fell as the machine's load fell
    rec.t_start = 1000.0
    secs = np.arange(minutes * 60 + 1, dtype=np.float64)
    rec.rss_mb = [(1000.0 + s, 300.0, 10.0 if s < minutes * 30 else 2.0) for s in secs]
    rec.drops = [(1000.0 + s, 0, 0, 0) for s in secs]
    return rec


def test_summary_reports_cpu_and_wall_per_window_and_the_load():
    rec = _recorded_run(cpu_first=5.0, cpu_last=5.5)
    rec.drops = [(w, 0, 0, 100 if w >= 1030 else 0) for w, *_ in rec.drops]  # 100 skipped at 30 s, none later
    segments = [soak.Segment("piece", "a", 0.0, 1800.0)]
    s = soak.summarise(rec, segments, 1800.0, ["a"], 30, 60.0, None, rec.stats)
    assert s["window_s"] == 600.0
    assert s["latency_p99_first_window_ms"] == 40.0 and s["latency_p99_last_window_ms"] == 10.0
    assert s["cpu_p50_first_window_ms"] == 5.0 and s["cpu_p99_last_window_ms"] == 5.5
    assert s["cpu_p50_ms"] == pytest.approx(5.0, abs=0.5)
    assert s["load_first_window"] == 10.0 and s["load_last_window"] == 2.0
    assert s["load_min"] == 2.0 and s["load_max"] == 10.0 and s["load_mean"] == pytest.approx(6.0, abs=0.1)
    # one reading per minute begun (0..29)
    assert len(s["load_by_minute"]) == 30 and s["load_by_minute"][0] == 10.0 and s["load_by_minute"][-1] == 2.0
    md = soak.markdown(s, "python -m benchmarks.soak --minutes 30")
    assert "| first / last 10 min: CPU p50, p99 | 5.0, 5.0 / 5.5, 5.5 ms (CPU p99 change +10 %) |" in md
    assert "| first / last 10 min: wall p50, p99 | 40.0, 40.0 / 10.0, 10.0 ms |" in md
    assert "| first / last 10 min: machine load average; updates skipped | 10.0 / 2.0; 100 / 0 |" in md
    # 5 ms (5.5 ms) of CPU per 50 ms of audio
    assert s["cpu_share_first_window"] == pytest.approx(0.1, rel=0.01)
    assert s["cpu_share_last_window"] == pytest.approx(0.11, rel=0.01)
    assert "mean (min-max) | 6.0 (2.0-10.0)" in md


def test_a_run_without_cpu_readings_says_so_instead_of_failing():
    rec = _recorded_run(cpu_first=np.nan, cpu_last=np.nan, minutes=3)
    s = soak.summarise(rec, [soak.Segment("piece", "a", 0.0, 180.0)], 180.0, ["a"], 3, 30.0, None, rec.stats)
    assert s["cpu_p99_ms"] is None and s["cpu_p99_first_window_ms"] is None
    assert "CPU p99 change n/a" in soak.markdown(s, "cmd")


def test_report_rewrites_the_docs_block_from_a_saved_summary(tmp_path, monkeypatch, capsys):
    import json

    from benchmarks import paths

    rec = _recorded_run(cpu_first=5.0, cpu_last=5.0, minutes=3)
    rec.state[100:rec.n] = soak.STATES.index("following")  # searching for 5 s, then a lock: one change
    rec.piece[100:rec.n] = 0
    s = soak.summarise(rec, [soak.Segment("piece", "a", 0.0, 180.0)], 180.0, ["a"], 3, 30.0, None, rec.stats)
    assert s["state_changes"] == 1
    s.update(exit_code=0, command="python -m benchmarks.soak --minutes 3", finished_utc="2026-12-02 15:00 UTC")
    saved = tmp_path / "summary.json"
    saved.write_text(json.dumps(s))
    (tmp_path / "benchmarks.md").write_text("# B\n\n<!-- generated:soak -->\nold\n<!-- /generated:soak -->\nafter\n")
    monkeypatch.setattr(paths, "docs_dir", lambda: tmp_path)
    assert soak.main(["--report", str(saved), "--doc"]) == 0
    doc = (tmp_path / "benchmarks.md").read_text()
    assert "old" not in doc and doc.endswith("<!-- /generated:soak -->\nafter\n")
    assert "- Command: `python -m benchmarks.soak --minutes 3`" in doc and "run finished 2026-12-02 15:00 UTC" in doc
    assert "| changes of state or piece | 1 (1 per programme loop) |" in doc
    assert "| blocks dropped / input overflows | 0 / 0 |" in capsys.readouterr().out


def test_report_of_something_else_is_one_line_and_exit_2(tmp_path, capsys):
    bad = tmp_path / "x.json"
    bad.write_text("[1, 2]")
    assert soak.main(["--report", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --report") and err.count("\n") == 1


def test_report_recomputes_the_figures_from_the_saved_updates(tmp_path, capsys):
    import json

    rec = _recorded_run(cpu_first=5.0, cpu_last=6.0, minutes=3)
    segments = [soak.Segment("piece", "a", 0.0, 180.0)]
    full = soak.summarise(rec, segments, 180.0, ["a"], 3, 30.0, None, rec.stats)
    rec.save(tmp_path / "updates.npz")
    # a summary written by an older version: no CPU figures, but the run's counters and programme
    old = {k: v for k, v in full.items() if not k.startswith("cpu")}
    old.update(exit_code=0, pieces=["a"], segments=[g.__dict__ for g in segments], warmup_s=30.0)
    (tmp_path / "summary.json").write_text(json.dumps(old))
    assert soak.main(["--report", str(tmp_path / "summary.json")]) == 0
    again = soak.resummarise(old, tmp_path / "updates.npz")
    for key in ("cpu_p99_first_window_ms", "cpu_p99_last_window_ms", "cpu_share", "latency_p99_ms",
                "rss_growth_after_warmup_mb", "load_mean", "lag_p99_ms", "recognition", "state_changes"):
        assert again[key] == full[key], key
    assert "| first / last 1 min: CPU p50, p99 | 5.0, 5.0 / 6.0, 6.0 ms (CPU p99 change +20 %) |" \
        in capsys.readouterr().out
