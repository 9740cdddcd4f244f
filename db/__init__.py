"""Persistence: the SQLAlchemy schema, sessions, migrations and the queries the API serves."""

from db.schema import DONE, FAILED, IMAGE_STATES, PLATFORMS, PROCESSING, QUEUED, Base, Batch, Face, Image
from db.session import Database

__all__ = [
    "DONE",
    "FAILED",
    "IMAGE_STATES",
    "PLATFORMS",
    "PROCESSING",
    "QUEUED",
    "Base",
    "Batch",
    "Database",
    "Face",
    "Image",
]
