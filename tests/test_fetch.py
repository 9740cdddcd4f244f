"""The fetcher: refusals before connecting, and every failure mapped to its code."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.support import image_server, make_settings
from workers.fetch import FetchError, FetchPolicy, check_url, fetch_image, is_public_address


@pytest.mark.parametrize("address", ["8.8.8.8", "1.1.1.1", "2001:4860:4860::8888"])
def test_public_addresses_pass(address: str) -> None:
    assert is_public_address(address)


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",
        "224.0.0.1",
        "255.255.255.255",
        "::1",
        "fc00::1",
        "fe80::1",
        "::ffff:127.0.0.1",
        "::ffff:10.0.0.1",
    ],
)
def test_private_and_special_addresses_are_refused(address: str) -> None:
    assert not is_public_address(address)


@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("ftp://example.com/a.jpg", "unsupported_scheme"),
        ("file:///etc/passwd", "unsupported_scheme"),
        ("http://user:secret@example.com/a.jpg", "credentials_in_url"),
        ("http:///nohost.jpg", "invalid_url"),
        ("http://127.0.0.1/a.jpg", "blocked_address"),
        ("http://localhost/a.jpg", "blocked_address"),
        ("http://2130706433/a.jpg", "blocked_address"),  # 127.0.0.1 spelled as a decimal number
        ("http://[::1]/a.jpg", "blocked_address"),
        ("http://169.254.169.254/latest/meta-data/", "blocked_address"),
    ],
)
def test_check_url_refuses(url: str, code: str, tmp_path: Path) -> None:
    with pytest.raises(FetchError) as caught:
        check_url(url, FetchPolicy.from_settings(make_settings(tmp_path, allow_private_urls=False)))
    assert caught.value.code == code


@pytest.fixture
def served(tmp_path: Path):
    cv2.imwrite(str(tmp_path / "face.png"), np.full((32, 32, 3), 200, np.uint8))
    with image_server(tmp_path) as server:
        yield server


def fetch_code(url: str, tmp_path: Path, **overrides) -> str:
    settings = make_settings(tmp_path, allow_private_urls=True, **overrides)
    with pytest.raises(FetchError) as caught:
        fetch_image(url, settings)
    return caught.value.code


def test_fetches_an_image(served, tmp_path: Path) -> None:
    fetched = fetch_image(served.url("face.png"), make_settings(tmp_path, allow_private_urls=True))
    assert fetched.content.startswith(b"\x89PNG")
    assert fetched.content_type == "image/png"


def test_private_address_gets_zero_requests_unless_allowed(served, tmp_path: Path) -> None:
    with pytest.raises(FetchError) as caught:
        fetch_image(served.url("face.png"), make_settings(tmp_path, allow_private_urls=False))
    assert caught.value.code == "blocked_address"
    assert served.hits == []


def test_redirect_is_followed(served, tmp_path: Path) -> None:
    fetched = fetch_image(served.url("redirect/face.png"), make_settings(tmp_path, allow_private_urls=True))
    assert fetched.final_url.endswith("/face.png")


@pytest.mark.parametrize(
    ("path", "code"),
    [
        ("missing.jpg", "http_404"),
        ("page", "no_image_in_page"),
        ("text", "not_an_image"),
        ("redirect-loop", "too_many_redirects"),
    ],
)
def test_failures_have_codes(served, tmp_path: Path, path: str, code: str) -> None:
    assert fetch_code(served.url(path), tmp_path) == code


def test_size_cap_while_streaming(served, tmp_path: Path) -> None:
    assert fetch_code(served.url("big"), tmp_path, max_image_bytes=1024 * 1024) == "too_large"


def test_read_timeout(served, tmp_path: Path) -> None:
    assert fetch_code(served.url("slow"), tmp_path, read_timeout=0.5) == "timeout"


def test_unreachable_port(tmp_path: Path) -> None:
    from tests.support import free_port

    assert fetch_code(f"http://127.0.0.1:{free_port()}/a.jpg", tmp_path) == "connection_error"


@pytest.mark.parametrize(
    ("path", "code", "transient", "retry_after"),
    [
        ("busy", "http_429", True, 7.0),
        ("unavailable", "http_503", True, None),
        ("missing.jpg", "http_404", False, None),
    ],
)
def test_transient_statuses_are_marked_for_retry(served, tmp_path: Path, path, code, transient, retry_after) -> None:
    with pytest.raises(FetchError) as caught:
        fetch_image(served.url(path), make_settings(tmp_path, allow_private_urls=True))
    assert (caught.value.code, caught.value.transient, caught.value.retry_after) == (code, transient, retry_after)
