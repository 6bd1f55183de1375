"""follower.onnx_graph: the encoders' graphs rewritten into cheaper ones that compute the same."""

from pathlib import Path

import numpy as np
import onnx
import pytest
import soundfile as sf
from onnx import TensorProto, helper

from follower.bundle import (AUDIO_FLOAT_ONNX, AUDIO_ONNX, AUDIO_PARTIAL_ONNX, SCORE_HEAD_INT8_ONNX, SCORE_ONNX,
                             SCORE_TRUNK_INT8_ONNX, Encoder, onnx_session, read_config)
from follower.features import spectrogram
from follower.onnx_graph import cheaper, pool_before_elu, quantised_elu_from_exp
from follower.snippets import audio_input, cut

REPO = Path(__file__).resolve().parents[2]
SHIPPED = REPO / "exported" / "default"


@pytest.fixture(scope="module")
def recorded_windows() -> np.ndarray:
    """Encoder inputs of the example recording: every other frame, from the first (mostly silent) ones on."""
    cfg = read_config(SHIPPED)
    audio, rate = sf.read(REPO / "examples" / "chorale_excerpt.ogg", dtype="float32", always_2d=True)
    spec = spectrogram(audio.mean(axis=1), rate, cfg.features)
    return audio_input(cut(spec, np.arange(4, len(spec), 2), cfg.snippets.audio_frames))


@pytest.mark.parametrize("name", [AUDIO_ONNX, AUDIO_PARTIAL_ONNX, AUDIO_FLOAT_ONNX])
def test_the_shipped_audio_encoders_embed_the_same_bits_rewritten(recorded_windows, name):
    exported, rewritten = Encoder(SHIPPED / name, rewrite=False), Encoder(SHIPPED / name)
    assert cheaper((SHIPPED / name).read_bytes()) is not None  # something was rewritten
    x = recorded_windows
    np.testing.assert_array_equal(np.concatenate([rewritten(x[i:i + 64]) for i in range(0, len(x), 64)]),
                                  np.concatenate([exported(x[i:i + 64]) for i in range(0, len(x), 64)]))
    for w in x[::25]:  # the live path: one window through bound buffers
        np.testing.assert_array_equal(rewritten.embed_window(w[0].T), exported.embed_window(w[0].T))


@pytest.mark.parametrize("name", [SCORE_ONNX, SCORE_TRUNK_INT8_ONNX, SCORE_HEAD_INT8_ONNX])
def test_the_shipped_score_encoders_compute_the_same_bits_rewritten(name):
    rng = np.random.default_rng(0)
    exported, rewritten = onnx_session(SHIPPED / name, rewrite=False), onnx_session(SHIPPED / name)
    inp = exported.get_inputs()[0]
    shape = {SCORE_ONNX: (16, 2, 88, 42), SCORE_TRUNK_INT8_ONNX: (2, 2, 88, 400)}.get(name)
    if shape is None:  # the head reads the trunk's columns
        trunk = onnx_session(SHIPPED / SCORE_TRUNK_INT8_ONNX, rewrite=False)
        roll = (rng.random((2, 2, 88, 400)) < 0.04).astype(np.float32)
        x = trunk.run(None, {"roll": roll})[0][..., :24]
    else:  # sparse rolls, as notes are
        x = (rng.random(shape) < 0.04).astype(np.float32)
    np.testing.assert_array_equal(rewritten.run(None, {inp.name: x})[0], exported.run(None, {inp.name: x})[0])


def _ops(model) -> list[str]:
    return [n.op_type for n in model.graph.node]


def test_the_int8_audio_encoder_pools_eight_bit_values_and_has_no_elu_left():
    model = onnx.load_from_string(cheaper((SHIPPED / AUDIO_ONNX).read_bytes()))
    made_by = {o: n for n in model.graph.node for o in n.output}
    assert "Elu" not in _ops(model)
    pools = [n for n in model.graph.node if n.op_type == "MaxPool"]
    assert len(pools) == 4 and all(made_by[p.input[0]].op_type == "QuantizeLinear" for p in pools)


