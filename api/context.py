"""Typed access to the per-app resources that `create_app` puts in `app.extensions`."""

from __future__ import annotations

from celery import Celery
from flask import current_app

from core.settings import Settings
from db import Database

SETTINGS_KEY = "SOCIALFER"


def settings() -> Settings:
    return current_app.config[SETTINGS_KEY]


def database() -> Database:
    return current_app.extensions["db"]


def celery() -> Celery:
    return current_app.extensions["celery"]
