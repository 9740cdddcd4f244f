"""HTTPS through the pinned connection: we connect to the checked address, yet TLS still
sends the host name (SNI) and verifies the certificate against it."""

from __future__ import annotations

import ssl
import threading
from collections.abc import Iterator
from functools import partial
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest
import trustme

from tests.support import ImageHandler, StagedPolicy, make_settings
from workers.fetch import FetchError, fetch_image


@pytest.fixture
def https_server(tmp_path: Path) -> Iterator[tuple[ThreadingHTTPServer, Path, list[str]]]:
    """An HTTPS server on 127.0.0.1 whose certificate names only `images.test`."""
    (tmp_path / "ok.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 64)
    ca = trustme.CA()
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("images.test").configure_cert(context)
    names: list[str] = []
    context.sni_callback = lambda _sock, name, _ctx: names.append(name)
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(ImageHandler, directory=str(tmp_path)))
    server.hits = []  # type: ignore[attr-defined]
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server, ca_file, names
    server.shutdown()
    server.server_close()


def test_https_presents_and_verifies_the_name(https_server, tmp_path: Path) -> None:
    server, ca_file, names = https_server
    port = server.server_port
    policy = StagedPolicy({"images.test": ["127.0.0.1"]}, port)
    fetched = fetch_image(f"https://images.test:{port}/ok.png", make_settings(tmp_path, ca_bundle=str(ca_file)), policy)
    assert fetched.content.startswith(b"\x89PNG")
    assert names == ["images.test"]  # SNI carried the name, not the address


def test_a_certificate_for_another_name_is_refused(https_server, tmp_path: Path) -> None:
    server, ca_file, _names = https_server
    port = server.server_port
    policy = StagedPolicy({"wrong.test": ["127.0.0.1"]}, port)
    with pytest.raises(FetchError) as caught:
        fetch_image(f"https://wrong.test:{port}/ok.png", make_settings(tmp_path, ca_bundle=str(ca_file)), policy)
    assert caught.value.code == "tls_error"
    assert server.hits == []


def test_an_untrusted_certificate_is_refused(https_server, tmp_path: Path) -> None:
    server, _ca_file, _names = https_server
    port = server.server_port
    policy = StagedPolicy({"images.test": ["127.0.0.1"]}, port)
    with pytest.raises(FetchError) as caught:
        fetch_image(f"https://images.test:{port}/ok.png", make_settings(tmp_path), policy)
    assert caught.value.code == "tls_error"
