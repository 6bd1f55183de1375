"""While following, the follower names the other places of the piece that play what it heard: music
written out twice cannot be told apart until it differs (follower.other_places)."""

from __future__ import annotations

import numpy as np
import pytest

from follower.other_places import MIN_APART_S, RECHECK_S, OtherPlaces

from conftest import have_fluidsynth, render, write_piece
from test_start_prior import A, B, C, SECTION_S, _notes  # sections of 10 s, each 20 three-note chords of 0.5 s


def _follow(others, notes, positions, t0=0.0, update_s=0.05, tempo=1.0):
    """The places named at each update of a player heard at ``positions`` (one per update)."""
    return [others.places(t0 + k * update_s, 0, notes, p, tempo) for k, p in enumerate(positions)]


def test_the_other_statement_is_named_until_the_music_differs():
    notes = _notes(A, A, B, C)                                # A written out twice, then B and C
    played = SECTION_S + 3.0 + 0.05 * np.arange(200)          # from 3 s into the second A, 10 s on
    out = _follow(OtherPlaces(window_s=2.1), notes, played)
    in_second_a = played < 2 * SECTION_S
    for p, places in zip(played[in_second_a], np.array(out, dtype=object)[in_second_a]):
        assert len(places) == 1 and places[0] == pytest.approx(p - SECTION_S, abs=0.06)
    # into B (where the first A went on into the second): no other place, once enough of B is heard
    assert all(places == [] for p, places in zip(played, out) if p > 2 * SECTION_S + 2.0)


def test_a_unique_place_names_none_and_a_new_placement_searches_again():
    notes = _notes(A, A, B, C)
    others = OtherPlaces(window_s=2.1)
    assert all(p == [] for p in _follow(others, notes, 2 * SECTION_S + 3.0 + 0.05 * np.arange(40)))  # in B
    # the reported place moves to the first A (a jump): the second A is named from that update on
    t0 = 40 * 0.05
    first = others.places(t0, 0, notes, 4.0, 1.0)
    assert first == [pytest.approx(4.0 + SECTION_S, abs=0.06)]
    # not following (None), then following another piece: everything starts again
    assert others.places(t0 + 0.05, None, notes, 4.05, 1.0) == []
    assert others.places(t0 + 0.1, 1, _notes(B, C), 4.1, 1.0) == []


def test_one_search_per_placement_then_checks_of_the_places_found(monkeypatch):
    import follower.other_places as op

    calls = []
    real = op.lag_overlaps
    monkeypatch.setattr(op, "lag_overlaps", lambda *a, **k: calls.append(len(a[4])) or real(*a, **k))
    _follow(OtherPlaces(window_s=2.1), _notes(A, A, B), SECTION_S + 3.0 + 0.05 * np.arange(40))  # 2 s of audio
    searches = [n for n in calls if n > 10]
    assert len(searches) == 1 and searches[0] > 500       # every lag of the piece, once
    assert len(calls) - 1 == 2 / RECHECK_S - 1             # then a check every RECHECK_S (the first at 0.5 s)
    assert MIN_APART_S >= 2 * 0.5                           # another place is never within a report's tolerance


def test_the_engine_names_the_other_statement_of_a_rendered_piece(chroma_bundle, tmp_path):
    """A piece whose opening twelve beats are written out twice, heard from inside the second statement:
    while the music is the same, the update names the statement it does not report; once the music
    has gone on into what follows only the second statement, none."""
    if not have_fluidsynth():
        pytest.skip("FluidSynth or the TimGM6mb soundfont is absent")
    from follower.bundle import load_bundle
    from follower.engine import FOLLOWING, Engine
    from follower.index import build_index

    roots = [0, 3, 4, 1, 5, 2, 6, 4, 0, 5, 3, 1]
    rest = [2, 5, 1, 6, 3, 0, 4, 2, 6, 1, 5, 3, 0, 2, 4, 6, 1, 3, 5, 0]
    corpus = tmp_path / "corpus"
    write_piece(corpus / "twice.mid", seed=3, n_chords=44, roots=roots + roots + rest, melody=[0, 1, 2] * 14 + [0, 1])
    for i in range(3):
        write_piece(corpus / f"other{i}.mid", seed=200 + i)
    bundle = load_bundle(chroma_bundle)
    index = build_index([corpus], bundle, hop_frames=2, progress=False)
    start_s = 7.0                                         # 1 s into the second statement (6-12 s)
    audio = render(corpus / "twice.mid")[int(start_s * 22050):]
    engine = Engine(bundle, index, input_rate_hz=22050)
    updates = [u for u in engine.push(audio, last=True) if u.state == FOLLOWING and u.piece == "twice"]
    assert updates, "never followed"
    same = [u for u in updates if start_s + u.t < 11.5]   # the second statement still playing
    assert same and all(len(u.also_at_s) == 1 and abs(abs(u.also_at_s[0] - u.position_s) - 6.0) < 0.5
                        for u in same)
    later = [u for u in updates if start_s + u.t > 15.0]  # 3 s into what only follows the second
    assert later and all(u.also_at_s == [] for u in later)
    assert all(len(u.also_at_beats) == len(u.also_at_s) for u in updates)
