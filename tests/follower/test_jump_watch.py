"""The jump watch: the newest frames aligned against the whole locked piece, on rendered audio."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from follower.aligner import FineAligner, FineConfig, score_templates
from follower.bundle import load_bundle
from follower.engine import Engine, EngineConfig
from follower.features import FeatureConfig, spectrogram
from follower.index import load_index
from follower.jump_watch import JumpWatch
from follower.midi import load_midi

from conftest import have_fluidsynth, render, write_piece

FC = FeatureConfig()
FPS = FC.frame_rate_hz
LAG_S = FC.frame_size_samples / 2 / FC.sample_rate_hz  # a frame's centre is this far behind its newest sample


def _aligner(midi):
    score = load_midi(midi).pitched
    cfg = FineConfig()
    return FineAligner(score_templates(score["start_s"], score["end_s"], score["pitch"], FC, cfg), FPS, cfg)


def _watch(aligner, margin=FineConfig.watch_margin):
    c = aligner.config
    return JumpWatch(aligner, frames=c.watch_frames, margin=margin, far_s=c.max_disagree_s, updates=c.watch_updates)


def _play(watch, spec, own_of_s):
    """Feed every frame, the aligner's place given by ``own_of_s(frame time)``; (frame time, proposal) pairs."""
    out = []
    for i, frame in enumerate(spec):
        t = (i + 1) / FPS - LAG_S
        watch.listen(frame, bool(frame.max() >= 0.05), i + 1, own_of_s(t))
        to = watch.check(own_of_s(t), 1.0, i + 1)
        if to is not None:
            out.append((t, to))
    return out


@pytest.fixture(scope="module")
def jumped(corpus):
    """piece2 played to 16 s, then again from 3 s (real FluidSynth)."""
    if not have_fluidsynth():
        pytest.skip("FluidSynth or the TimGM6mb soundfont is absent")
    full = render(corpus / "piece2.mid")
    audio = np.concatenate([full[: 22050 * 16], full[22050 * 3: 22050 * 14]])
    return spectrogram(audio, 22050, FC), corpus / "piece2.mid"


def test_a_jump_back_is_seen_within_a_second_and_nothing_is_seen_before_it(jumped):
    spec, midi = jumped
    truth = lambda t: t if t < 16 else 3 + (t - 16)  # noqa: E731
    # an aligner that has not noticed: it keeps on from 16 s as if nothing happened
    proposals = _play(_watch(_aligner(midi)), spec, lambda t: t)
    assert proposals, "the jump was never seen"
    t, to = proposals[0]
    assert 16 < t < 17.2, proposals[:3]
    assert abs(to - truth(t)) < 0.3, (t, to)
    # an aligner on the right place is never moved, before the jump or after it
    assert _play(_watch(_aligner(midi)), spec[:int(16 * FPS)], truth) == []
    assert _play(_watch(_aligner(midi)), spec[int(16 * FPS):], lambda t: truth(t + 16)) == []


def test_a_move_says_where_the_jump_was(jumped):
    """The frames before the jump were played elsewhere: the engine weighs only those since it when the
    coarse path disputes the move (Engine._weigh_back), so the watch says from which frame they are."""
    spec, midi = jumped
    watch = _watch(_aligner(midi))
    assert watch.since_n == -1
    first = None
    for i, frame in enumerate(spec):
        t = (i + 1) / FPS - LAG_S
        watch.listen(frame, bool(frame.max() >= 0.05), i + 1, t)
        if watch.check(t, 1.0, i + 1) is not None:
            first = i + 1
            break
    assert first is not None, "the jump was never seen"
    # the far path's frames begin at the jump (16 s), give or take a chord's onset
    assert abs(watch.since_n / FPS - 16.0) <= 0.3, watch.since_n / FPS
    assert watch.since_n <= first


