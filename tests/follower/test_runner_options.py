"""RunOptions from the command line, and load()/run() driven by options alone (no argparse, no audio device)."""

import argparse
import dataclasses
import json

import numpy as np
import pytest
import soundfile as sf

from follower import listen_cli, replay_cli
from follower.errors import ConfigError
from follower.osc import DEFAULT_OSC
from follower.paths import DEFAULT_BUNDLE
from follower.runner import RunOptions, load, run


def parse(*argv):
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers()
    replay_cli.register(sub)
    listen_cli.register(sub)
    return parser.parse_args(list(argv))


def options(*argv):
    return RunOptions.from_args(parse("replay", "take.wav", *argv))


def test_defaults_of_the_command_line_are_those_of_the_options():
    assert options() == RunOptions()
    o = options()
    assert (o.bundle_dir, o.index_path, o.osc_target, o.jsonl_path) == (DEFAULT_BUNDLE, None, DEFAULT_OSC, None)
    assert o.console and not o.stats
    assert (o.stride_frames, o.duration_s, o.onnx_threads) == (1, None, 1)


def test_each_shared_option_lands_in_its_field():
    o = options("--bundle", "b", "--index", "i.index.npz", "--osc", "10.0.0.2:7000", "--jsonl", "out.jsonl",
                "--stats", "--stride", "3", "--duration", "2.5", "--threads", "2")
    assert o == RunOptions(bundle_dir="b", index_path="i.index.npz", osc_target="10.0.0.2:7000",
                           jsonl_path="out.jsonl", console=True, stats=True, stride_frames=3, duration_s=2.5,
                           onnx_threads=2)


def test_listen_and_replay_build_the_same_options():
    shared = ["--jsonl", "-", "--duration", "4", "--stride", "2"]
    assert RunOptions.from_args(parse("listen", "--device", "2", *shared)) == options(*shared)


def test_json_lines_on_stdout_or_quiet_turn_the_console_off():
    assert options("--jsonl", "-") == RunOptions(jsonl_path="-", console=False)
    assert options("--quiet").console is False
    assert options("--quiet", "--jsonl", "x.jsonl").jsonl_path == "x.jsonl"
    with pytest.raises(ConfigError, match="cannot share stdout"):
        RunOptions(jsonl_path="-", console=True)


def test_a_stride_below_one_is_refused_with_the_option_named():
    with pytest.raises(ConfigError, match="--stride 0 must be a positive number of frames"):
        options("--stride", "0")


def test_options_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        options().duration_s = 3.0


def test_load_returns_an_engine_factory_with_the_stride(chroma_bundle, corpus_index):
    make_engine = load(RunOptions(bundle_dir=str(chroma_bundle), index_path=str(corpus_index), stride_frames=2))
    engine = make_engine(48000.0)
    assert engine.config.stride_frames == 2
    assert make_engine(22050.0) is not engine


def test_run_stops_at_duration_and_writes_json_lines_and_the_console(chroma_bundle, corpus_index, tmp_path,
                                                                      capsys):
    from follower.audio_io import FileSource

    sf.write(tmp_path / "silence.wav", np.zeros(22050 * 3, np.float32), 22050)
    o = RunOptions(bundle_dir=str(chroma_bundle), index_path=str(corpus_index), osc_target="127.0.0.1:9",
                   jsonl_path=str(tmp_path / "out.jsonl"), stats=True, duration_s=2.0)
    source = FileSource(tmp_path / "silence.wav", realtime=False)
    assert run(source, load(o), o) == 0
    rows = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert len(rows) == 40 and rows[-1]["t"] == pytest.approx(2.0, abs=0.06)
    out, err = capsys.readouterr()
    assert out.splitlines() == ["    0.0s  searching", "    1.1s  searching"]  # a line a second off a terminal
    assert err.startswith("stats: 40 updates over 2.0 s of audio") and "OSC sent" in err


def test_open_programme_locks_with_the_calibration_fitted_on_music_outside_the_index(chroma_bundle,
                                                                                    corpus_index):
    from follower.confidence import FITTED_OPEN

    assert options("--open-programme").open_programme and not options().open_programme
    o = dataclasses.replace(options("--open-programme"), bundle_dir=str(chroma_bundle),
                            index_path=str(corpus_index))
    assert load(o)(22050.0).config.calibration == FITTED_OPEN
    assert load(dataclasses.replace(o, open_programme=False))(22050.0).config.calibration != FITTED_OPEN


def test_slow_players_are_followed_by_two_engines_unless_turned_off(chroma_bundle, corpus_index):
    from follower.engine import Engine
    from follower.two_speeds import TwoSpeedEngine

    assert options().slow_players and not options("--no-slow-players").slow_players
    o = dataclasses.replace(options(), bundle_dir=str(chroma_bundle), index_path=str(corpus_index))
    two = load(o)(22050.0)
    assert isinstance(two, TwoSpeedEngine) and two.slow.speed == 2 and two.main.speed == 1
    one = load(dataclasses.replace(o, slow_players=False))(22050.0)
    assert type(one) is Engine
    midi = load(o)(22050.0, midi=True)  # MIDI input: the one engine, as before
    assert not isinstance(midi, TwoSpeedEngine)


def test_the_start_prior_is_on_unless_turned_off(chroma_bundle, corpus_index):
    assert options().from_the_top and not options("--no-from-the-top").from_the_top
    o = dataclasses.replace(options(), bundle_dir=str(chroma_bundle), index_path=str(corpus_index))
    assert load(o)(22050.0).config.fine.start_prior_s > 0
    assert load(dataclasses.replace(o, from_the_top=False))(22050.0).config.fine.start_prior_s == 0
    assert load(dataclasses.replace(o, from_the_top=False))(22050.0, midi=True).config.fine.start_prior_s == 0
