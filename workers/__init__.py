"""Celery workers: fetch an image, analyse it, store the result. Tasks are thin wrappers."""