def test_a_literal_repeat_never_moves_it_and_of_two_copies_the_nearer_is_taken(tmp_path):
    """A piece whose second six seconds repeat its first: the two copies match alike, so an aligner
    on either stays; one that has gone astray is moved to the copy nearer to it, and says it guessed."""
    if not have_fluidsynth():
        pytest.skip("FluidSynth or the TimGM6mb soundfont is absent")
    roots = [0, 3, 4, 1, 5, 2, 6, 4, 0, 5, 3, 1]  # no two neighbours alike, no pair of them twice
    midi = write_piece(tmp_path / "twice.mid", seed=3, n_chords=36, roots=roots + roots + [2, 5, 1, 6, 3, 0] * 2,
                       melody=[0, 1, 2] * 12)
    spec = spectrogram(render(midi)[: 22050 * 12], 22050, FC)  # the first copy (12 beats of 0.5 s), then the second
    aligner = _aligner(midi)
    # following the first copy while the second plays, and the second while the first plays: never moved
    assert _play(_watch(aligner), spec[int(6.5 * FPS):], lambda t: t + 6.5 - 6.0) == []
    assert _play(_watch(aligner), spec[int(0.5 * FPS):int(5.5 * FPS)], lambda t: t + 0.5 + 6.0) == []
    # astray in the last third (14.5 s on) while the first copy plays from 1 s: the second copy (6 s on
    # from the first) is the nearer of two places that sound alike
    watch = _watch(aligner)
    proposals = _play(watch, spec[int(1.0 * FPS):int(5.5 * FPS)], lambda t: t + 1.0 + 13.5)
    assert proposals, "never moved"
    t, to = proposals[0]
    assert abs(to - (t + 1.0 + 6.0)) < 0.3, proposals[:3]
    assert watch.tied


def test_the_engine_is_back_on_a_jump_sooner_with_the_watch(chroma_bundle, corpus, corpus_index):
    if not have_fluidsynth():
        pytest.skip("FluidSynth or the TimGM6mb soundfont is absent")
    full = render(corpus / "piece2.mid")
    audio = np.concatenate([full[: 22050 * 16], full[22050 * 3: 22050 * 14]])  # 16 s, then back to 3 s
    bundle, index = load_bundle(chroma_bundle), load_index(corpus_index)
    back_s = {}
    for margin in (0.0, FineConfig.watch_margin):
        engine = Engine(bundle, index, input_rate_hz=22050,
                        config=EngineConfig(fine=dataclasses.replace(FineConfig(), watch_margin=margin)))
        engine.warm_up()
        updates = [u for i in range(0, len(audio), 700) for u in engine.push(audio[i:i + 700]) if u.t >= 16]
        right = [u.piece == "piece2" and u.position_s is not None and abs(u.position_s - (3 + u.t - 16)) < 0.5
                 for u in updates]
        # back for good: the first update from which every one is right for two seconds
        first = next(i for i in range(len(right)) if all(right[i:i + int(2 * FPS)]))
        back_s[margin] = updates[first].t - 16
    assert back_s[FineConfig.watch_margin] <= 1.5, back_s
    assert back_s[FineConfig.watch_margin] < back_s[0.0], back_s


def test_the_search_is_bounded_by_its_span_not_by_the_piece():
    """A long piece (random chords as templates, the templates standing for the audio): each kept
    frame is compared with the score within ``span_s`` of the aligner's place only: a jump within it
    is found, one further is not (the coarse path, which searches the whole index, finds it)."""
    rng = np.random.default_rng(1)
    chords = rng.random((300, FC.n_bins)).astype(np.float32) ** 4  # one second each
    t = np.repeat(chords / np.linalg.norm(chords, axis=1, keepdims=True), int(FPS), axis=0)
    aligner = FineAligner(t, FPS, FineConfig())
    for jump_to_s, seen in ((150.0 - 20.0, True), (150.0 - 80.0, False)):
        aligner.reset(150.0)
        watch = JumpWatch(aligner, frames=16, margin=2.0, far_s=2.0, updates=3, span_s=60.0)
        frames = t[int(jump_to_s * FPS):int((jump_to_s + 2.0) * FPS)]
        moved = None
        for i, frame in enumerate(frames):
            watch.listen(frame, True, i + 1, aligner.position_s + i / FPS)
            assert len(watch._rows[-1][3]) <= 2 * round(60 * FPS) + 1
            moved = watch.check(aligner.position_s + i / FPS, 1.0, i + 1) or moved
        found = moved is not None and abs(moved - (jump_to_s + 2.0)) < 0.5
        assert found == seen, moved


