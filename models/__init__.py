"""Face detection and expression classification (TensorFlow/Keras). Never imports Flask or Celery.

`EmotionClassifier` and `FaceAnalyzer` load lazily so `import models` stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from models.labels import EMOTIONS

if TYPE_CHECKING:
    from models.analyzer import FaceAnalyzer
    from models.classifier import EmotionClassifier

__all__ = ["EMOTIONS", "EmotionClassifier", "FaceAnalyzer"]


def __getattr__(name: str):
    if name == "EmotionClassifier":
        from models.classifier import EmotionClassifier

        return EmotionClassifier
    if name == "FaceAnalyzer":
        from models.analyzer import FaceAnalyzer

        return FaceAnalyzer
    raise AttributeError(name)
