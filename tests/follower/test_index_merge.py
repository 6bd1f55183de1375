"""``follower index merge``: indexes built separately joined into one, duplicates handled and reported."""

import numpy as np
import pytest

from follower.bundle import load_bundle
from follower.cli import main
from follower.index import build_index, load_index, save_index


@pytest.fixture(scope="module")
def halves(chroma_bundle, corpus, tmp_path_factory):
    """The test corpus built whole and in two halves (pieces 0-3 / 4-7), each half its own index."""
    out = tmp_path_factory.mktemp("merge")
    bundle = load_bundle(chroma_bundle)
    whole = build_index([corpus], bundle, hop_frames=4, progress=False)
    files = sorted(corpus.glob("*.mid"))
    a = save_index(build_index(files[:4], bundle, hop_frames=4, progress=False), out / "a.index.npz")
    b = save_index(build_index(files[4:] + [corpus / "set_b"], bundle, hop_frames=4, progress=False),
                   out / "b.index.npz")
    return whole, a, b, out


def test_merging_the_halves_gives_the_whole(halves, capsys):
    whole, a, b, out = halves
    assert main(["index", "merge", str(a), str(b), "-o", str(out / "ab.index.npz"), "--ann", "none"]) == 0
    merged = load_index(out / "ab.index.npz")
    assert merged.piece_ids.tolist() == [f"piece{i}" for i in range(8)]  # set_b/piece7 was named piece7 in b
    for name in ("embeddings", "piece", "position_s", "position_beats", "titles", "piece_start", "duration_s",
                 "note_start", "note_onset_s", "note_end_s", "note_pitch"):
        np.testing.assert_array_equal(getattr(merged, name), getattr(whole, name), err_msg=name)
    assert merged.fingerprint == whole.fingerprint and merged.header["hop_frames"] == 4
    assert "8 pieces" in capsys.readouterr().out


def test_duplicate_ids_are_dropped_when_identical_and_renamed_otherwise(halves, chroma_bundle, corpus, capsys):
    _, a, b, out = halves
    # c: piece0 again (identical) and another piece that is also called piece1
    c_dir = out / "c"
    c_dir.mkdir()
    (c_dir / "piece0.mid").write_bytes((corpus / "piece0.mid").read_bytes())
    (c_dir / "piece1.mid").write_bytes((corpus / "piece5.mid").read_bytes())
    c = save_index(build_index([c_dir], load_bundle(chroma_bundle), hop_frames=4, progress=False),
                   out / "c.index.npz")
    assert main(["index", "merge", str(a), str(c), "-o", str(out / "ac.index.npz"), "--ann", "none"]) == 0
    err = capsys.readouterr().err
    assert "piece0 is already in" in err and "kept once" in err
    assert "piece1 is also in" in err and "kept as c/piece1" in err
    merged = load_index(out / "ac.index.npz")
    assert merged.piece_ids.tolist() == ["piece0", "piece1", "piece2", "piece3", "c/piece1"]
    assert len(merged.header["duplicates"]) == 2
    np.testing.assert_array_equal(merged.embeddings[merged.rows(4)], load_index(c).embeddings[load_index(c).rows(1)])


def test_other_bundles_or_hops_are_refused_in_one_line(halves, chroma_bundle, corpus, capsys):
    _, a, _, out = halves
    other = load_index(a)
    other.header["bundle_fingerprint"] = other.header["index_fingerprint"] = "0123456789abcdef"
    save_index(other, out / "other.index.npz")
    assert main(["index", "merge", str(a), str(out / "other.index.npz"), "-o", str(out / "x.npz")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "built with bundle 0123456789abcdef" in err and "rebuild" in err
    coarse = save_index(build_index([corpus / "piece5.mid"], load_bundle(chroma_bundle), hop_frames=8,
                                    progress=False), out / "coarse.index.npz")
    assert main(["index", "merge", str(a), str(coarse), "-o", str(out / "x.npz")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "hop_frames=8" in err
    shared = load_index(a)
    shared.header["score_encoder"] = "shared"
    save_index(shared, out / "shared.index.npz")
    assert main(["index", "merge", str(a), str(out / "shared.index.npz"), "-o", str(out / "x.npz")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "with the full one; rebuild one of them with the other's --score-encoder" in err
    assert not (out / "x.npz").exists()
