"""``training``: build the dataset, train and evaluate the encoders, export a bundle."""

import sys

from follower.cliutil import main_for

from . import (blend, corpus, dataset, distill, evaluate, export, partial_audio, quantize, quantize_shared,
               shared_head, student_audio, train)

DESCRIPTION = """\
Offline pipeline of the score follower (Dorfer et al. 2018, with MIDI piano rolls),
from a MIDI corpus to the model bundle the follower loads:

  training corpus bach -o DIR            1. write the Bach chorales (music21) as MIDI, if you have no corpus
  training corpus music21 -o DIR            (music21's other composers and folk tunes, split by work)
  training dataset build [-o DATASET]    2. render corpora with FluidSynth, cut aligned snippet pairs
  training dataset figure DATASET -o PNG    (look at one aligned pair)
  training train DATASET -o RUN          3. train the audio and score encoders (resumable)
  training cca RUN -o RUN_CCA               (optional: the paper's CCA layer, fitted post hoc)
  training evaluate RUN                  4. snippet retrieval and piece identification, synthesized + Bach10
  training evaluate RUN RUN ...             (compare runs in one table)
  training blend RUN_A RUN_B -o RUN        (average a fine-tune with its starting point)
  training export RUN -o exported/NAME   5. ONNX encoders + config.json + metrics.json
  training quantize BUNDLE -o OUT --audio FILE...  (optional: int8 audio encoder, faster updates)
  training distill BUNDLE -o OUT --corpus DIR...    (optional: small score encoder, faster index builds)
  training shared-head BUNDLE -o OUT --corpus DIR... (optional: shared-trunk head, faster index builds)
  training quantize-shared BUNDLE -o OUT --midi PATH... (optional: int8 shared trunk, cheaper index builds)
  training partial-audio BUNDLE -o OUT --dataset DATA (optional: audio encoder for the music starting)
  training student-audio BUNDLE -o RUN --dataset DATA  (optional: narrower audio encoder, cheaper updates)

then: follower index build CORPUS -o exported/NAME/NAME.index.npz --bundle exported/NAME
"""

COMMAND_MODULES = [corpus, dataset, train, evaluate, export, quantize, distill, shared_head, quantize_shared,
                   partial_audio, student_audio, blend]


def main(argv=None) -> int:
    return main_for("training", DESCRIPTION, COMMAND_MODULES, argv)


if __name__ == "__main__":
    sys.exit(main())
