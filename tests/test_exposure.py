"""`socialfer serve` does not open an unauthenticated API on an address others can reach."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from socialfer.cli import main
from socialfer.exposure import is_loopback_host, open_api_refusal
from tests.support import make_settings


@pytest.mark.parametrize("host", ["127.0.0.1", "127.8.9.10", "::1", "[::1]", "localhost", "LOCALHOST"])
def test_loopback_hosts(host: str) -> None:
    assert is_loopback_host(host)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "", "10.0.0.5", "192.168.1.2", "example.org", "api"])
def test_hosts_others_can_reach(host: str) -> None:
    assert not is_loopback_host(host)


def test_an_open_api_needs_keys_or_an_explicit_yes(tmp_path: Path) -> None:
    assert "SOCIALFER_API_KEYS" in open_api_refusal("0.0.0.0", make_settings(tmp_path, api_keys=()))
    assert open_api_refusal("0.0.0.0", make_settings(tmp_path, api_keys=("k",))) is None
    assert open_api_refusal("0.0.0.0", make_settings(tmp_path, api_keys=(), allow_open_api=True)) is None
    assert open_api_refusal("127.0.0.1", make_settings(tmp_path, api_keys=())) is None


def test_serve_refuses_before_listening(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SOCIALFER_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("SOCIALFER_API_KEYS", raising=False)
    monkeypatch.delenv("SOCIALFER_ALLOW_OPEN_API", raising=False)
    result = CliRunner().invoke(main, ["serve", "--host", "0.0.0.0", "--port", "1"])
    assert result.exit_code == 1
    assert "refusing to serve an open API on 0.0.0.0" in result.output
    assert "is serving on" not in result.output  # refused before any server or worker starts
