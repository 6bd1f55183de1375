"""benchmarks.speed replay: the real-time factor of what replay runs, the pushing thread's and the process's."""

from pathlib import Path

from benchmarks.speed import replay_cost

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "chorale_excerpt.ogg"


def test_replay_cost_counts_the_pushing_thread_and_every_thread():
    for slow_players in (True, False):
        rtf = replay_cost("exported/default", None, [EXAMPLE], 131072, 1, slow_players)
        assert set(rtf) == {"thread", "process", "start_ms"} and len(rtf["thread"]) == 1
        # the process's CPU holds the pushing thread's (and the note templates' helper thread's)
        assert 0 < rtf["thread"][0] <= rtf["process"][0] + 1e-3
        assert rtf["start_ms"] == []  # one file: only the first engine, which pays the process's start
    # a second file's engine: its start is timed
    rtf = replay_cost("exported/default", None, [EXAMPLE, EXAMPLE], 131072, 1, True)
    assert len(rtf["start_ms"]) == 1 and rtf["start_ms"][0] > 0
