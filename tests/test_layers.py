"""The walls of the layout, checked on the source: which package may import which."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("core", "analysis", "models", "db", "workers", "api", "socialfer")
# What each package must never import (anywhere in it, lazily or not).
FORBIDDEN = {
    "core": {"analysis", "models", "db", "workers", "api", "socialfer"},
    # pure estimators: numpy and the ground layer only (the API reads the model card's JSON through it)
    "analysis": {"models", "db", "workers", "api", "socialfer", "flask", "celery", "sqlalchemy", "tensorflow", "keras"},
    "models": {"db", "workers", "api", "socialfer", "flask", "celery", "sqlalchemy"},
    "db": {"models", "workers", "api", "socialfer", "flask", "celery", "tensorflow", "keras"},
    "api": {"models", "socialfer", "tensorflow", "keras"},
    "workers": {"api", "socialfer"},
}


def imported_packages(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    names |= {
        node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module and not node.level
    }
    return {name.split(".")[0] for name in names}


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_keeps_to_its_layer(package: str) -> None:
    crossings = {
        f"{path.relative_to(PROJECT_ROOT)} imports {sorted(imported_packages(path) & FORBIDDEN[package])}"
        for path in sorted((PROJECT_ROOT / package).rglob("*.py"))
        if imported_packages(path) & FORBIDDEN[package]
    }
    assert crossings == set()
