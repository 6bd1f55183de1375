"""Approximate nearest-neighbour search (faiss) for indexes too large for the exact pass.

The exact kernel (:mod:`follower.knn`) reads every snippet on every update: its cost
grows linearly with the index. Above :data:`AUTO_THRESHOLD` snippets an index built
or merged by ``follower index`` carries a faiss structure over the same rows (stored
in the index file as the ``ann`` byte array, its settings in the header), and the
engine asks it for the top k instead. Below the threshold, and whenever
``--search exact`` is given, the exact kernel answers; it is also the reference the
approximate search is measured against (``benchmarks/ann_recall.py``,
docs/benchmarks.md "Approximate search").

Two kinds, both inner product on the L2-normalised embeddings (= cosine):

* ``hnsw``: a graph (faiss ``IndexHNSWFlat``) over the float32 vectors; the best
  recall per microsecond, at the cost of the vectors again plus the graph's links.
* ``ivfpq``: inverted lists of product-quantised codes (``IndexIVFPQ``), then the
  shortlist re-scored exactly (``IndexRefineFlat``); smaller to build and to hold.

The settings below are the ones chosen by measurement (docs/benchmarks.md).
faiss is an optional dependency (``pip install 'scorefollow[scale]'``).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

from .config import JsonConfig
from .errors import ConfigError, MissingToolError

KINDS = ("hnsw", "ivfpq")
# below this many snippets the exact pass costs < 2 ms (docs/benchmarks.md) and an ANN buys nothing
AUTO_THRESHOLD = 300_000
INSTALL_HINT = "pip install 'scorefollow[scale]' (or: pip install faiss-cpu)"


def import_faiss():
    try:
        import faiss
    except ImportError as e:
        raise MissingToolError(f"approximate search needs faiss, which is not installed ({e}); {INSTALL_HINT}") from e
    return faiss


@dataclass(frozen=True)
class AnnConfig(JsonConfig):
    """What ``follower index build/ann --ann KIND`` builds; saved in the index header."""

    kind: str = "hnsw"
    hnsw_m: int = 16                 # links per node (32: no better recall at 100k rows, 1.5x the size)
    ef_construction: int = 80
    ef_search: int = 128             # candidates kept while searching: recall@25 0.99 at 100k rows
    ivf_lists: int = 0               # 0: about 4 sqrt(n)
    pq_dims: int = 2                 # dimensions per one-byte PQ code (32-d: 16 bytes a vector)
    nprobe: int = 128                # lists visited per query: recall@25 0.99 at 100k rows
    refine_factor: int = 4           # k * this PQ candidates re-scored exactly

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ConfigError(f"ann kind {self.kind!r} is not one of {', '.join(KINDS)}")
        for name in ("hnsw_m", "ef_construction", "ef_search", "pq_dims", "nprobe", "refine_factor"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"{name}={getattr(self, name)} must be a positive integer")

    def lists_for(self, n: int) -> int:
        return int(self.ivf_lists) or max(16, int(4 * math.sqrt(n)))


def build_ann(embeddings: np.ndarray, config: AnnConfig, *, threads: int | None = None, seed: int = 0):
    """(faiss index, seconds) over the rows of ``embeddings`` (n, d), L2-normalised."""
    faiss = import_faiss()
    if threads:
        faiss.omp_set_num_threads(int(threads))
    x = np.ascontiguousarray(embeddings, dtype=np.float32)
    n, d = x.shape
    t0 = time.perf_counter()
    if config.kind == "hnsw":
        ann = faiss.IndexHNSWFlat(d, int(config.hnsw_m), faiss.METRIC_INNER_PRODUCT)
        ann.hnsw.efConstruction = int(config.ef_construction)
        ann.add(x)
    else:
        if d % config.pq_dims:
            raise ConfigError(f"pq_dims={config.pq_dims} must divide the embedding size {d}")
        lists = min(config.lists_for(n), max(1, n // 39))  # faiss wants >= 39 training points per centroid
        bits = max(1, min(8, int(math.log2(max(2, n // 39)))))  # 8-bit codes once there are 10,000 rows
        quantizer = faiss.IndexFlatIP(d)
        ivf = faiss.IndexIVFPQ(quantizer, d, lists, d // int(config.pq_dims), bits, faiss.METRIC_INNER_PRODUCT)
        rng = np.random.default_rng(seed)
        # 100 points per centroid train as well as faiss's default 256 here (refine re-scores exactly)
        sample = 100 * max(lists, 40)
        train = x if n <= sample else x[rng.choice(n, sample, replace=False)]
        ivf.train(train)
        ann = faiss.IndexRefineFlat(ivf)  # adds go to both: the codes and the exact vectors
        ann.add(x)
    return ann, time.perf_counter() - t0


def serialise(ann) -> np.ndarray:
    return import_faiss().serialize_index(ann)


class AnnSearch:
    """The top k of a query by the faiss structure; one thread, as the engine's one core."""

    def __init__(self, ann_bytes: np.ndarray, config: AnnConfig):
        faiss = import_faiss()
        faiss.omp_set_num_threads(1)
        self.config = config
        self.ann = faiss.deserialize_index(np.asarray(ann_bytes, dtype=np.uint8))
        self.set_params(config)

    def set_params(self, config: AnnConfig) -> None:
        faiss = import_faiss()
        self.config = config
        if config.kind == "hnsw":
            self.params = faiss.SearchParametersHNSW(efSearch=int(config.ef_search))
            self.ann.hnsw.efSearch = int(config.ef_search)
        else:
            ivf = faiss.downcast_index(self.ann.base_index)
            ivf.nprobe = int(config.nprobe)
            self.ann.k_factor = float(config.refine_factor)
            self.params = None

    @property
    def n(self) -> int:
        return int(self.ann.ntotal)

    def topk(self, query: np.ndarray, k: int):
        """(rows int64, scores float32), best first, like :func:`follower.knn.topk`."""
        q = np.ascontiguousarray(query, dtype=np.float32).reshape(1, -1)
        scores, rows = self.ann.search(q, int(k))
        keep = rows[0] >= 0
        return rows[0][keep].astype(np.int64), scores[0][keep].astype(np.float32)

    def topk_batch(self, queries: np.ndarray, k: int):
        scores, rows = self.ann.search(np.ascontiguousarray(queries, dtype=np.float32), int(k))
        return rows, scores


