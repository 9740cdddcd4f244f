"""Settings: each declared once, read from the environment, contradictions refused, README in step."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from core.settings import Settings, SettingsError, configuration_table, env_name, load_settings

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def test_readme_configuration_table_is_the_declaration() -> None:
    readme = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
    assert configuration_table() in readme


def test_every_field_reads_its_environment_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOCIALFER_API_KEYS", " k1, k2 ,")
    monkeypatch.setenv("SOCIALFER_ALLOWED_PORTS", "80,8443")
    monkeypatch.setenv("SOCIALFER_MODEL", "/models/other.keras")
    monkeypatch.setenv("SOCIALFER_ALLOW_PRIVATE_URLS", "yes")
    monkeypatch.setenv("SOCIALFER_MAX_URL_LENGTH", "4096")
    monkeypatch.setenv("SOCIALFER_CA_BUNDLE", "")  # empty means not set
    monkeypatch.setenv("SOCIALFER_DATA_DIR", "/srv/socialfer")
    settings = load_settings()
    assert settings.api_keys == ("k1", "k2")
    assert settings.allowed_ports == frozenset({80, 8443})
    assert settings.model_path == Path("/models/other.keras")
    assert settings.allow_private_urls is True
    assert settings.max_url_length == 4096
    assert settings.ca_bundle is None
    assert settings.database_url == "sqlite:////srv/socialfer/socialfer.db"
    assert env_name("model_path") == "SOCIALFER_MODEL"
    assert env_name("max_redirects") == "SOCIALFER_MAX_REDIRECTS"


@pytest.mark.parametrize(
    ("environment", "named"),
    [
        ({"SOCIALFER_PROCESSING_TIMEOUT": "200"}, "SOCIALFER_PROCESSING_TIMEOUT must exceed SOCIALFER_TASK_TIME_LIMIT"),
        ({"SOCIALFER_TASK_SOFT_TIME_LIMIT": "300"}, "SOCIALFER_TASK_SOFT_TIME_LIMIT must be below"),
        ({"SOCIALFER_RETRY_BASE_DELAY": "400"}, "SOCIALFER_RETRY_BASE_DELAY must not exceed"),
        ({"SOCIALFER_READ_TIMEOUT": "soon"}, "SOCIALFER_READ_TIMEOUT: Input should be a valid number"),
        ({"SOCIALFER_ALLOWED_PORTS": "80,70000"}, "SOCIALFER_ALLOWED_PORTS: Value error, ports must be 1 to 65535"),
        ({"SOCIALFER_MAX_ATTEMPTS": "0"}, "SOCIALFER_MAX_ATTEMPTS: Input should be greater than or equal to 1"),
        ({"SOCIALFER_PRECISION": "int8"}, "SOCIALFER_PRECISION: Input should be 'auto', 'float32' or 'mixed_bfloat16'"),
    ],
)
def test_contradictions_and_bad_values_are_refused_by_name(
    monkeypatch: pytest.MonkeyPatch, environment: dict[str, str], named: str
) -> None:
    for key, value in environment.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(SettingsError) as error:
        load_settings()
    assert named.replace("Value error, ", "") in str(error.value)


def test_with_changes_validates_like_the_environment() -> None:
    settings = Settings()
    assert settings.with_changes(max_attempts=2).max_attempts == 2
    with pytest.raises(ValueError, match="PROCESSING_TIMEOUT"):
        settings.with_changes(processing_timeout=10)


def environment_reads(path: Path) -> list[str]:
    """`os.environ` / `os.getenv` reads in one module (writes such as setdefault for a library are allowed)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    reads = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in {"get", "__getitem__"}:
            target = node.value
            if isinstance(target, ast.Attribute) and target.attr == "environ":
                reads.append(f"{path.relative_to(PROJECT_ROOT)}:{node.lineno}")
        if isinstance(node, ast.Attribute) and node.attr == "getenv":
            reads.append(f"{path.relative_to(PROJECT_ROOT)}:{node.lineno}")
    return reads


def test_only_the_settings_module_reads_the_environment() -> None:
    """Every SOCIALFER_* variable is read in core/settings.py and passed down."""
    reads = [
        read
        for package in ("api", "workers", "db", "models", "core", "socialfer")
        for path in sorted((PROJECT_ROOT / package).rglob("*.py"))
        if path.name != "settings.py"
        for read in environment_reads(path)
    ]
    assert reads == []


def test_settings_import_nothing_of_the_project() -> None:
    tree = ast.parse((PROJECT_ROOT / "core" / "settings.py").read_text(encoding="utf-8"))
    imported = {
        alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names
    }
    imported |= {
        node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module
    }
    assert not imported & {"api", "workers", "db", "models", "socialfer"}
