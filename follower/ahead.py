"""Audio embeddings computed ahead, in batches, for replay as fast as possible.

A window's embedding depends on the audio only, never on the engine's state, so the
embeddings of every window a long block completes can be computed in batches before
the engine runs that block's updates (``follower replay --fast`` reads blocks of 3-6 s;
live input completes one frame at a time and never comes here). The engine then
takes each update's embedding from the dict :func:`embed_ahead` returns.

That changes no output only if the encoder gives each row of a batch bit for bit
what that input gets alone. onnxruntime convolves image by image, so the bundles'
convolutional encoders do; not every graph does (a MatMul may sum in another order
for another batch size), so :func:`batches_exact` checks the encoder once and the
engine batches only where it holds.
"""

from __future__ import annotations

import numpy as np

from .noise import silent_lead, sounding
from .snippets import audio_input

# windows per encoder call: the int8 audio encoder costs 1.12 ms a window in batches of 8 and 1.43 ms
# in batches of 64 (one core, CPU time, median of 5 passes over 512 windows; docs/improvements.md (ee)):
# the larger batches' activations no longer stay in the cache
BATCH = 8


def batches_exact(encoder, width: int, n_bins: int, n: int = 8) -> bool:
    """Whether ``encoder`` embeds a batch of ``n`` random windows exactly as it embeds each alone."""
    x = audio_input(np.random.default_rng(0).uniform(0, 3, (n, width, n_bins)))
    alone = np.concatenate([encoder(x[i:i + 1]) for i in range(n)])
    return bool(np.array_equal(encoder(x), alone))


def batches_exact_once(encoder, width: int, n_bins: int) -> bool:
    """:func:`batches_exact`, asked once per encoder and window shape and kept with the encoder: every
    engine over one bundle (the pair of ``follower.two_speeds``, each file of a batch replay) has the
    same answer."""
    known = encoder.__dict__.setdefault("_batches_exact", {})
    if (width, n_bins) not in known:
        known[(width, n_bins)] = batches_exact(encoder, width, n_bins)
    return known[(width, n_bins)]


def embed_ahead(encoder, history: np.ndarray, history_loud: np.ndarray, frames: np.ndarray, n_before: int,
                config, partial=None, partial_min_frames: int = 0, partial_blend: float = 1.0) -> dict:
    """{frame count: embedding} of every window that the updates of ``frames`` will embed.

    ``history`` / ``history_loud``: the engine's newest window and its sounding flags
    before ``frames`` (``n_before`` frames consumed so far); ``config``: the
    :class:`follower.engine.EngineConfig` whose stride and sounding rule the updates apply.
    ``partial``: the bundle's encoder for windows with ``partial_min_frames`` or more silent
    frames first, which it embeds with those frames set to 0, as the engine does.
    """
    width = len(history)
    spec = np.concatenate([history[1:], frames])     # the width - 1 frames before, then the new ones
    loud = np.concatenate([history_loud[1:], sounding(frames, config.silence_level, config.noise_flatness)])
    wanted, leads = [], []
    for j in range(len(frames)):                     # frame j completes the window spec[j:j + width]
        if (n_before + j + 1) % config.stride_frames:
            continue
        lw = loud[j:j + width]
        if lw.mean() >= config.min_sound_fraction and lw[-3:].any():  # the engine's rule for embedding
            lead = silent_lead(lw)
            if partial is not None and lead >= partial_min_frames:
                leads.append((j, lead))
            else:
                wanted.append(j)
    out = {}
    for i in range(0, len(wanted), BATCH):
        chunk = wanted[i:i + BATCH]
        emb = encoder(audio_input(np.stack([spec[j:j + width] for j in chunk])))
        out.update((n_before + j + 1, e) for j, e in zip(chunk, emb))
    for i in range(0, len(leads), BATCH):
        chunk = leads[i:i + BATCH]
        x = np.stack([spec[j:j + width] for j, _ in chunk])
        full = encoder(audio_input(x)) if partial_blend < 1.0 else None  # (the windows as they are)
        for row, (_, lead) in zip(x, chunk):
            row[:lead] = 0.0
        emb = partial(audio_input(x))
        if full is not None:
            emb = [blend(e, f, partial_blend) for e, f in zip(emb, full)]
        out.update((n_before + j + 1, e) for (j, _), e in zip(chunk, emb))
    return out


def blend(partial: np.ndarray, full: np.ndarray, weight: float) -> np.ndarray:
    """Unit-length ``weight * partial + (1 - weight) * full`` of two unit embeddings of one window:
    against unit score embeddings it ranks snippets by the weighted mean of the two cosines."""
    q = weight * partial + (1.0 - weight) * full
    return (q / max(float(np.linalg.norm(q)), 1e-12)).astype(partial.dtype, copy=False)
