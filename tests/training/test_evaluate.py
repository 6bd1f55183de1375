import numpy as np
import pytest

from follower.features import FeatureConfig, spectrogram
from follower.snippets import SnippetConfig, audio_input, cut
from training.evaluate.chroma import ChromaBaseline, band_pitch_classes
from training.evaluate.protocols import Database, excerpt_centres, identify, posthoc_cca, project, snippet_retrieval
from training.data.bach10 import bwv_of, read_alignment
from training.data.toy import ToySplit


def test_read_alignment_merges_chords_and_is_monotonic(tmp_path):
    path = tmp_path / "a.txt"
    path.write_text("220\t1915\t72\t1\n230\t1915\t67\t2\n857\t2553\t71\t1\n850\t3000\t60\t4\n")
    midi_s, audio_s = read_alignment(path)
    assert midi_s.tolist() == [1.915, 2.553, 3.0]
    assert audio_s.tolist() == [0.225, 0.857, 0.857]  # 0.850 < 0.857: clamped, time goes forward


def test_bwv_of():
    assert bwv_of("bach_bwv255.mid") == 255 and bwv_of("bach_bwv48.3.mid") == 48 and bwv_of("x.mid") is None


def test_chroma_baseline_matches_a_chord_to_its_roll():
    feat, snip = FeatureConfig(), SnippetConfig()
    rate = feat.sample_rate_hz
    t = np.arange(3 * rate) / rate

    def chord(pitches):
        return sum(np.sin(2 * np.pi * 440 * 2 ** ((p - 69) / 12) * t) for p in pitches).astype(np.float32)

    base = ChromaBaseline(snip, feat)
    chords = [(60, 64, 67), (62, 65, 69), (55, 59, 62)]  # C, Dm, G
    audio = np.concatenate([audio_input(cut(spectrogram(chord(c), rate, feat), [40], 42)) for c in chords])
    rolls = np.zeros((3, 1, 88, 42), np.float32)
    for i, c in enumerate(chords):
        rolls[i, 0, np.array(c) - 21] = 1
    sim = base.audio(audio) @ base.score(rolls).T
    assert (sim.argmax(axis=1) == np.arange(3)).all()
    assert band_pitch_classes(feat).sum() > 60  # most bands above C2 fold onto a pitch class


def test_identify_ranks_by_votes():
    db = Database(np.eye(4), np.array([0, 0, 1, 2]), 3)
    queries = [(0, np.array([[1.0, 0.1, 0, 0]])), (2, np.array([[0, 0.2, 1.0, 0.1]]))]
    summary, ranks = identify(queries, db, k=2)
    # query 2's neighbours are rows 2 (piece 1) and 1 (piece 0): piece 2 has no vote, rank 3
    assert ranks.tolist() == [1, 3]
    assert summary["rank_1"]["count"] == 1


def test_excerpt_centres_cover_the_piece():
    c = excerpt_centres(1000, 42, 100)
    assert len(c) == 100 and c[0] == 21 and c[-1] == 1000 - 21


def test_snippet_retrieval_and_cca_on_toy_data():
    data = ToySplit(60, seed=0)
    base = ChromaBaseline()
    # the toy "spectrogram" puts a note's energy at band pitch * 92 / 88, not at its frequency,
    # so chroma is near chance here; the call path and shapes are what is tested
    metrics, ranks = snippet_retrieval(base, data, n_pairs=50)
    assert metrics["audio2score"]["n"] == 50 and ranks["score2audio"].shape == (50,)
    rng = np.random.default_rng(0)
    a = rng.normal(size=(500, 8))
    s = a @ rng.normal(size=(8, 8)) + 0.1 * rng.normal(size=(500, 8))
    fit = posthoc_cca(a, s)
    corr = np.mean(np.sum(project(a, fit["audio_mean"], fit["audio_matrix"])
                          * project(s, fit["score_mean"], fit["score_matrix"]), axis=1))
    assert corr > 0.9  # a linear relation is undone by CCA


@pytest.mark.skipif(not (__import__("training.paths").paths.data_root() / "real" / "bach10").is_dir(),
                    reason="Bach10 recordings absent (../shared/data)")
def test_bach10_pairs_are_aligned():
    from training.paths import data_root
    from training.data.bach10 import RealPairs, load_piece

    snip, feat = SnippetConfig(roll_channels=("sustain", "onset")), FeatureConfig()
    folder = sorted((data_root() / "real" / "bach10").iterdir())[0]
    piece = load_piece(folder, snip, feat)
    assert piece.bwv == 255 and piece.roll.shape[1:] == (2, 88)
    pairs = RealPairs([piece], snip, feat)
    assert len(pairs.pairs) > 30 and (pairs.pairs[:, 1] < len(piece.spectrogram)).all()
    # the non-learned chroma ranks the aligned counterpart first far above chance (1 / n):
    # the alignment and the time bases of both sides agree
    metrics, _ = snippet_retrieval(ChromaBaseline(snip, feat), pairs, n_pairs=len(pairs.pairs))
    assert metrics["score2audio"]["r@1"] > 10 / len(pairs.pairs)
