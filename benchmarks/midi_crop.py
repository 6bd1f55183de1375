"""Cut a MIDI file so that it starts at a given moment (mido only).

Matchmaker's online time warping starts at the beginning of its score. Our
excerpts start mid-piece, so matchmaker is given the score from the excerpt's
first moment on: it is told the piece *and* where the performance starts, which
our follower must find by itself.
"""

from __future__ import annotations

from pathlib import Path

from follower.midi import load_midi

KEEP_STATE = ("set_tempo", "time_signature", "key_signature", "program_change", "control_change")


def crop_midi(src: Path, start_s: float, dst: Path, end_s: float | None = None) -> float:
    """Write ``src`` from ``start_s`` (MIDI seconds) on to ``dst``; returns the exact
    crop time in seconds of ``src`` (the start is rounded to a whole tick).

    Notes that began before the cut are dropped (with their note-offs); tempo, meter,
    key, program and controller state at the cut are restated at tick 0. With
    ``end_s``, notes starting after it are dropped too (a shorter score is quicker
    for matchmaker to synthesise; callers leave a generous margin).
    """
    import mido

    score = load_midi(src)
    mid = mido.MidiFile(str(src), clip=True)
    start_tick = int(round(float(score.seconds_to_beats(start_s)) * mid.ticks_per_beat))
    end_tick = None if end_s is None else int(round(float(score.seconds_to_beats(end_s)) * mid.ticks_per_beat))
    out = mido.MidiFile(type=mid.type if mid.type in (0, 1) else 1, ticks_per_beat=mid.ticks_per_beat)
    for track in mid.tracks:
        tick, state, kept, open_notes = 0, {}, [], set()
        for msg in track:
            tick += msg.time
            if msg.type == "end_of_track":
                continue
            if tick < start_tick:
                if msg.type in KEEP_STATE:
                    key = (msg.type, getattr(msg, "channel", None), getattr(msg, "control", None))
                    state[key] = msg
                continue
            if msg.type == "note_on" and msg.velocity > 0:
                if end_tick is not None and tick > end_tick:
                    continue
                open_notes.add((msg.channel, msg.note))
            elif msg.type in ("note_off", "note_on"):
                if (msg.channel, msg.note) not in open_notes:
                    continue  # the note began before the cut
                open_notes.discard((msg.channel, msg.note))
            elif end_tick is not None and tick > end_tick:
                continue
            kept.append((tick - start_tick, msg))
        new = mido.MidiTrack()
        last = 0
        for msg in state.values():
            new.append(msg.copy(time=0))
        for t, msg in kept:
            new.append(msg.copy(time=t - last))
            last = t
        new.append(mido.MetaMessage("end_of_track", time=0))
        out.tracks.append(new)
    Path(dst).parent.mkdir(parents=True, exist_ok=True)
    out.save(str(dst))
    return float(score.beats_to_seconds(start_tick / mid.ticks_per_beat))
