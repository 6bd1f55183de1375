"""The paper's two evaluations, for any embedder with ``audio(x)`` and ``score(x)``.

1. Two-way snippet retrieval (Dorfer et al. 2018, §4): ``n_pairs`` pairs, each
   query ranked against all candidates of the other modality.
2. Piece identification and performance retrieval (§5): a database of snippet
   embeddings of every piece (at its note-onset frames); a query is a whole piece,
   ``n_excerpts`` evenly spaced excerpts each voting for the pieces of its ``k``
   nearest database snippets; the true piece's rank by votes is reported.
   Piece identification: audio query, score database. Performance retrieval: score
   query, audio database.

The learned model (:class:`TorchEmbedder`) and the chroma baseline
(:class:`training.evaluate.chroma.ChromaBaseline`) run through the same functions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from follower.snippets import SnippetConfig, audio_input, cut, roll_input

from .metrics import identification_summary, piece_rank, piece_votes, two_way_retrieval

N_PAIRS = 2000
N_EXCERPTS = 100
K_NEIGHBOURS = 25
# Database snippets sit at note onsets, at least this many frames apart: 10 frames is
# 0.5 s, so the 2.1 s windows still overlap fourfold, at a third of the CPU cost of
# every onset (the evaluation has to run on two shared cores).
DB_MIN_GAP_FRAMES = 10
CORPUS_MIN_GAP_FRAMES = 20   # the 349-file chorale corpus, at two tempo scales


def thin(centres, min_gap: int) -> np.ndarray:
    """Sorted centres, greedily keeping those at least ``min_gap`` frames after the last kept one."""
    kept, last = [], None
    for c in np.sort(np.asarray(centres)):
        if last is None or c - last >= min_gap:
            kept.append(c)
            last = c
    return np.array(kept, dtype=np.int64)


class TorchEmbedder:
    """numpy in, numpy out, in batches, for a trained :class:`training.model.encoders.DualEncoder`."""

    name = "learned"

    def __init__(self, model, *, batch: int = 500):
        self.model, self.batch = model.eval(), batch

    def _run(self, encoder, x: np.ndarray) -> np.ndarray:
        import torch

        out = []
        with torch.no_grad():
            for s in range(0, len(x), self.batch):
                batch = torch.from_numpy(np.ascontiguousarray(x[s:s + self.batch]))
                device = next(encoder.parameters()).device  # a model training on a GPU validates there
                out.append(encoder(batch.to(device)).cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, self.model.config.embed_dim), np.float32)

    def audio(self, x):
        return self._run(self.model.audio, x)

    def score(self, x):
        return self._run(self.model.score, x)


def _batched(fn, make_input, n: int, batch: int = 2000) -> np.ndarray:
    """Embed ``n`` items whose inputs ``make_input(slice)`` builds, a batch at a time (bounded memory)."""
    return np.concatenate([fn(make_input(slice(s, min(n, s + batch)))) for s in range(0, n, batch)])


def embed_pairs(embedder, data, pair_idx) -> tuple[np.ndarray, np.ndarray]:
    pair_idx = np.asarray(pair_idx)
    a = _batched(embedder.audio, lambda sl: data.audio_batch(pair_idx[sl]), len(pair_idx))
    s = _batched(embedder.score, lambda sl: data.roll_batch(pair_idx[sl]), len(pair_idx))
    return a, s


def choose_pairs(n_available: int, n: int = N_PAIRS, seed: int = 0) -> np.ndarray:
    """``n`` pair indices drawn without replacement (all of them if fewer), sorted."""
    rng = np.random.default_rng(seed)
    return np.sort(rng.permutation(n_available)[:n])


def snippet_retrieval(embedder, data, *, n_pairs: int = N_PAIRS, seed: int = 0):
    """(metrics, ranks) of the two-way retrieval over a seeded subset of ``data``'s pairs."""
    a, s = embed_pairs(embedder, data, choose_pairs(len(data.pairs), n_pairs, seed))
    return two_way_retrieval(a, s)


def excerpt_centres(n_frames: int, width: int, n: int = N_EXCERPTS) -> np.ndarray:
    """``n`` evenly spaced centres whose windows lie inside the piece where possible."""
    half = width // 2
    lo, hi = half, max(half, n_frames - (width - half))
    return np.round(np.linspace(lo, hi, n)).astype(np.int64)


