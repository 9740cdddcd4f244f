"""The model's label set and input size, importable without TensorFlow (the names live in core.vocabulary)."""

from core.vocabulary import EMOTIONS

FACE_SIZE = 48

__all__ = ["EMOTIONS", "FACE_SIZE"]
