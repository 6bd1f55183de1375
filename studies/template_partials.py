"""How well the fine aligner's note templates tell a frame's own place from the music near it (a study).

    python -m studies.template_partials --material DIR[,DIR...] [--kinds chorale,piano,jumps,bach10] \\
        [--variants 0.6,0.7,0.8,0.7/120]

The fine aligner (:mod:`follower.aligner`) weighs each score frame by ``exp(sharpness * cosine)`` of
the newest audio frame with the frame's note template, both centred over the bands. It goes wrong
where a template a little way off matches the audio better than the one of the place being played:
on the Bach10 recordings, a held chord over a bassoon's low F matched the same chord over an F an
octave higher, written 1.8 s earlier, and the aligner went back there (docs/improvements.md (bbb),
(eee)). This measures that directly, without the aligner's dynamics: for every sounding frame of
each item, the centred cosine with the template at the truth's place (the best of the three frames
around it: one 50 ms frame of tolerance) against the best template 0.5-3 s from it, over the
items' MIDI notes as the index carries them. Printed per kind of item: the share of frames where
the truth's template wins, and the median margin.

A variant is a ``harmonic_decay`` (:class:`follower.aligner.FineConfig`: each partial weighs
``decay ** (h - 1)`` of the fundamental) and, after a slash, a low cut in Hz: every partial's
amplitude also scaled by ``f / hypot(f, cut)`` (a first-order high-pass: the weaker fundamentals of
low instruments, and rooms and microphones that lose the bass). The low cut is this study's own;
the follower has none. Material: folders with a ``manifest.json`` (``benchmarks.material --set
tuning`` renders for choosing; the benchmark's own folder for its Bach10 recordings, as a check).
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

import numpy as np

NEAR_FRAMES = 1        # the truth's template: the best of the frames within this of its place
FAR_S = (0.5, 3.0)     # ... against the best template this far from it


def parse_variant(text: str) -> tuple[float, float]:
    """``"0.7"`` or ``"0.7/120"`` -> (harmonic decay, low cut in Hz; 0 = none)."""
    decay, _, cut = text.partition("/")
    return float(decay), float(cut or 0.0)


def low_cut(low_cut_hz: float):
    """The partial weight ``f / hypot(f, low_cut_hz)`` (:func:`follower.aligner.pitch_templates`'s
    ``partial_gain``), or None for no low cut."""
    if low_cut_hz <= 0:
        return None
    return lambda f_hz: f_hz / np.hypot(f_hz, low_cut_hz)


def pitch_templates(features, config, low_cut_hz: float) -> np.ndarray:
    """:func:`follower.aligner.pitch_templates`, each partial also scaled by ``f / hypot(f, low_cut_hz)``."""
    from follower.aligner import pitch_templates as plain

    return plain(features, config, partial_gain=low_cut(low_cut_hz))


def templates(notes, features, decay: float, low_cut_hz: float) -> np.ndarray:
    """The piece's 50 ms templates (:func:`follower.aligner.score_templates`) under one variant."""
    from follower.aligner import FineConfig, score_templates

    config = replace(FineConfig(), harmonic_decay=decay)
    return score_templates(notes["start_s"], notes["end_s"], notes["pitch"], features, config, low_cut(low_cut_hz))


def centred_rows(x: np.ndarray) -> np.ndarray:
    x = x - x.mean(axis=-1, keepdims=True)
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-9)


def margins(spec: np.ndarray, truth_s: np.ndarray, sounding: np.ndarray, tmpl: np.ndarray, fps: float) -> np.ndarray:
    """Per sounding frame with a truth inside the piece: the truth's best centred cosine minus the best
    of the templates ``FAR_S`` from it."""
    a, t = centred_rows(spec), centred_rows(tmpl)
    near_lo, far_lo, far_hi = NEAR_FRAMES, int(round(FAR_S[0] * fps)), int(round(FAR_S[1] * fps))
    out = []
    for k in np.flatnonzero(sounding & np.isfinite(truth_s)):
        j = int(truth_s[k] * fps)
        if not 0 <= j < len(t) or not tmpl[j].any():
            continue
        lo, hi = max(j - far_hi, 0), min(j + far_hi + 1, len(t))
        cos = t[lo:hi] @ a[k]
        d = np.abs(np.arange(lo, hi) - j)
        if not (d >= far_lo).any():
            continue
        out.append(cos[d <= near_lo].max() - cos[d >= far_lo].max())
    return np.array(out)


def main(argv=None) -> int:
    import soundfile as sf

    from benchmarks.warp import load_truth
    from follower.bundle import load_bundle
    from follower.errors import ConfigError
    from follower.features import spectrogram
    from follower.midi import load_midi
    from follower.paths import DEFAULT_BUNDLE, resolve_bundle

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--material", required=True, help="folders with a manifest.json, comma-separated")
    p.add_argument("--kinds", default="chorale,piano,jumps,bach10", help="item kinds to measure")
    p.add_argument("--variants", default="0.6,0.7,0.8,0.7/120", help="harmonic decays[/low cut Hz], comma-separated")
    p.add_argument("--bundle", default=DEFAULT_BUNDLE, help="whose front end makes the spectrogram")
    args = p.parse_args(argv)
    try:
        variants = [parse_variant(v) for v in args.variants.split(",")]
    except ValueError:
        p.error(f"--variants {args.variants!r}: give decays such as 0.6,0.7/120")
    features = load_bundle(resolve_bundle(args.bundle), threads=1).config.features
    fps = features.frame_rate_hz
    kinds = set(args.kinds.split(","))
    found = defaultdict(lambda: defaultdict(list))  # kind -> variant -> margins per item
    for folder in args.material.split(","):
        manifest = Path(folder) / "manifest.json"
        if not manifest.is_file():
            raise SystemExit(str(ConfigError(f"{manifest}: no material; render it with "
                                             "`python -m benchmarks.material --set tuning`")))
        for item in json.loads(manifest.read_text()):
            if item["kind"] not in kinds:
                continue
            audio, rate = sf.read(item["audio"], dtype="float32", always_2d=True)
            spec = spectrogram(audio.mean(axis=1), rate, features)
            loudness = spec.sum(axis=1)
            sounding = loudness > 0.2 * np.percentile(loudness, 90)
            truth_s = load_truth(Path(item["truth"])).audio_to_midi((np.arange(len(spec)) + 0.5) / fps)
            notes = load_midi(item["midi"]).pitched
            for v in variants:
                found[item["kind"]][v].append(margins(spec, truth_s, sounding, templates(notes, features, *v), fps))
    print("| kind | frames | " + " | ".join(f"{d}" + (f" / low cut {c:g} Hz" if c else "") for d, c in variants)
          + " |  (truth's template wins; median margin)")
    print("|---|---:|" + "---|" * len(variants))
    for kind, per in found.items():
        cells = []
        for v in variants:
            m = np.concatenate(per[v]) if per[v] else np.zeros(0)
            cells.append(f"{np.mean(m > 0) * 100:.1f} %, {np.median(m):+.3f}" if len(m) else "-")
        n = sum(len(x) for x in per[variants[0]])
        print(f"| {kind} ({len(per[variants[0]])}) | {n:,} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
