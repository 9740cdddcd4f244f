"""Which confusion matrix corrects the shares of a request: `matrix=` or the configured one, from the model card."""

from __future__ import annotations

from analysis.card import CardError, confusion, matrices
from analysis.correction import Confusion
from api.context import settings
from api.errors import ApiError


def bad_matrix(message: str) -> ApiError:
    return ApiError(400, "invalid_parameter", f"matrix: {message}")


def requested_confusion(asked: str | None) -> tuple[Confusion | None, str | None]:
    """The matrix to correct with, or None and a note saying why corrected shares are missing.

    A `matrix` the card does not have is the client's error (400); a card without the
    configured matrix only takes the corrected shares out of the answer.
    """
    config = settings()
    try:
        available = matrices(config.model_path)
    except CardError:
        if asked is not None:
            raise bad_matrix("the model card holds no confusion matrices") from None
        return None, "corrected shares unavailable: the model card holds no confusion matrices"
    name = asked or config.confusion_matrix
    if name not in available:
        if asked is not None:
            raise bad_matrix(f"must be one of {', '.join(sorted(available))}")
        return None, f"corrected shares unavailable: the model card has no confusion matrix {name!r}"
    return confusion(config.model_path, name), None
