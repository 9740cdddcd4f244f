"""Persistence: the SQLAlchemy schema, sessions, migrations and the queries the API serves."""

from db.schema import (
    PREVIEW,
    UPLOAD,
    UPLOAD_URL_PREFIX,
    Base,
    Batch,
    Face,
    Image,
    ImageFile,
)
from db.session import Database

__all__ = [
    "PREVIEW",
    "UPLOAD",
    "UPLOAD_URL_PREFIX",
    "Base",
    "Batch",
    "Database",
    "Face",
    "Image",
    "ImageFile",
]
