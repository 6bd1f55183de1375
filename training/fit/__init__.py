"""Fitting the encoders: the training loop (resumable), the post-hoc CCA layer, the int8 audio encoder's calibration."""
