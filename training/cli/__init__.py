"""``training``: build the dataset, train and evaluate the encoders, export a bundle."""

import sys

from follower.cliutil import main_for

from . import corpus, dataset, evaluate, export, train

DESCRIPTION = """\
Offline pipeline of the score follower (Dorfer et al. 2018, with MIDI piano rolls):

  training corpus bach -o DIR          write the Bach chorales (music21) as MIDI
  training dataset build ...           render corpora with fluidsynth, cut aligned snippet pairs
  training train DATASET -o RUN        train the audio and score encoders
  training evaluate RUN                snippet retrieval and piece identification
  training export RUN -o exported/X    ONNX encoders + config.json + metrics.json
"""

COMMAND_MODULES = [corpus, dataset, train, evaluate, export]


def main(argv=None) -> int:
    return main_for("training", DESCRIPTION, COMMAND_MODULES, argv)


if __name__ == "__main__":
    sys.exit(main())
