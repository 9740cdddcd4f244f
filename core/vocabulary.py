"""Words every layer shares: the expressions, the platforms, the states of an image.

The expression order is FER2013's class order (0..6), which the model's outputs and the
score columns follow.
"""

from __future__ import annotations

EMOTIONS: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
PLATFORMS: tuple[str, ...] = ("facebook", "instagram", "twitter", "other")

QUEUED, PROCESSING, DONE, FAILED = "queued", "processing", "done", "failed"
IMAGE_STATES: tuple[str, ...] = (QUEUED, PROCESSING, DONE, FAILED)
TERMINAL_STATES: tuple[str, ...] = (DONE, FAILED)

# API key scopes, each including the ones before it: read < write < admin.
READ, WRITE, ADMIN = "read", "write", "admin"
SCOPES: tuple[str, ...] = (READ, WRITE, ADMIN)


def scope_allows(held: str, needed: str) -> bool:
    """Whether a key of scope `held` may do what needs `needed`."""
    return SCOPES.index(held) >= SCOPES.index(needed)
