"""Roll windows of training-split pieces with the shipped score encoder's embeddings, to distil it.

A student score encoder learns to reproduce the teacher's embeddings (the bundle's
``score_encoder.onnx``) from the same piano-roll windows, so that it stays in the
space the bundle's audio encoder was trained for. Piano rolls are made straight from
the MIDI (no rendering), so the training set is cheap: every ``hop``-th window of
each piece of the corpora's *train* split (validation pieces for the held-out
check; test pieces never), at most ``max_per_piece`` of them, drawn evenly over
the piece, with a random phase so that a student does not see only the index's grid.
Identical windows (rests, repeats) are kept once.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np

from follower.config import JsonConfig
from follower.errors import BadMidiError, ConfigError


@dataclass(frozen=True)
class DistillDataConfig(JsonConfig):
    corpora: tuple = ()                 # folders of MIDI (their splits.csv or hash split) or Boulanger .mat sets
    max_per_piece: tuple = ()           # per corpus: at most this many windows of one piece (0: all)
    hop: int = 4                        # frames between windows, as the index build's default
    seed: int = 0

    def __post_init__(self):
        if len(self.max_per_piece) not in (0, len(self.corpora)):
            raise ConfigError(f"max_per_piece has {len(self.max_per_piece)} entries for {len(self.corpora)} corpora")
        if not isinstance(self.hop, int) or self.hop < 1:
            raise ConfigError(f"hop={self.hop!r} must be a positive integer")


@dataclass
class Windows:
    rolls: np.ndarray                        # (n, roll_frames, n_channels, n_pitches) uint8
    corpus: np.ndarray                       # (n,) index into the config's corpora
    pieces: list = field(default_factory=list)


def split_windows(cfg: DistillDataConfig, split: str, snippet_config, frame_rate_hz: float,
                  progress: bool = True) -> Windows:
    """The unique windows of ``split`` pieces of every corpus."""
    from tqdm import tqdm

    from follower.snippets import cut, score_roll

    from ..data.corpus import iter_corpus, load_piece

    rng = np.random.default_rng([cfg.seed, ["train", "valid"].index(split)])
    seen: set = set()
    out, corpus_of, names = [], [], []
    for ci, spec in enumerate(cfg.corpora):
        cap = int(cfg.max_per_piece[ci]) if cfg.max_per_piece else 0
        pieces = [p for p in iter_corpus(spec) if p.split == split]
        for piece in tqdm(pieces, desc=f"{split} {spec}", disable=not progress, dynamic_ncols=True):
            try:
                roll = score_roll(load_piece(piece), snippet_config, frame_rate_hz)
            except (BadMidiError, ValueError, OSError):
                continue  # an unreadable file teaches nothing; the build skips it too
            if len(roll) == 0:
                continue
            centres = np.arange(int(rng.integers(cfg.hop)), len(roll), cfg.hop)
            if cap and len(centres) > cap:
                centres = centres[np.linspace(0, len(centres) - 1, cap).round().astype(int)]
            kept = []
            for w in cut(roll, centres, snippet_config.roll_frames):
                key = hashlib.blake2b((w > 0).tobytes(), digest_size=16).digest()
                if key not in seen:
                    seen.add(key)
                    kept.append((w > 0).astype(np.uint8))
            out += kept
            corpus_of += [ci] * len(kept)
            names.append(piece.piece_id)
    if not out:
        raise ConfigError(f"no {split} windows in {', '.join(map(str, cfg.corpora))}")
    return Windows(np.stack(out), np.asarray(corpus_of, np.int16), names)


def teacher_embeddings(encode, rolls: np.ndarray, snippet_config, batch: int = 256,
                       progress: bool = True) -> np.ndarray:
    """The teacher's (n, embed_dim) float32 embeddings of stored windows."""
    from tqdm import tqdm

    from follower.snippets import roll_input

    out = []
    for start in tqdm(range(0, len(rolls), batch), desc="teacher", disable=not progress, dynamic_ncols=True):
        out.append(encode(roll_input(rolls[start:start + batch], snippet_config)))
    return np.concatenate(out).astype(np.float32)
