"""The FER2013 label set, importable without TensorFlow."""

EMOTIONS: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
FACE_SIZE = 48
