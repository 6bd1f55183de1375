"""Real-time score follower runtime (numpy, onnxruntime, numba; no torch)."""

__version__ = "0.1.0"
