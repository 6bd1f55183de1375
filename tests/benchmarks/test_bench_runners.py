"""benchmarks.runners.run_child: each system's peak memory is its own, not that of the process starting it."""

import sys

from benchmarks.runners import run_child

GROW_100_MIB = "x = bytearray(100 * 2**20)\nfor i in range(0, len(x), 4096):\n    x[i] = 1\nprint('done')"


def test_peak_memory_is_the_childs_own_even_when_the_parent_is_large(tmp_path):
    ballast = bytearray(400 * 2**20)  # a run_all that has rendered material holds hundreds of MiB
    for i in range(0, len(ballast), 4096):
        ballast[i] = 1
    small = run_child([sys.executable, "-c", "pass"], tmp_path / "small.log")
    grown = run_child([sys.executable, "-c", GROW_100_MIB], tmp_path / "grown.log")
    assert small["rc"] == grown["rc"] == 0
    assert small["peak_rss_mib"] < 100  # a bare interpreter, far below the parent's 400 MiB
    assert 100 <= grown["peak_rss_mib"] < 300
    assert (tmp_path / "grown.log").read_text().strip() == "done"  # the command's output reaches its log
    del ballast


def test_exit_code_and_a_missing_command(tmp_path):
    assert run_child([sys.executable, "-c", "import sys; sys.exit(3)"], tmp_path / "a.log")["rc"] == 3
    missing = run_child([str(tmp_path / "no-such-program")], tmp_path / "b.log")
    assert missing["rc"] != 0
    assert "no-such-program" in (tmp_path / "b.log").read_text()
