"""The fetcher under attack: URLs that try to reach internal services are refused before
any connection, and the internal service receives zero requests.

An "internal" server stands for what an attacker wants to reach. A second local server
stands for a public host (a test policy treats its port as public), so redirects and
og:image hops from an allowed host into the internal one can be tested.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

import pytest

from tests.support import StagedPolicy, image_server, make_settings
from workers.fetch import FetchError, fetch_image


@pytest.fixture
def servers(tmp_path: Path):
    (tmp_path / "secret").write_text("internal data")
    (tmp_path / "ok.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 64)
    with image_server(tmp_path) as internal, image_server(tmp_path) as public:
        yield internal, public


def attack_urls(t: int, p: int) -> list[tuple[str, str]]:
    """(url, expected code); `t` is the internal server's port, `p` the "public" one's."""
    internal = f"http://127.0.0.1:{t}/secret"
    return [
        (internal, "blocked_address"),
        (f"http://localhost:{t}/secret", "blocked_address"),
        (f"http://2130706433:{t}/secret", "blocked_address"),  # decimal
        (f"http://0x7f000001:{t}/secret", "blocked_address"),  # hexadecimal
        (f"http://0177.0.0.1:{t}/secret", "blocked_address"),  # octal
        (f"http://127.1:{t}/secret", "blocked_address"),  # short form
        (f"http://0.0.0.0:{t}/secret", "blocked_address"),
        (f"http://[::1]:{t}/secret", "blocked_address"),
        (f"http://[::ffff:127.0.0.1]:{t}/secret", "blocked_address"),  # IPv4-mapped IPv6
        ("http://169.254.169.254/latest/meta-data/", "blocked_address"),  # cloud metadata
        ("http://10.0.0.1/a.jpg", "blocked_address"),
        ("http://172.16.5.4/a.jpg", "blocked_address"),
        ("http://192.168.1.1/a.jpg", "blocked_address"),
        ("http://100.64.0.1/a.jpg", "blocked_address"),  # CGNAT
        ("http://224.0.0.1/a.jpg", "blocked_address"),  # multicast
        ("http://[fd00::1]/a.jpg", "blocked_address"),  # IPv6 unique local
        ("http://[fe80::1]/a.jpg", "blocked_address"),  # IPv6 link-local
        (f"http://images.example.com:{t}/secret", "blocked_address"),  # public-looking name -> 127.0.0.1
        (f"http://mixed.example.com:{t}/secret", "blocked_address"),  # one public, one private address
        (f"http://public.test:{p}/to?url={quote(internal)}", "blocked_address"),  # redirect into the inside
        (f"http://public.test:{p}/to?url={quote(f'http://images.example.com:{t}/secret')}", "blocked_address"),
        (f"http://public.test:{p}/og?url={quote(internal)}", "blocked_address"),  # a post page's og:image
        (f"http://public.test:{p}/to?url={quote('file:///etc/passwd')}", "unsupported_scheme"),
        (f"gopher://127.0.0.1:{t}/_secret", "unsupported_scheme"),
        ("file:///etc/passwd", "unsupported_scheme"),
        (f"http://user:pw@127.0.0.1:{t}/secret", "credentials_in_url"),
    ]


NAMES = {
    "images.example.com": ["127.0.0.1"],
    "mixed.example.com": ["93.184.216.34", "127.0.0.1"],
    "public.test": ["127.0.0.1"],
}


def test_every_attack_is_refused_and_the_inside_gets_no_request(servers, tmp_path: Path) -> None:
    internal, public = servers
    policy = StagedPolicy(NAMES, public.server_port)
    settings = make_settings(tmp_path, allow_private_urls=False)
    codes = {}
    for url, expected in attack_urls(internal.server_port, public.server_port):
        with pytest.raises(FetchError) as caught:
            fetch_image(url, settings, policy)
        codes[url] = (caught.value.code, expected)
    assert {url: got for url, (got, _) in codes.items()} == {url: want for url, (_, want) in codes.items()}
    assert len(codes) >= 15
    assert internal.hits == []


def test_the_allowed_host_itself_works(servers, tmp_path: Path) -> None:
    """The policy is not simply refusing everything: the "public" host serves its image."""
    _internal, public = servers
    policy = StagedPolicy(NAMES, public.server_port)
    fetched = fetch_image(f"http://public.test:{public.server_port}/ok.png", make_settings(tmp_path), policy)
    assert fetched.content.startswith(b"\x89PNG")
    assert public.hits == ["/ok.png"]


def test_the_connection_goes_to_the_address_that_was_checked(servers, tmp_path: Path) -> None:
    """DNS rebinding: the second answer points inside, but there is no second lookup."""
    internal, public = servers
    answers = iter([["127.0.0.1"], ["10.0.0.1"]])
    policy = StagedPolicy({"rebind.test": lambda: next(answers)}, public.server_port)
    fetch_image(f"http://rebind.test:{public.server_port}/ok.png", make_settings(tmp_path), policy)
    assert policy.lookups == ["rebind.test"]
    assert public.hits == ["/ok.png"] and internal.hits == []


def test_ports_other_than_80_and_443_are_refused_unless_configured(servers, tmp_path: Path) -> None:
    _internal, public = servers
    policy = StagedPolicy(NAMES, public.server_port, allowed_ports=frozenset({80, 443}))
    with pytest.raises(FetchError) as caught:
        fetch_image(f"http://public.test:{public.server_port}/ok.png", make_settings(tmp_path), policy)
    assert caught.value.code == "blocked_port"
    assert public.hits == []


def test_a_post_page_is_followed_to_its_og_image(servers, tmp_path: Path) -> None:
    _internal, public = servers
    policy = StagedPolicy(NAMES, public.server_port)
    image_url = f"http://public.test:{public.server_port}/ok.png"
    fetched = fetch_image(
        f"http://public.test:{public.server_port}/og?url={quote(image_url)}", make_settings(tmp_path), policy
    )
    assert fetched.content.startswith(b"\x89PNG") and fetched.final_url == image_url


def test_private_urls_setting_is_the_only_way_in(servers, tmp_path: Path) -> None:
    internal, _public = servers
    url = f"http://127.0.0.1:{internal.server_port}/ok.png"
    with pytest.raises(FetchError):
        fetch_image(url, make_settings(tmp_path, allow_private_urls=False))
    assert internal.hits == []
    assert fetch_image(url, make_settings(tmp_path, allow_private_urls=True)).content.startswith(b"\x89PNG")
