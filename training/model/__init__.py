"""The two encoders and the losses that train them (torch)."""