def test_frames_that_sound_like_nothing_in_the_piece_move_nothing():
    """A breath, a bow change, noise: frames that match no place well favour every place a little
    over the aligner's (which they do not match either). The watch moves only to a place whose notes
    the frames since the change sound like; and never while the aligner waits on a held chord."""
    rng = np.random.default_rng(2)
    chords = rng.random((60, FC.n_bins)).astype(np.float32) ** 4
    t = np.repeat(chords / np.linalg.norm(chords, axis=1, keepdims=True), int(FPS), axis=0)
    aligner = FineAligner(t, FPS, FineConfig())
    noise = rng.random((int(3 * FPS), FC.n_bins)).astype(np.float32)
    watch = _watch(aligner, margin=0.5)
    assert _play(watch, noise, lambda s: 20.0 + s) == []
    # the aligner waiting at 20 s while the music sounds at 40 s: no decision
    held = t[int(40 * FPS):int(43 * FPS)]
    assert _play(_watch(aligner), held, lambda s: 20.0) == []
    # the same music with the aligner moving on at 20 s: it is moved to 40 s
    moved = _play(_watch(aligner), held, lambda s: 20.0 + s)
    assert moved and abs(moved[0][1] - (40.0 + moved[0][0])) < 0.3, moved[:2]


def _chord_piece(n_s: int, seed: int, copies=()):
    """Random chords of one second each as the piece's templates (the templates standing for the audio);
    ``copies``: (from_s, to_s, length_s) spans written out again."""
    rng = np.random.default_rng(seed)
    chords = rng.random((n_s, FC.n_bins)).astype(np.float32) ** 4
    for a, b, n in copies:
        chords[b:b + n] = chords[a:a + n]
    return np.repeat(chords / np.linalg.norm(chords, axis=1, keepdims=True), int(FPS), axis=0)


def _confirmed(templates, frames, own_of_s, confirm, *, margin=100.0, confirm_margin=0.5):
    """Proposals of a watch whose frames alone never decide (``margin``), with the engine's second view
    ``confirm``; (frame time, proposal) pairs."""
    aligner = FineAligner(templates, FPS, FineConfig())
    watch = JumpWatch(aligner, frames=16, margin=margin, far_s=2.0, updates=3, confirm_margin=confirm_margin,
                      confirm=confirm)
    out = []
    for i, frame in enumerate(frames):
        t = i / FPS
        watch.listen(frame, True, i + 1, own_of_s(t))
        to = watch.check(own_of_s(t), 1.0, i + 1)
        if to is not None:
            out.append((t, to))
    return out, watch


