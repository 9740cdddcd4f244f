"""Committed model files: the shipped expression model and its model card."""

from pathlib import Path

WEIGHTS_DIR = Path(__file__).resolve().parent
DEFAULT_MODEL_PATH = WEIGHTS_DIR / "emotion_cnn.keras"


def model_card_path(model_path: Path) -> Path:
    """The JSON card that sits next to a model file."""
    return model_path.with_suffix(".json")
