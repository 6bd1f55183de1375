"""Fitting the encoders: the training loop (resumable) and the post-hoc CCA layer."""
