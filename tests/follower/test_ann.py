"""Approximate search (faiss) carried by an index: recall against the exact kernel, storage, the engine's use."""

import numpy as np
import pytest
import soundfile as sf

pytest.importorskip("faiss", reason="faiss is in the scale extra: pip install -e '.[scale]'")

from follower import knn  # noqa: E402
from follower.ann import AnnConfig, attach_ann, make_search  # noqa: E402
from follower.bundle import load_bundle  # noqa: E402
from follower.cli import main  # noqa: E402
from follower.engine import Engine, EngineConfig  # noqa: E402
from follower.errors import BundleError  # noqa: E402
from follower.index import load_index, save_index  # noqa: E402


def recall(index, search, queries, k=25):
    exact = knn.as_search_matrix(index.embeddings)
    hits = 0
    for q in queries:
        want = set(knn.topk(exact, q, k)[0].tolist())
        got, scores = search(q, k)
        assert np.all(np.diff(scores) <= 1e-6), "best first"
        hits += len(want & set(got.tolist()))
    return hits / (k * len(queries))


@pytest.mark.parametrize("kind", ["hnsw", "ivfpq"])
def test_the_structure_finds_what_the_exact_search_finds(corpus_index, kind):
    index = load_index(corpus_index)
    attach_ann(index, AnnConfig(kind=kind))
    rng = np.random.default_rng(0)
    rows = index.embeddings[rng.choice(index.n_snippets, 200, replace=False)].astype(np.float32)
    queries = rows + 0.05 * rng.standard_normal(rows.shape).astype(np.float32)  # near real snippets, not on them
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    assert recall(index, make_search(index, None, "ann"), queries) >= 0.97
    assert index.header["ann"]["kind"] == kind and index.header["ann"]["n_snippets"] == index.n_snippets


def test_the_structure_is_saved_with_the_index_and_used_by_the_engine(chroma_bundle, corpus_index, rendered,
                                                                      tmp_path, capsys):
    path = tmp_path / "ann.index.npz"
    index = load_index(corpus_index)
    attach_ann(index, AnnConfig(kind="hnsw"))
    save_index(index, path)
    loaded = load_index(path)
    np.testing.assert_array_equal(loaded.ann, index.ann)
    assert main(["index", "info", str(path)]) == 0
    assert "hnsw approximate search" in capsys.readouterr().out

    bundle = load_bundle(chroma_bundle)
    audio, rate = sf.read(rendered["path"], dtype="float32")
    runs = {}
    for mode in ("exact", "ann"):
        engine = Engine(bundle, loaded, input_rate_hz=rate, config=EngineConfig(search=mode))
        engine.warm_up()
        ups = [u for i in range(0, len(audio), 700) for u in engine.push(audio[i:i + 700])]
        runs[mode] = ups
    exact, ann = runs["exact"], runs["ann"]
    assert [u.piece for u in ann] == [u.piece for u in exact]
    assert [u.state for u in ann] == [u.state for u in exact]
    assert {u.piece for u in ann if u.state == "following"} == {"piece3"}
    pos = np.array([[a.position_s or 0, e.position_s or 0] for a, e in zip(ann, exact)])
    np.testing.assert_allclose(pos[:, 0], pos[:, 1], atol=1e-3)


def test_a_missing_or_stale_structure_is_refused_in_one_line(corpus_index, tmp_path, capsys):
    index = load_index(corpus_index)
    with pytest.raises(BundleError, match="carries no approximate-search structure"):
        make_search(index, None, "ann")
    assert make_search(index, knn.as_search_matrix(index.embeddings), "auto")  # exact where there is none
    attach_ann(index, AnnConfig(kind="hnsw"))
    index.header["ann"]["n_snippets"] += 1
    with pytest.raises(BundleError, match="rebuild it with `follower index ann"):
        make_search(index, None, "ann")
    # the command line: one line, non-zero exit
    plain = save_index(load_index(corpus_index), tmp_path / "plain.index.npz")
    assert main(["replay", str(tmp_path / "missing.flac"), "--index", str(plain), "--search", "ann"]) != 0
    assert main(["index", "ann", str(plain), "--kind", "ivfpq"]) == 0
    assert load_index(plain).header["ann"]["kind"] == "ivfpq"
    assert main(["index", "ann", str(plain), "--remove"]) == 0
    assert load_index(plain).ann is None
    capsys.readouterr()
