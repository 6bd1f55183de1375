"""The dataset: corpora and their splits, FluidSynth renders, aligned snippet pairs, Bach10."""
