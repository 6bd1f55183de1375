"""Index builds that compute the overlapping columns of neighbouring snippets once.

Snippets of an index overlap: at the default hop of 4 frames, each frame of a
piece lies in 10-11 of the 42-frame windows, and the full score encoder embeds it
that many times. The encoder's first three blocks (six 3x3 convolutions and two
2x poolings, 90 % of its multiply-adds) are convolutions over the time axis, so
for snippets that start on their stride (4 frames) they can run once over the
whole piece: the **trunk** (``score_trunk.onnx``: the full encoder's own first
layers, any width) maps the piece's padded roll to columns at 1/4 of the frame
rate, and each snippet's embedding is the **head** (``score_head.shared.onnx``: the
encoder's last block, 1x1 projection, pooling and normalisation) of its 10
columns. That costs about a fifth of embedding each window alone.

It is not the same function. Alone, a window's convolutions see zeros beyond its
edges; in the piece, they see the music there, and the embedding moves (mean
cosine 0.986 to the window's own with the full encoder's head). The shipped head
is therefore fine-tuned (``training shared-head``) to give, from the trunk's
columns in context, the embedding the full encoder gives the window alone: its
indexes are read by the same audio encoder. An index records that it was built
so (``score_encoder: shared``) and is refused by bundles without the same trunk
and head.

The trunk runs over the piece in chunks of ``chunk_columns`` output columns, each
with ``margin`` columns of context either side that are computed and dropped: the
margin exceeds the trunk's receptive field, so a chunk's kept columns are those of
one pass over the whole piece, and the result does not depend on how a build is
split over workers.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from .errors import BundleError


class SharedScoreEncoder:
    """The trunk + head pair of a bundle, as a score encoder for index builds.

    ``embed_piece`` embeds every snippet of one piece sharing the trunk; calling the
    object on a batch of windows runs trunk and head on each window alone (the
    function the head was fine-tuned to match), for callers that embed loose windows.
    """

    def __init__(self, trunk_path, head_path, geometry: dict, *, threads: int = 1, spinning: bool = True,
                 chunk_columns: int = 512):
        from .bundle import onnx_session

        try:  # written beside the pair by training shared-head (BundleConfig.shared_trunk)
            self.stride, reach = int(geometry["stride_frames"]), int(geometry["reach_frames"])
        except (KeyError, TypeError, ValueError):
            raise BundleError(f"{Path(trunk_path).parent}: config.json lacks the trunk's stride_frames and "
                              "reach_frames (shared_trunk); write the pair again with training shared-head") from None
        self.trunk = onnx_session(trunk_path, threads=threads, spinning=spinning)
        self.head = onnx_session(head_path, threads=threads, spinning=spinning)
        self.trunk_in = self.trunk.get_inputs()[0].name
        self.head_in = self.head.get_inputs()[0].name
        self.margin = math.ceil(reach / self.stride) + 1  # columns of context kept beyond the reach
        self.chunk_columns = int(chunk_columns)
        if self.stride < 1 or self.chunk_columns < 1:
            raise BundleError(f"{Path(trunk_path).name}: not a score trunk (stride {self.stride})")

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Embeddings of (n, C, P, frames) windows, each alone."""
        x = np.ascontiguousarray(x, dtype=np.float32)
        cols = self.trunk.run(None, {self.trunk_in: x})[0]
        return self._head(cols)

    def _head(self, cols: np.ndarray, batch: int = 256) -> np.ndarray:
        return np.concatenate([self.head.run(None, {self.head_in: np.ascontiguousarray(cols[i:i + batch])})[0]
                               for i in range(0, len(cols), batch)])

    def _columns(self, x: np.ndarray, origin: int, n_columns: int) -> np.ndarray:
        """Trunk columns 0..n_columns-1 of (C, P, frames) ``x`` (zeros beyond its ends), column 0
        starting at frame ``origin``, chunk by chunk."""
        s, m = self.stride, self.margin
        out = []
        for a in range(0, n_columns, self.chunk_columns):
            b = min(a + self.chunk_columns, n_columns)
            lo, hi = origin + (a - m) * s, origin + (b + m) * s  # frames this chunk reads, context included
            chunk = np.zeros(x.shape[:2] + (hi - lo,), np.float32)
            src_lo, src_hi = max(lo, 0), min(hi, x.shape[2])
            if src_hi > src_lo:
                chunk[:, :, src_lo - lo:src_hi - lo] = x[:, :, src_lo:src_hi]
            cols = self.trunk.run(None, {self.trunk_in: chunk[None]})[0][0]
            out.append(cols[:, :, m:m + b - a])
        return np.concatenate(out, axis=2)

    def _phases(self, x: np.ndarray, starts: np.ndarray, width: int):
        """Per start residue (mod the stride): (rows of ``starts``, their column offsets, the trunk's
        columns of ``x`` counted from the first of those starts, the music before it as context)."""
        starts = np.asarray(starts, dtype=np.int64)
        phase = np.mod(starts, self.stride)
        for r in np.unique(phase):
            sel = np.flatnonzero(phase == r)
            first = int(starts[sel].min())
            offs = (starts[sel] - first) // self.stride
            yield sel, offs, self._columns(x, first, int(offs.max()) + width // self.stride)

    def window_columns(self, x: np.ndarray, starts, width: int) -> np.ndarray:
        """The head's inputs for the windows ``x[:, :, start:start + width]`` (training the head)."""
        per = width // self.stride
        out = None
        for sel, offs, cols in self._phases(x, starts, width):
            if out is None:
                out = np.empty((len(starts),) + cols.shape[:2] + (per,), np.float32)
            for i, o in zip(sel, offs):
                out[i] = cols[:, :, o:o + per]
        return out

    def embed_piece(self, x: np.ndarray, starts, width: int, batch: int = 256) -> np.ndarray:
        """Embeddings of the windows ``x[:, :, start:start + width]`` of one piece's (C, P, frames)
        input, zero beyond its ends (``start`` may be negative): the trunk once per start residue."""
        per = width // self.stride
        emb = None
        for sel, offs, cols in self._phases(x, starts, width):
            for i in range(0, len(sel), batch):
                e = self._head(np.stack([cols[:, :, o:o + per] for o in offs[i:i + batch]]))
                if emb is None:
                    emb = np.empty((len(starts), e.shape[1]), np.float32)
                emb[sel[i:i + batch]] = e
        return emb
