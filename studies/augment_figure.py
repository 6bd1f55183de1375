"""``python -m studies.augment_figure DATASET -o docs/figures/improve_augment.png``.

One training snippet as the encoder sees it, the same snippet under each acoustic
augmentation of :mod:`training.augment.acoustic`, and a Bach10 snippet for reference:
the gap the augmentation is meant to narrow.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np


def main(argv=None) -> int:
    from follower.cliutil import run_main

    from training.paths import data_root

    p = argparse.ArgumentParser(prog="python -m studies.augment_figure", description=__doc__)
    p.add_argument("dataset")
    p.add_argument("-o", "--out", required=True)
    p.add_argument("--bach10", default=str(data_root() / "real" / "bach10"))
    p.add_argument("--seed", type=int, default=3)
    p.add_argument("--debug", action="store_true")
    return run_main(_run, p.parse_args(argv))


def _run(args) -> int:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from training.augment.acoustic import AudioAugmentConfig, augment_batch
    from training.data.bach10 import RealPairs, load_bach10
    from training.data.split import dataset_configs, load_split

    snip, feat = dataset_configs(args.dataset)
    valid = load_split(args.dataset, "valid", snip)
    rng = np.random.default_rng(args.seed)
    idx = np.array([int(rng.integers(len(valid.pairs)))])
    x = valid.audio_batch(idx)
    fps = feat.frame_rate_hz
    only = {"EQ / tilt / gain": dict(p_eq=1, p_reverb=0, p_noise=0),
            "reverb smear": dict(p_eq=0, p_reverb=1, p_noise=0, rt60_s=(1.2, 1.2), wet=(0.6, 0.6)),
            "noise floor": dict(p_eq=0, p_reverb=0, p_noise=1, snr_db=(30.0, 30.0)),
            "all (training draw)": {}}
    panels = [("synthesized (training data)", x[0, 0])]
    for title, kw in only.items():
        cfg = AudioAugmentConfig(frame_rate_hz=fps, **kw)
        panels.append((title, augment_batch(x, np.random.default_rng(args.seed), cfg)[0, 0]))
    pieces = load_bach10(args.bach10, snip, feat, progress=False)
    real = RealPairs(pieces, snip, feat)
    panels.append(("Bach10 recording (real)", real.audio_batch(np.array([len(real.pairs) // 3]))[0, 0]))
    fig, axes = plt.subplots(1, len(panels), figsize=(2.3 * len(panels), 3.2), sharey=True)
    vmax = max(p.max() for _, p in panels)
    for ax, (title, img) in zip(axes, panels):
        ax.imshow(img, origin="lower", aspect="auto", cmap="magma", vmin=0, vmax=vmax,
                  extent=(0, img.shape[1] / fps, 0, img.shape[0]))
        ax.set_title(title, fontsize=8)
        ax.set_xlabel("s")
    axes[0].set_ylabel("band (16 per octave)")
    fig.tight_layout()
    fig.savefig(args.out, dpi=110)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
