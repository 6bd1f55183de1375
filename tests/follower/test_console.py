"""The console's live line (follower/console.py): its text and when it is written, on a terminal and off."""

import io
from types import SimpleNamespace

from follower.console import Console, line


def update(t, state="searching", piece=None, candidates=(), confidence=0.0, **position):
    fields = {"position_beats": None, "position_s": None, "tempo": None, "bpm": None}
    fields.update(position)
    return SimpleNamespace(t=t, state=state, piece=piece, candidates=list(candidates), confidence=confidence,
                           **fields)


def following(t, beats=72.0):
    return update(t, "following", "bach_bwv362", [("bach_bwv362", 3.1)], 0.91,
                  position_beats=beats, position_s=beats / 2, tempo=0.9, bpm=108.0)


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_the_line_reads_as_the_readme_shows_it():
    assert line(update(0.0)) == "    0.0s  searching"
    assert line(update(1.1, candidates=[("bach_bwv424", 0.7)], confidence=0.04)) == \
        "    1.1s  searching  best guess bach_bwv424 (0.04)"
    assert line(following(4.4)) == \
        "    4.4s  following  bach_bwv362  beat   72.0  (  36.0 s)  tempo x0.90 = 108 bpm  conf 0.91"
    twice = following(4.5)
    twice.also_at_beats = [8.0]  # the music heard is written out at beat 8 too
    assert line(twice).endswith("conf 0.91  also at beat 8.0")


def test_off_a_terminal_a_line_a_second_and_one_at_each_change():
    out = io.StringIO()
    console = Console(out)
    assert not console.tty
    for i in range(50):  # 2.5 s of searching, then following
        console.emit(update(round(i * 0.05, 2)))
    for i in range(50, 60):
        console.emit(following(round(i * 0.05, 2)))
    console.close()
    assert out.getvalue().splitlines() == [
        "    0.0s  searching", "    1.0s  searching", "    2.0s  searching",
        "    2.5s  following  bach_bwv362  beat   72.0  (  36.0 s)  tempo x0.90 = 108 bpm  conf 0.91"]


def test_on_a_terminal_one_line_is_rewritten_and_a_change_stays_on_screen():
    out = Terminal()
    console = Console(out)
    assert console.tty
    console.emit(update(0.0))
    console.emit(update(0.5))
    console.emit(following(0.6))
    console.close()
    assert out.getvalue() == ("\r" + "    0.0s  searching".ljust(100) + "\r" + "    0.5s  searching".ljust(100)
                              + "\n\r" + line(following(0.6)).ljust(100) + "\n")


def test_on_a_terminal_a_long_line_is_cut_to_one_row():
    out = Terminal()
    Console(out).emit(update(3.0, "following", "x" * 200, [], 0.5, position_beats=1.0, position_s=0.5, tempo=1.0,
                             bpm=120.0))
    assert out.getvalue().startswith("\r    3.0s  following  xxx") and len(out.getvalue()) == 1 + 120


def test_the_default_stream_is_stdout_when_made(capsys):
    console = Console()
    console.emit(update(0.0))
    assert capsys.readouterr().out == "    0.0s  searching\n"
