"""Exported model bundles: two ONNX encoders + config.json + metrics.json.

Layout of a bundle folder (written by ``training export``)::

    audio_encoder.onnx     input "audio" (n, 1, n_bins, audio_frames) -> "embedding" (n, embed_dim)
    audio_encoder.partial.onnx  (optional) the same input and output, fine-tuned for windows whose
                           first frames are silent, as when music starts (``training partial-audio``)
    score_encoder.onnx     input "roll"  (n, n_channels, n_pitches, roll_frames) -> "embedding"
    score_encoder.small.onnx  (optional) the same input and output, a distilled smaller score
                           encoder in the same embedding space: builds indexes faster
                           (``follower index build --score-encoder small``)
    score_trunk.onnx       (optional, with the next) the score encoder's first blocks, any width
    score_head.shared.onnx (optional) its last block, fine-tuned to embed snippets from trunk columns
                           computed once per piece (follower.score_trunk; ``--score-encoder shared``)
    config.json            BundleConfig: feature + snippet settings, embed_dim, versions, sha256
    metrics.json           evaluation numbers

Embeddings are L2-normalised inside the graphs, so cosine similarity is a dot
product. The follower builds its feature extractor *only* from config.json.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .config import JsonConfig
from .errors import BundleError, ConfigError
from .features import FeatureConfig
from .snippets import SnippetConfig

AUDIO_ONNX = "audio_encoder.onnx"
SCORE_ONNX = "score_encoder.onnx"
AUDIO_FLOAT_ONNX = "audio_encoder.float.onnx"  # a quantised bundle keeps its float audio encoder beside it
# optional audio encoder for windows whose first frames are silent (training partial-audio; the engine's
# EngineConfig.partial_min_silent_s): the music starting, in the same embedding space
AUDIO_PARTIAL_ONNX = "audio_encoder.partial.onnx"
AUDIO_PARTIAL_FLOAT_ONNX = "audio_encoder.partial.float.onnx"  # its float original, once quantised
SCORE_SMALL_ONNX = "score_encoder.small.onnx"  # optional distilled score encoder (training distill)
SCORE_TRUNK_ONNX = "score_trunk.onnx"  # optional shared-trunk pair (training shared-head)
SCORE_HEAD_ONNX = "score_head.shared.onnx"
SCORE_TRUNK_INT8_ONNX = "score_trunk.int8.onnx"  # the pair quantised to int8 (training quantize-shared)
SCORE_HEAD_INT8_ONNX = "score_head.shared.int8.onnx"
# the score encoders a bundle may carry, by the name an index records in its header
SCORE_ENCODERS = {"full": SCORE_ONNX, "small": SCORE_SMALL_ONNX, "shared": SCORE_HEAD_ONNX,
                  "shared-int8": SCORE_HEAD_INT8_ONNX}
# files an encoder needs besides its own (for the trunk + head pairs: the trunk)
SCORE_COMPANIONS = {"shared": (SCORE_TRUNK_ONNX,), "shared-int8": (SCORE_TRUNK_INT8_ONNX,)}
# files used only to build indexes (follower index build --score-encoder), never by the live follower
BUILD_ONLY_FILES = (SCORE_SMALL_ONNX, SCORE_TRUNK_ONNX, SCORE_HEAD_ONNX, SCORE_TRUNK_INT8_ONNX, SCORE_HEAD_INT8_ONNX)
# every file a bundle may carry besides its two encoders, config and metrics (copied along, verified where named)
OPTIONAL_FILES = BUILD_ONLY_FILES + (AUDIO_PARTIAL_ONNX,)
CONFIG_JSON = "config.json"
METRICS_JSON = "metrics.json"


def sha256_file(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@dataclass(frozen=True)
class BundleConfig(JsonConfig):
    features: FeatureConfig = field(default_factory=FeatureConfig)
    snippets: SnippetConfig = field(default_factory=SnippetConfig)
    embed_dim: int = 32
    model_name: str = "dorfer2018-midi"
    versions: dict = field(default_factory=dict)   # package versions at export time
    sha256: dict = field(default_factory=dict)     # file name -> checksum
    training: dict = field(default_factory=dict)   # corpora, soundfonts, epochs... (informative)
    # fingerprint of the bundle whose score encoder and settings this one copied unchanged
    # (`training quantize`): indexes built with that bundle are this one's too
    score_from: str = ""
    # the shared score trunk's geometry (stride_frames, reach_frames), where the bundle carries
    # score_trunk.onnx (`training shared-head`; follower.score_trunk)
    shared_trunk: dict = field(default_factory=dict)

    @classmethod
    def from_dict(cls, d: dict) -> "BundleConfig":
        # these three define the embedding space: a default would silently be another model
        missing = [k for k in ("features", "snippets", "embed_dim") if k not in d]
        if missing:
            raise ConfigError(f"bundle config lacks the key {missing[0]!r}; re-export the bundle")
        return super().from_dict({"model_name": "", **d})

    @property
    def fingerprint(self) -> str:
        """One checksum for what the follower runs (both encoders, metrics and settings): names the bundle.

        The optional index-build encoders (small, shared) are left out: they change no
        decision of the follower, and the indexes they build carry their own fingerprints
        (:meth:`index_fingerprint_for`), so adding one to a bundle keeps its name and its runs.
        """
        sha = {k: v for k, v in self.sha256.items() if k not in BUILD_ONLY_FILES}
        return hashlib.sha256(json.dumps({"sha": sha, "features": self.features.to_dict(),
                                          "snippets": self.snippets.to_dict()},
                                         sort_keys=True).encode()).hexdigest()[:16]

    @property
    def index_fingerprint(self) -> str:
        """What an index's embeddings depend on: the score encoder and the feature + snippet settings.

        Indexes record it and are accepted by every bundle that shares it: a bundle whose
        audio encoder alone differs (the int8 one of ``follower bundle quantize``) reads the
        same index, since the index holds score embeddings only.
        """
        return self.index_fingerprint_for("full")

    def has_score_encoder(self, name: str) -> bool:
        """Whether the bundle carries the score encoder ``name`` (a key of SCORE_ENCODERS)."""
        if name == "full":
            return True
        files = (SCORE_ENCODERS.get(name, ""),) + SCORE_COMPANIONS.get(name, ())
        return all(self.sha256.get(f, "") for f in files)

    def index_fingerprint_for(self, name: str) -> str:
        """:attr:`index_fingerprint` of the indexes built with the score encoder ``name``.

        "full" keeps the value indexes have always recorded; another encoder's fingerprint
        also names the encoder, so that its indexes never pass for the full one's.
        """
        if name not in SCORE_ENCODERS:
            raise BundleError(f"score encoder {name!r} is not one of {', '.join(SCORE_ENCODERS)}")
        key = {"score_sha256": self.sha256.get(SCORE_ENCODERS[name], ""), "features": self.features.to_dict(),
               "snippets": self.snippets.to_dict(), "embed_dim": self.embed_dim}
        if name != "full":
            key["score_encoder"] = name
        for companion in SCORE_COMPANIONS.get(name, ()):
            key[f"{companion}_sha256"] = self.sha256.get(companion, "")
        return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]


def read_config(bundle_dir) -> BundleConfig:
    path = Path(bundle_dir) / CONFIG_JSON
    if not path.is_file():
        raise BundleError(f"{bundle_dir}: not a model bundle (no {CONFIG_JSON}); "
                          "give the folder written by `training export`")
    try:
        return BundleConfig.from_dict(json.loads(path.read_text()))
    except json.JSONDecodeError as e:
        raise BundleError(f"{path}: not valid JSON ({e}); re-export the bundle") from e


def write_config(bundle_dir, config: BundleConfig) -> None:
    Path(bundle_dir, CONFIG_JSON).write_text(json.dumps(config.to_dict(), indent=2) + "\n")


def copy_bundle(bundle_dir, out_dir) -> BundleConfig:
    """Check ``bundle_dir`` and copy its files (all but config.json) into ``out_dir``; its config.

    For the commands that add a file to a bundle (``training distill``, ``training
    shared-head``): the caller writes the new file and then the new config.json. Nothing
    is copied when ``out_dir`` is ``bundle_dir``.
    """
    import shutil

    bundle_dir, out_dir = Path(bundle_dir), Path(out_dir)
    config = read_config(bundle_dir)
    verify(bundle_dir, config)
    out_dir.mkdir(parents=True, exist_ok=True)
    if bundle_dir.resolve() != out_dir.resolve():
        for path in sorted(bundle_dir.iterdir()):
            if path.is_file() and path.name != CONFIG_JSON and not path.name.endswith(".index.npz"):
                shutil.copyfile(path, out_dir / path.name)
    return config


def verify(bundle_dir, config: BundleConfig) -> None:
    """Check that each ONNX file is present and matches its recorded sha256."""
    optional = [f for f in OPTIONAL_FILES if config.sha256.get(f)]
    for name in [AUDIO_ONNX, SCORE_ONNX] + optional:
        path = Path(bundle_dir) / name
        if not path.is_file():
            raise BundleError(f"{bundle_dir}: missing {name}; re-export the bundle")
        want = config.sha256.get(name)
        if want and sha256_file(path) != want:
            raise BundleError(f"{path}: checksum differs from config.json; the file was changed or "
                              "copied incompletely; re-export or re-copy the bundle")


def onnx_session(path, *, threads: int = 1, spinning: bool = True, rewrite: bool = True):
    """An onnxruntime CPU session for one ONNX file; BundleError if onnxruntime cannot load it.

    ``threads`` intra-op threads, one inter-op thread, warnings silenced. ``spinning``
    keeps onnxruntime's default, idle intra-op threads busy-waiting for the next run,
    as the engine's real-time sessions have always run. Index building turns it off:
    with several threads or processes on few cores, threads that spin take the cores
    that the others need, and sleeping ones embed faster (docs/benchmarks.md).
    ``rewrite``: run the graph as :func:`follower.onnx_graph.cheaper` rewrites it (the same
    outputs, cheaper activations); False runs the file as exported.
    """
    import onnxruntime as ort

    from .onnx_graph import cheaper

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    if not spinning:
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    try:
        model = cheaper(Path(path).read_bytes()) if rewrite else None
        if model is not None:
            try:
                return ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])
            except Exception:  # noqa: BLE001  (a rewrite onnxruntime refuses: the file as exported)
                pass
        return ort.InferenceSession(os.fspath(path), opts, providers=["CPUExecutionProvider"])
    except Exception as e:
        raise BundleError(f"{path}: onnxruntime cannot load it ({e}); re-export the bundle") from e


class Encoder:
    """One encoder's onnxruntime session (see :func:`onnx_session`), called on a batch of inputs."""

    def __init__(self, path, *, threads: int = 1, spinning: bool = True, rewrite: bool = True):
        self.session = onnx_session(path, threads=threads, spinning=spinning, rewrite=rewrite)
        self.input_name = self.session.get_inputs()[0].name
        self._bound_shape = None  # embed_window's buffers, bound on its first call
        self._bound_lock = threading.Lock()

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input_name: np.ascontiguousarray(x, dtype=np.float32)})[0]

    def embed_window(self, window: np.ndarray) -> np.ndarray:
        """The embedding of one (frames, bins) spectrogram window: ``self(audio_input(window[None]))[0]``,
        the same bits, for the live update's one window. The window is written straight into an input
        buffer bound to the session, and the output goes to a bound buffer (no input copy, no
        transposed temporary, no output allocated by onnxruntime per call). The buffers are the
        encoder's: engines that share a bundle across threads take turns (a lock)."""
        shape = (1, 1, window.shape[1], window.shape[0])
        with self._bound_lock:
            if self._bound_shape != shape:
                self._in = np.zeros(shape, np.float32)
                out = self.session.get_outputs()[0]
                self._out = np.zeros((1, int(out.shape[-1])), np.float32)
                self._binding = self.session.io_binding()
                self._binding.bind_cpu_input(self.input_name, self._in)
                self._binding.bind_output(out.name, "cpu", 0, np.float32, list(self._out.shape),
                                          self._out.ctypes.data)
                self._bound_shape = shape
            self._in[0, 0] = window.T
            self.session.run_with_iobinding(self._binding)
            return self._out[0].copy()


