"""Render the example recording that `examples/demo.sh` replays.

    python examples/make_example.py [--chorales ../shared/data/midi/bach-chorales]

A held-out chorale (test split, a tune family of its own, so no other harmonisation
of its melody is in the index either), rendered with FluidSynth and the soundfont
kept out of training (TimGM6mb), with General MIDI instruments that no training
render uses (recorder, choir aahs, voice oohs, harpsichord), slower than written
(0.9x), starting mid-piece. The ground truth goes next to it as JSON.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent

PIECE = "bach_bwv362"
START_S = 32.0           # MIDI seconds where the excerpt starts (after the repeated Stollen)
TEMPO_RATIO = 0.9        # 0.9 x the written tempo
DURATION_S = 25.0        # seconds of audio
SOUNDFONT = "TimGM6mb.sf2"
PROGRAMS = {1: 74, 2: 52, 3: 53, 4: 6}  # soprano recorder, alto choir, tenor voice, bass harpsichord
RATE_HZ = 22050
OUT = HERE / "chorale_excerpt.ogg"


def main(argv=None) -> int:
    from training.paths import data_root

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--chorales", default=str(data_root() / "midi" / "bach-chorales"))
    p.add_argument("-o", "--output", default=str(OUT))
    args = p.parse_args(argv)

    import soundfile as sf

    from follower.midi import load_midi
    from training.data.synth import PROGRAMS as TRAINING_PROGRAMS
    from training.data.synth import Renderer, RenderSettings

    used = {prog for family in TRAINING_PROGRAMS.values() for prog in family}
    assert not used & set(PROGRAMS.values()), "the example must use instruments no training render uses"
    midi = Path(args.chorales) / f"{PIECE}.mid"
    score = load_midi(midi)
    notes = score.notes.copy()
    notes["start_s"] /= TEMPO_RATIO
    notes["end_s"] /= TEMPO_RATIO
    renderer = Renderer(RenderSettings(sample_rate_hz=RATE_HZ))
    try:
        audio = renderer.render(notes, PROGRAMS, SOUNDFONT)
    finally:
        renderer.close()
    first = int(START_S / TEMPO_RATIO * RATE_HZ)
    audio = audio[first:first + int(DURATION_S * RATE_HZ)]
    fade = int(0.05 * RATE_HZ)  # no click at the cut
    audio[:fade] *= np.linspace(0, 1, fade, dtype=np.float32)
    audio *= 0.5 / max(float(np.abs(audio).max()), 1e-6)
    out = Path(args.output)
    sf.write(out, audio, RATE_HZ, format="OGG", subtype="VORBIS")
    truth = {"piece": PIECE, "midi": f"bach-chorales/{PIECE}.mid", "start_s": START_S, "tempo_ratio": TEMPO_RATIO,
             "written_bpm": round(score.bpm_at(START_S), 2), "duration_s": DURATION_S, "soundfont": SOUNDFONT,
             "programs": {str(k): v for k, v in PROGRAMS.items()},
             "position_s_at": "start_s + tempo_ratio * t, t = seconds into the recording"}
    out.with_suffix(".json").write_text(json.dumps(truth, indent=2) + "\n")
    print(f"{out}: {DURATION_S:.0f} s of {PIECE} from {START_S:.0f} s at {TEMPO_RATIO}x, "
          f"{out.stat().st_size / 1024:.0f} kB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