def embed_audio_at(embedder, spec: np.ndarray, centres, width: int) -> np.ndarray:
    centres = np.asarray(centres)
    return _batched(embedder.audio, lambda sl: audio_input(cut(spec, centres[sl], width)), len(centres))


def embed_roll_at(embedder, roll: np.ndarray, centres, snippet_config: SnippetConfig) -> np.ndarray:
    centres = np.asarray(centres)
    return _batched(embedder.score,
                    lambda sl: roll_input(cut(roll, centres[sl], snippet_config.roll_frames), snippet_config),
                    len(centres))


@dataclass
class Database:
    """Snippet embeddings and, for each, the index of the piece it belongs to."""

    embeddings: np.ndarray
    owner: np.ndarray
    n_pieces: int

    @classmethod
    def build(cls, parts: list, n_pieces: int) -> "Database":
        """``parts``: (piece index, embeddings) per piece (or per version of a piece)."""
        return cls(np.concatenate([e for _, e in parts]),
                   np.concatenate([np.full(len(e), i) for i, e in parts]), n_pieces)


def identify(queries: list, db: Database, *, k: int = K_NEIGHBOURS) -> tuple[dict, np.ndarray]:
    """``queries``: (true piece indices, excerpt embeddings). Returns (summary, ranks)."""
    ranks = []
    for truth, emb in queries:
        votes = piece_votes(emb, db.embeddings, db.owner, db.n_pieces, k=k)
        ranks.append(min(piece_rank(votes, t) for t in np.atleast_1d(truth)))
    ranks = np.array(ranks)
    return identification_summary(ranks), ranks


# --- the synthesized test splits ---------------------------------------------------

def split_piece_tables(split, min_gap: int = DB_MIN_GAP_FRAMES) -> list:
    """Per render of a test split: piece index, spectrogram, roll and its (thinned) pair centres."""
    out = []
    for r in range(split.n_renders):
        mine = split.pairs[:, 0] == r
        out.append({"piece": int(split.render_piece[r]), "spectrogram": split.spectrogram(r),
                    "roll": split.roll(r), "audio_centres": thin(split.pairs[mine, 1], min_gap),
                    "roll_centres": thin(split.pairs[mine, 2], min_gap)})
    return out


def synthesized_piece_eval(embedder, split, snippet_config: SnippetConfig, *, mirrored: bool = True,
                           score_db: Database | None = None) -> dict:
    """Piece identification (audio queries, score DB) and, if ``mirrored``, performance retrieval."""
    table = split_piece_tables(split)
    n = len(split.piece_ids)
    width_a, width_r = snippet_config.audio_frames, snippet_config.roll_frames
    if score_db is None:
        score_db = Database.build([(t["piece"], embed_roll_at(embedder, t["roll"], t["roll_centres"], snippet_config))
                                   for t in table], n)
    queries = [(t["piece"], embed_audio_at(embedder, t["spectrogram"],
                                           excerpt_centres(len(t["spectrogram"]), width_a), width_a))
               for t in table]
    out = {"piece_identification": identify(queries, score_db)[0], "_score_db": score_db,
           "_queries": queries}   # per render (piece, excerpt embeddings), for another database
    if mirrored:
        audio_db = Database.build([(t["piece"], embed_audio_at(embedder, t["spectrogram"], t["audio_centres"],
                                                               width_a)) for t in table], n)
        queries = [(t["piece"], embed_roll_at(embedder, t["roll"], excerpt_centres(len(t["roll"]), width_r),
                                              snippet_config)) for t in table]
        out["performance_retrieval"] = identify(queries, audio_db)[0]
    return out


# --- real recordings against a MIDI corpus ------------------------------------------

def corpus_rolls(midi_paths, snippet_config: SnippetConfig, frame_rate_hz: float, tempo_scales=(1.0,),
                 *, min_gap: int = CORPUS_MIN_GAP_FRAMES, progress: bool = True) -> list:
    """(file index, tempo scale, roll, onset centres) for every readable MIDI file and scale.

    A scale ``r`` is a performance ``r`` times the written tempo: its roll is
    computed at ``frame_rate_hz / r`` so that roll frame j lines up with audio frame j.
    """
    from tqdm import tqdm

    from follower.errors import BadMidiError
    from follower.midi import load_midi
    from follower.snippets import score_roll

    from ..data.bach10 import onset_frames

    out = []
    for i, path in enumerate(tqdm(midi_paths, desc="corpus rolls", unit="file", disable=not progress)):
        try:
            score = load_midi(path)
        except BadMidiError:
            continue
        for r in tempo_scales:
            rate = frame_rate_hz / r
            out.append((i, r, score_roll(score, snippet_config, rate), thin(onset_frames(score, rate), min_gap)))
    return out


