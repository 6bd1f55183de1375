"""Fixtures of the follower's tests: a working bundle built in code, a small corpus, renders.

The *chroma bundle* is a real ONNX bundle in the layout of ``follower/bundle.py``
whose two encoders are hand-made rather than trained: both map their input to a
pitch-class profile over six time segments (audio bands are assigned to the pitch
class of their centre frequency), mean-removed and L2-normalised. That is the
non-learned cross-modal baseline, and it identifies and follows distinct pieces
well enough that the engine's tests do not depend on a long training run. It is
written with ``onnx.helper`` (no torch) in a fraction of a second.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import mido
import numpy as np
import pytest

from follower.bundle import (AUDIO_ONNX, CONFIG_JSON, METRICS_JSON, SCORE_ONNX, BundleConfig,
                             sha256_file, write_config)
from follower.features import FeatureConfig, _filterbank
from follower.snippets import SnippetConfig

REPO = Path(__file__).resolve().parents[2]
SEGMENTS = 6
SOUNDFONT = "/usr/share/sounds/sf2/TimGM6mb.sf2"


def _encoder_onnx(path: Path, input_name: str, n_rows: int, n_frames: int, to_pc: np.ndarray) -> None:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    pool = np.zeros((n_frames, SEGMENTS), np.float32)
    for s, frames in enumerate(np.array_split(np.arange(n_frames), SEGMENTS)):
        pool[frames, s] = 1.0 / len(frames)
    inits = [numpy_helper.from_array(pool, "pool"), numpy_helper.from_array(to_pc.astype(np.float32), "to_pc"),
             numpy_helper.from_array(np.array([-1, n_rows, n_frames], np.int64), "shape_in"),
             numpy_helper.from_array(np.array([-1, 12 * SEGMENTS], np.int64), "shape_out")]
    nodes = [
        helper.make_node("Reshape", [input_name, "shape_in"], ["x"]),
        helper.make_node("MatMul", ["x", "pool"], ["pooled"]),                 # (n, rows, 6)
        helper.make_node("Transpose", ["pooled"], ["pt"], perm=[0, 2, 1]),      # (n, 6, rows)
        helper.make_node("MatMul", ["pt", "to_pc"], ["chroma"]),               # (n, 6, 12)
        helper.make_node("Reshape", ["chroma", "shape_out"], ["flat"]),
        helper.make_node("ReduceMean", ["flat"], ["mean"], axes=[1], keepdims=1),
        helper.make_node("Sub", ["flat", "mean"], ["centred"]),
        helper.make_node("LpNormalization", ["centred"], ["embedding"], axis=1, p=2),
    ]
    graph = helper.make_graph(
        nodes, "chroma", [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, ["n", 1, n_rows, n_frames])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["n", 12 * SEGMENTS])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))


def make_chroma_bundle(out_dir: Path, *, features: FeatureConfig | None = None) -> Path:
    features = features or FeatureConfig()
    snippets = SnippetConfig(roll_channels=("sustain",))  # the chroma score encoder reads one channel
    out_dir.mkdir(parents=True, exist_ok=True)
    fb = _filterbank(features)
    freqs = np.fft.fftfreq(features.frame_size_samples, 1 / features.sample_rate_hz)[: fb.shape[0]]
    centre_hz = (fb * freqs[:, None]).sum(0) / fb.sum(0)
    band_pc = np.round(12 * np.log2(centre_hz / 440.0) + 69).astype(int) % 12
    audio_pc = np.eye(12)[band_pc]
    roll_pc = np.eye(12)[np.arange(snippets.pitch_lo, snippets.pitch_hi + 1) % 12]
    _encoder_onnx(out_dir / AUDIO_ONNX, "audio", fb.shape[1], snippets.audio_frames, audio_pc)
    _encoder_onnx(out_dir / SCORE_ONNX, "roll", snippets.n_pitches, snippets.roll_frames, roll_pc)
    (out_dir / METRICS_JSON).write_text("{}\n")
    config = BundleConfig(features=features, snippets=snippets, embed_dim=12 * SEGMENTS, model_name="chroma-test",
                          sha256={n: sha256_file(out_dir / n) for n in (AUDIO_ONNX, SCORE_ONNX)})
    write_config(out_dir, config)
    return out_dir


def write_piece(path: Path, seed: int, *, n_chords: int = 40, beat_s: float = 0.5, title: str | None = None,
                roots=None, melody=None):
    """A four-voice piece of random diatonic chords, one per beat, with a moving melody; ``roots`` (scale
    degrees 0-6) and ``melody`` (which chord note, 0-2, the top voice doubles), one per beat, instead of
    random ones: a piece that repeats itself."""
    rng = np.random.default_rng(seed)
    tpb = 480
    mid = mido.MidiFile(ticks_per_beat=tpb)
    meta = mido.MidiTrack()
    meta.append(mido.MetaMessage("set_tempo", tempo=int(beat_s * 1e6), time=0))
    if title:
        meta.append(mido.MetaMessage("track_name", name=title, time=0))
    mid.tracks.append(meta)
    scale = np.array([0, 2, 4, 5, 7, 9, 11])
    tonic = 48 + int(rng.integers(0, 12))
    roots = rng.integers(0, 7, n_chords) if roots is None else np.asarray(roots)
    voices = [[], [], [], []]
    for i, r in enumerate(roots):
        degs = [r, r + 2, r + 4]
        pcs = [tonic + scale[d % 7] + 12 * (d // 7) for d in degs]
        voices[0].append(pcs[0] - 12)
        voices[1].append(pcs[1])
        voices[2].append(pcs[2])
        voices[3].append(pcs[int(rng.integers(0, 3)) if melody is None else int(melody[i])] + 12)
    for v, notes in enumerate(voices):
        tr = mido.MidiTrack()
        for p in notes:
            tr.append(mido.Message("note_on", channel=v, note=int(p), velocity=80, time=0))
            tr.append(mido.Message("note_off", channel=v, note=int(p), velocity=0, time=tpb))
        mid.tracks.append(tr)
    path.parent.mkdir(parents=True, exist_ok=True)
    mid.save(str(path))
    return path


def render(midi_path, *, tempo_ratio: float = 1.0, programs=None, rate_hz: int = 22050) -> np.ndarray:
    """Mono float32 audio of a MIDI file at ``tempo_ratio`` x its written tempo (real FluidSynth)."""
    from follower.midi import load_midi
    from training.data.synth import Renderer, RenderSettings

    notes = load_midi(midi_path).notes.copy()
    notes["start_s"] /= tempo_ratio
    notes["end_s"] /= tempo_ratio
    r = Renderer(RenderSettings(sample_rate_hz=rate_hz))
    try:
        tracks = np.unique(notes["track"])
        programs = programs or {int(t): p for t, p in zip(tracks, [0, 41, 71, 73, 0, 0, 0, 0])}
        return r.render(notes, programs, SOUNDFONT)
    finally:
        r.close()


def one_line_error(r, match):
    """A finished ``follower`` command failed with one ``error:`` line naming ``match``, no traceback."""
    assert r.returncode != 0
    assert "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    assert match in lines[0], lines[0]


def have_fluidsynth() -> bool:
    try:
        import fluidsynth  # noqa: F401
    except (ImportError, OSError):
        return False
    return Path(SOUNDFONT).is_file()


@pytest.fixture(scope="session")
def chroma_bundle(tmp_path_factory) -> Path:
    pytest.importorskip("onnx", reason="the test bundle is written with the onnx package (training extra)")
    return make_chroma_bundle(tmp_path_factory.mktemp("bundle") / "chroma")


@pytest.fixture(scope="session")
def corpus(tmp_path_factory) -> Path:
    """Eight pieces of 20 s, one in a subfolder, named piece0..piece7."""
    root = tmp_path_factory.mktemp("corpus")
    for i in range(8):
        sub = "set_b/" if i == 7 else ""
        write_piece(root / f"{sub}piece{i}.mid", seed=100 + i, title=f"Test piece {i}")
    return root


@pytest.fixture(scope="session")
def corpus_index(chroma_bundle, corpus, tmp_path_factory) -> Path:
    from follower.bundle import load_bundle
    from follower.index import build_index, save_index

    bundle = load_bundle(chroma_bundle)
    index = build_index([corpus], bundle, hop_frames=2, progress=False)
    return save_index(index, tmp_path_factory.mktemp("index") / "test.index.npz")


@pytest.fixture(scope="session")
def rendered(corpus, tmp_path_factory) -> dict:
    """piece3 at tempo 1.1 from 6 s of its timeline to the end, as 44.1 kHz stereo FLAC."""
    if not have_fluidsynth():
        pytest.skip("FluidSynth or the TimGM6mb soundfont is absent (apt-get install fluidsynth timgm6mb-soundfont)")
    import soundfile as sf

    ratio, start_s = 1.1, 6.0
    audio = render(corpus / "piece3.mid", tempo_ratio=ratio, rate_hz=44100)
    audio = audio[int(start_s / ratio * 44100):]
    stereo = np.stack([audio, 0.8 * audio], axis=1)
    path = tmp_path_factory.mktemp("audio") / "piece3.flac"
    sf.write(path, stereo, 44100)
    return {"path": path, "piece": "piece3", "tempo": ratio, "start_s": start_s,
            "duration_s": len(audio) / 44100}


def sigint_default():
    """In the child: Ctrl-C as a terminal delivers it. A test run started in the background (sh `&`)
    ignores SIGINT, and children inherit that, so the follower would never see the test's SIGINT."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)
