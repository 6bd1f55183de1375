"""Benchmark and study modules run as commands: bad input is one line and a non-zero exit."""

import subprocess
import sys

import pytest

from follower.cliutil import module_main
from follower.errors import BundleError


def test_module_main_turns_errors_into_one_line_and_an_exit_code(capsys, monkeypatch):
    monkeypatch.delenv("SCOREFOLLOW_DEBUG", raising=False)

    def missing(argv):
        raise BundleError("b: not a model bundle")

    def no_file(argv):
        open("/nonexistent/x.json")

    def bug(argv):
        raise ZeroDivisionError("oops")

    assert module_main(missing) == 2 and capsys.readouterr().err == "error: b: not a model bundle\n"
    assert module_main(no_file) == 2 and "No such file" in capsys.readouterr().err
    assert module_main(bug) == 3
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "ZeroDivisionError" in err and "SCOREFOLLOW_DEBUG=1" in err
    assert module_main(lambda argv: 0) == 0
    monkeypatch.setenv("SCOREFOLLOW_DEBUG", "1")
    with pytest.raises(ZeroDivisionError):
        module_main(bug)


@pytest.mark.parametrize("args", [["benchmarks.speed", "replay", "missing.ogg"],
                                  ["studies.early_id", "--traces", "missing.json"],
                                  ["studies.validation_replay", "--report", "missing.json"],
                                  ["studies.validation_replay", "--material", "missing", "--index", "i.npz"],
                                  ["studies.width_figure", "missing.json", "missing.json", "-o", "w.png"],
                                  ["studies.repeat_positions", "missing"]])
def test_a_module_given_a_missing_file_says_so_in_one_line(args):
    r = subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2
    assert r.stderr.strip().count("\n") == 0 and r.stderr.startswith("error: ") and "missing" in r.stderr
    assert "Traceback" not in r.stderr