def test_a_float_graph_keeps_its_elu_and_pools_before_it():
    model = onnx.load(SHIPPED / AUDIO_FLOAT_ONNX)
    n_elu = _ops(model).count("Elu")
    assert pool_before_elu(model.graph) == 4 and quantised_elu_from_exp(model.graph) == 0
    made_by = {o: n for n in model.graph.node for o in n.output}
    assert _ops(model).count("Elu") == n_elu
    assert all(made_by[n.input[0]].op_type == "Conv" for n in model.graph.node if n.op_type == "MaxPool")
    onnx.checker.check_model(model)


def _elu_pool_graph(pads, *, elu_used_twice: bool = False):
    nodes = [helper.make_node("Elu", ["x"], ["e"], alpha=1.0),
             helper.make_node("MaxPool", ["e"], ["y"], kernel_shape=[2, 2], strides=[2, 2], pads=pads)]
    outputs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)]
    if elu_used_twice:
        outputs.append(helper.make_tensor_value_info("e", TensorProto.FLOAT, None))
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 4, 4])],
                              outputs)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_a_padded_pool_or_an_activation_read_elsewhere_is_left_as_it_is():
    assert pool_before_elu(_elu_pool_graph([1, 1, 1, 1]).graph) == 0
    assert pool_before_elu(_elu_pool_graph([0, 0, 0, 0], elu_used_twice=True).graph) == 0
    model = _elu_pool_graph([0, 0, 0, 0])
    assert pool_before_elu(model.graph) == 1 and _ops(model) == ["MaxPool", "Elu"]


def test_bytes_that_are_no_model_are_not_rewritten():
    assert cheaper(b"\x08\x07 this is not a protobuf model " * 20) is None


def test_a_rewrite_onnxruntime_refuses_falls_back_to_the_file(monkeypatch, recorded_windows):
    import follower.onnx_graph

    monkeypatch.setattr(follower.onnx_graph, "cheaper", lambda model_bytes: b"\x08\x07 not a model")
    refused = Encoder(SHIPPED / AUDIO_ONNX)
    np.testing.assert_array_equal(refused(recorded_windows[:8]),
                                  Encoder(SHIPPED / AUDIO_ONNX, rewrite=False)(recorded_windows[:8]))


def test_loading_a_bundle_rewrites_without_importing_the_onnx_package():
    """``import onnx`` costs half a second at every start (its ml_dtypes); the protobuf classes alone do."""
    import subprocess
    import sys

    code = ("import sys; from follower.bundle import load_bundle; from follower import onnx_graph; "
            f"load_bundle({str(SHIPPED)!r}); assert onnx_graph._proto is not None, 'nothing was rewritten'; "
            "print('onnx' in sys.modules)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "False"


def test_pools_of_two_graph_inputs_both_move_and_compute_the_same():
    nodes = [helper.make_node("Elu", [x], [f"e{x}"], alpha=1.0) for x in ("a", "b")]
    nodes += [helper.make_node("MaxPool", [f"e{x}"], [f"y{x}"], kernel_shape=[2, 2], strides=[2, 2]) for x in ("a", "b")]
    inputs = [helper.make_tensor_value_info(x, TensorProto.FLOAT, [1, 1, 4, 4]) for x in ("a", "b")]
    outputs = [helper.make_tensor_value_info(f"y{x}", TensorProto.FLOAT, None) for x in ("a", "b")]
    model = helper.make_model(helper.make_graph(nodes, "g", inputs, outputs),
                              opset_imports=[helper.make_opsetid("", 17)])
    rewritten = cheaper(model.SerializeToString())
    assert _ops(onnx.load_from_string(rewritten)) == ["MaxPool", "MaxPool", "Elu", "Elu"]
    import onnxruntime as ort

    feed = {x: np.random.default_rng(1).normal(size=(1, 1, 4, 4)).astype(np.float32) for x in ("a", "b")}
    before = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, feed)
    after = ort.InferenceSession(rewritten, providers=["CPUExecutionProvider"]).run(None, feed)
    for x, y in zip(before, after):
        np.testing.assert_array_equal(x, y)