def corpus_score_db(embedder, rolls: list, n_files: int, snippet_config: SnippetConfig,
                    *, progress: bool = True) -> Database:
    from tqdm import tqdm

    parts = [(i, embed_roll_at(embedder, roll, centres, snippet_config))
             for i, _, roll, centres in tqdm(rolls, desc=f"{getattr(embedder, 'name', '')} corpus DB",
                                             unit="roll", disable=not progress)]
    return Database.build(parts, n_files)


def real_piece_eval(embedder, pieces: list, truth: list, rolls: list, n_files: int,
                    snippet_config: SnippetConfig, frame_rate_hz: float, *, tempo_scales=(1.0,),
                    progress: bool = True, score_db: Database | None = None) -> dict:
    """Bach10-style evaluation: recordings against a corpus of MIDI files.

    ``truth[j]``: corpus file indices of recording ``j``'s piece. Piece identification:
    each recording's 100 excerpts against the score snippets of every corpus file (at
    each tempo scale in ``rolls``). Performance retrieval: each true corpus score (its
    excerpts at every scale vote together) against the audio snippets of the recordings.
    """
    wa = snippet_config.audio_frames
    db = score_db or corpus_score_db(embedder, rolls, n_files, snippet_config, progress=progress)
    queries = [(truth[j], embed_audio_at(embedder, p.spectrogram, excerpt_centres(len(p.spectrogram), wa), wa))
               for j, p in enumerate(pieces)]
    out = {"piece_identification": identify(queries, db)[0], "_score_db": db}
    # the audio database: the recordings' snippets at their (aligned) note onsets
    fps_centres = [thin(np.floor(p.score_to_audio_s(p.midi_onset_s) * frame_rate_hz), DB_MIN_GAP_FRAMES)
                   for p in pieces]
    audio_db = Database.build([(j, embed_audio_at(embedder, p.spectrogram, c.astype(np.int64), wa))
                               for j, (p, c) in enumerate(zip(pieces, fps_centres))], len(pieces))
    queries = []
    for j in range(len(pieces)):
        embs = [embed_roll_at(embedder, roll, excerpt_centres(len(roll), snippet_config.roll_frames), snippet_config)
                for i, r, roll, _ in rolls if i == truth[j][0] and r in tempo_scales]
        queries.append((j, np.concatenate(embs)))
    out["performance_retrieval"] = identify(queries, audio_db)[0]
    return out


def posthoc_cca(train_a: np.ndarray, train_s: np.ndarray, *, reg: float = 1e-3) -> dict:
    """Linear CCA fitted on paired embeddings: centring means and projection matrices.

    The paper's CCA layer projects both views onto maximally correlated directions;
    fitted after training (``reg`` added to both covariances, as the paper's r1, r2),
    it maps x to ``normalise((x - mean) @ matrix)`` per view (:func:`project`).
    """
    ma, ms = train_a.mean(0), train_s.mean(0)
    a, s = train_a - ma, train_s - ms
    n = len(a) - 1
    caa = a.T @ a / n + reg * np.eye(a.shape[1])
    css = s.T @ s / n + reg * np.eye(s.shape[1])
    cas = a.T @ s / n

    def inv_sqrt(c):
        w, v = np.linalg.eigh(c)
        return v @ np.diag(w ** -0.5) @ v.T

    wa, ws = inv_sqrt(caa), inv_sqrt(css)
    u, corr, vt = np.linalg.svd(wa @ cas @ ws)
    return {"audio_mean": ma, "audio_matrix": wa @ u, "score_mean": ms, "score_matrix": ws @ vt.T,
            "correlations": corr}


def project(x: np.ndarray, mean: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    y = (x - mean) @ matrix
    return y / (np.linalg.norm(y, axis=1, keepdims=True) + 1e-12)