def test_a_lead_the_frames_alone_do_not_settle_moves_where_the_embedding_names_the_same_place():
    """The engine's second view (the newest audio's embedding, Engine._tail_place) settles a lead of the
    frames' paths below ``margin``: the aligner moves where both name the place, never where the
    embedding names no place or one the frames' paths do not lead at."""
    t = _chord_piece(60, seed=4)
    frames = t[int(20 * FPS):int(23 * FPS)]  # the player at 20 s; the aligner moving on at 40 s
    own = lambda s: 40.0 + s  # noqa: E731
    truth = lambda s: 20.0 + s + 0.5 / FPS  # noqa: E731
    moved, _ = _confirmed(t, frames, own, lambda own_s, tempo: truth((own_s - 40.0)))
    assert moved and abs(moved[0][1] - truth(moved[0][0])) < 0.3, moved[:2]
    assert moved[0][0] < 1.5, moved[0]  # within the watch's frames and updates of the jump
    assert _confirmed(t, frames, own, lambda own_s, tempo: None)[0] == []
    # the embedding names a place 10 s from where the frames lead: no agreement, no move
    assert _confirmed(t, frames, own, lambda own_s, tempo: truth(own_s - 40.0) + 10.0)[0] == []
    # the frames' own lead is still asked for: at a confirm_margin they do not reach, nothing moves
    assert _confirmed(t, frames, own, lambda own_s, tempo: truth(own_s - 40.0), confirm_margin=1e3)[0] == []


def test_of_two_copies_the_one_the_embedding_names_is_taken():
    """Music written out twice (20-24 s again at 40-44 s), the aligner astray at 50 s: the frames
    alone take the nearer copy (40 s on) and say they guessed; with the embedding naming the first
    copy and the frames' lead below ``margin``, the first is taken, and it is no guess."""
    t = _chord_piece(60, seed=5, copies=[(20, 40, 4)])
    frames = t[int(20 * FPS):int(23 * FPS)]
    own = lambda s: 50.0 + s  # noqa: E731
    alone, watch = _confirmed(t, frames, own, None, margin=2.0)
    assert alone and abs(alone[0][1] - (40.0 + alone[0][0])) < 0.3 and watch.tied, alone[:2]
    first = lambda own_s, tempo: 20.0 + (own_s - 50.0)  # noqa: E731
    named, watch = _confirmed(t, frames, own, first)
    assert named and abs(named[0][1] - (20.0 + named[0][0])) < 0.3 and not watch.tied, named[:2]


def test_the_engine_asks_the_embedding_only_where_its_bundle_has_the_encoder_for_windows_filling(
        chroma_bundle, corpus, corpus_index, tmp_path):
    """With the shipped bundle (which has that encoder) a lock's watch asks Engine._tail_place, whose
    answer is a place of the locked piece or None; the test bundle has no such encoder, and its watch
    is the frames' alone, as is any watch with ``watch_confirm_margin`` 0."""
    from follower.errors import ConfigError

    if not have_fluidsynth():
        pytest.skip("FluidSynth or the TimGM6mb soundfont is absent")
    shipped = Path(__file__).resolve().parents[2] / "exported" / "default"
    audio = render(corpus / "piece2.mid")[: 22050 * 12]
    cases = [(load_bundle(chroma_bundle), load_index(corpus_index), FineConfig(), False),
             (None, None, dataclasses.replace(FineConfig(), watch_confirm_margin=0.0), False),
             (None, None, FineConfig(), True)]
    if not (shipped / "audio_encoder.partial.onnx").is_file():
        cases = cases[:1]
    for bundle, index, fine, asks in cases:
        if bundle is None:
            from follower.index import build_index

            bundle = load_bundle(shipped)
            index = build_index([corpus], bundle, hop_frames=4, progress=False)
        engine = Engine(bundle, index, input_rate_hz=22050, config=EngineConfig(fine=fine))
        engine.warm_up()
        for i in range(0, len(audio), 1024):
            engine.push(audio[i:i + 1024])
        assert engine.watch is not None, "never locked"
        assert (engine.watch.confirm is not None) == asks
        if asks:
            assert engine.watch.confirm_margin == fine.watch_confirm_margin < engine.watch.margin
            place = engine._tail_place(engine.aligner.position_s + 30.0, float(engine.tracker.tempo))
            assert place is None or 0.0 <= place <= float(index.duration_s[engine.piece]) + 2.0
        else:
            assert engine.watch.confirm_margin == engine.watch.margin
    with pytest.raises(ConfigError, match="watch_tail_s"):
        dataclasses.replace(FineConfig(), watch_tail_s=0.0)
