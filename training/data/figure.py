"""One aligned pair as the encoders see it, spectrogram beside piano roll (``training dataset figure``)."""

from __future__ import annotations

import numpy as np


def pick_pair(data, seed: int = 0) -> int:
    """A pair whose roll window is busy (several notes), so the figure shows something."""
    rng = np.random.default_rng(seed)
    candidates = rng.choice(data.n_pairs, size=min(200, data.n_pairs), replace=False)
    density = data.roll_batch(candidates).sum(axis=(1, 2, 3))
    return int(candidates[np.argmax(density)])


def plot_pair(data, pair: int, out_png) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    spec = data.audio_batch([pair])[0, 0]
    roll = data.roll_batch([pair])[0].max(axis=0)  # channels overlaid
    render, audio_c, roll_c = (int(x) for x in data.pairs[pair])
    fps = data.frame_rate_hz
    cfg = data.snippet_config
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.8), constrained_layout=True)
    half_a, half_r = cfg.audio_frames // 2, cfg.roll_frames // 2
    axes[0].imshow(spec, origin="lower", aspect="auto", cmap="magma",
                   extent=[(audio_c - half_a) / fps, (audio_c - half_a + cfg.audio_frames) / fps, 0, spec.shape[0]])
    axes[0].set(title=f"audio: {data.soundfont[render]}, tempo x{data.tempo_ratio[render]:.2f}",
                xlabel="audio time (s)", ylabel="log-frequency band (16/octave, 30 Hz-6 kHz)")
    pitches = np.flatnonzero(roll.any(axis=1))
    lo, hi = (pitches.min() - 3, pitches.max() + 4) if len(pitches) else (0, roll.shape[0])
    axes[1].imshow(roll[lo:hi], origin="lower", aspect="auto", cmap="Greys", interpolation="nearest",
                   extent=[(roll_c - half_r) / fps, (roll_c - half_r + cfg.roll_frames) / fps,
                           cfg.pitch_lo + lo - 0.5, cfg.pitch_lo + hi - 0.5])
    shift = int(data.transpose[render])
    axes[1].set(title=f"piano roll ({', '.join(cfg.roll_channels)})" + (f", transposed {shift:+d}" if shift else ""),
                xlabel="score time (s of the MIDI timeline)", ylabel="MIDI pitch")
    for ax in axes:
        ax.axvline(ax.get_xlim()[0] + (ax.get_xlim()[1] - ax.get_xlim()[0]) / 2, color="tab:cyan", lw=0.8, ls="--")
    fig.suptitle(f"{data.piece_names[data.render_piece[render]]}: pair {pair} of split '{data.split}' "
                 f"(centre = note onset)")
    fig.savefig(out_png, dpi=120)
    plt.close(fig)
