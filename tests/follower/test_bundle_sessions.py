"""The one onnxruntime session helper (follower.bundle.onnx_session) and the encoders built on it."""

import numpy as np
import pytest

from follower.bundle import AUDIO_ONNX, SCORE_ONNX, Encoder, onnx_session
from follower.errors import BundleError

SPINNING = "session.intra_op.allow_spinning"


def test_session_settings_are_the_ones_asked_for(chroma_bundle):
    session = onnx_session(chroma_bundle / AUDIO_ONNX, threads=2)
    opts = session.get_session_options()
    assert opts.intra_op_num_threads == 2
    assert opts.inter_op_num_threads == 1
    assert opts.log_severity_level == 3
    assert session.get_providers() == ["CPUExecutionProvider"]


def test_real_time_sessions_keep_the_default_spinning_and_batch_ones_turn_it_off(chroma_bundle):
    batch = onnx_session(chroma_bundle / SCORE_ONNX, threads=1, spinning=False)
    assert batch.get_session_options().get_session_config_entry(SPINNING) == "0"
    live = onnx_session(chroma_bundle / SCORE_ONNX, threads=1)
    with pytest.raises(RuntimeError):  # no entry at all: onnxruntime's own default applies
        live.get_session_options().get_session_config_entry(SPINNING)


def test_an_encoder_without_spinning_embeds_the_same(chroma_bundle):
    x = np.random.default_rng(0).random((3, 1, 88, 42), dtype=np.float32)
    spin = Encoder(chroma_bundle / SCORE_ONNX)
    sleep = Encoder(chroma_bundle / SCORE_ONNX, spinning=False)
    assert sleep.session.get_session_options().get_session_config_entry(SPINNING) == "0"
    np.testing.assert_array_equal(spin(x), sleep(x))
    assert np.allclose(np.linalg.norm(spin(x), axis=1), 1.0, atol=1e-5)


@pytest.mark.parametrize("spinning", [True, False])
def test_a_corrupt_file_is_a_bundle_error_naming_it(tmp_path, spinning):
    path = tmp_path / "audio_encoder.onnx"
    path.write_bytes(b"\x08\x07 this is not a protobuf model " * 20)
    with pytest.raises(BundleError, match="onnxruntime cannot load it") as e:
        onnx_session(path, spinning=spinning)
    assert str(path) in str(e.value) and "re-export the bundle" in str(e.value)
    with pytest.raises(BundleError, match="onnxruntime cannot load it"):
        Encoder(path, spinning=spinning)