def attach_ann(index, config: AnnConfig, *, threads: int | None = None) -> float:
    """Build the structure over ``index``'s rows and keep it in the index (saved with it); seconds taken."""
    ann, seconds = build_ann(index.embeddings, config, threads=threads)
    index.ann = serialise(ann)
    index.header["ann"] = {**config.to_dict(), "n_snippets": index.n_snippets, "build_s": round(seconds, 1)}
    return seconds


def ann_config(index) -> AnnConfig:
    """The settings an index's structure was built with (unknown keys of a newer version ignored)."""
    saved = dict(index.header.get("ann") or {})
    fields = AnnConfig.__dataclass_fields__
    return AnnConfig.from_dict({k: v for k, v in saved.items() if k in fields})


SEARCH_MODES = ("auto", "exact", "ann")


def searches_exactly(index, mode: str = "auto") -> bool:
    """Whether :func:`make_search` answers with the exact kernel for this index and mode."""
    return mode == "exact" or (mode == "auto" and index.ann is None)


def make_search(index, matrix: np.ndarray, mode: str = "auto", *, index_path: str = "the index"):
    """``topk(query, k) -> (rows, scores)`` for the engine: the index's ANN or the exact kernel.

    ``auto``: the ANN where the index carries one, else exact; ``exact``: always the
    exact kernel; ``ann``: the ANN, and an index without one is refused.
    """
    from . import knn
    from .errors import BundleError

    if mode not in SEARCH_MODES:
        raise ConfigError(f"search={mode!r} is not one of {', '.join(SEARCH_MODES)}")
    if searches_exactly(index, mode):
        return lambda q, k: knn.topk(matrix, q, k)
    if index.ann is None:
        raise BundleError(f"{index_path} carries no approximate-search structure; add one with "
                          f"`follower index ann {index_path}`, or search it exactly (--search exact)")
    built_for = (index.header.get("ann") or {}).get("n_snippets")
    if built_for != index.n_snippets:
        raise BundleError(f"{index_path}: its approximate-search structure covers {built_for} snippets, the index "
                          f"{index.n_snippets}; rebuild it with `follower index ann {index_path}`")
    search = getattr(index, "_ann_search", None)   # deserialised once per index: several engines share it
    if search is None:
        search = AnnSearch(index.ann, ann_config(index))
        index._ann_search = search
    return search.topk
