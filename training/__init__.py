"""Offline side: corpora -> fluidsynth renders -> aligned snippet pairs -> dual encoders -> ONNX bundle."""