@dataclass
class Bundle:
    path: Path
    config: BundleConfig
    audio: Encoder
    score: Encoder
    score_encoder: str = "full"   # which of SCORE_ENCODERS ``score`` runs
    audio_partial: Encoder | None = None  # for windows whose first frames are silent, where the bundle has one


def score_encoder_file(config: BundleConfig, name: str, bundle_dir="bundle") -> str:
    """The file of the score encoder ``name``; BundleError (one line) if the bundle lacks it."""
    if name not in SCORE_ENCODERS:
        raise BundleError(f"score encoder {name!r} is not one of {', '.join(SCORE_ENCODERS)}")
    if not config.has_score_encoder(name):
        how = {"shared": "training shared-head BUNDLE", "shared-int8": "training quantize-shared BUNDLE"}.get(
            name, "training distill BUNDLE")
        raise BundleError(f"{bundle_dir} has no {name} score encoder ({SCORE_ENCODERS[name]}); "
                          f"make one with: {how}, or use the full one")
    return SCORE_ENCODERS[name]


def open_score_encoder(bundle_dir, config: BundleConfig, name: str = "full", *, threads: int = 1,
                       spinning: bool = True):
    """The score encoder ``name`` of a bundle: an :class:`Encoder`, or for "shared" / "shared-int8" the
    trunk + head pair (:class:`follower.score_trunk.SharedScoreEncoder`), which embeds whole pieces at once."""
    bundle_dir = Path(bundle_dir)
    path = bundle_dir / score_encoder_file(config, name, bundle_dir)
    if name in SCORE_COMPANIONS:  # a trunk + head pair
        from .score_trunk import SharedScoreEncoder

        return SharedScoreEncoder(bundle_dir / SCORE_COMPANIONS[name][0], path, config.shared_trunk, threads=threads,
                                  spinning=spinning)
    return Encoder(path, threads=threads, spinning=spinning)


def load_bundle(bundle_dir, *, threads: int = 1, score_encoder: str = "full") -> Bundle:
    """Load config and both encoders; verify checksums; run one warm-up inference each.

    ``score_encoder`` picks which of the bundle's score encoders ``Bundle.score`` runs
    ("full", or "small" / "shared" / "shared-int8" where the bundle carries them: index building only).
    """
    bundle_dir = Path(bundle_dir)
    config = read_config(bundle_dir)
    verify(bundle_dir, config)
    audio = Encoder(bundle_dir / AUDIO_ONNX, threads=threads)
    score = open_score_encoder(bundle_dir, config, score_encoder, threads=threads)
    s, f = config.snippets, config.features
    audio(np.zeros((1, 1, f.n_bins, s.audio_frames), np.float32))
    score(np.zeros((1, len(s.roll_channels), s.n_pitches, s.roll_frames), np.float32))
    partial = None
    if config.sha256.get(AUDIO_PARTIAL_ONNX):
        partial = Encoder(bundle_dir / AUDIO_PARTIAL_ONNX, threads=threads)
        partial(np.zeros((1, 1, f.n_bins, s.audio_frames), np.float32))
    return Bundle(bundle_dir, config, audio, score, score_encoder, partial)
