"""Access control in Chromium: sign in and out, a read key's dashboard, a cookie write without its
CSRF token, and a page on another origin trying to upload."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from core.vocabulary import READ, WRITE
from db import Batch, Database
from db.access import create_key
from tests.support import image_server
from tests.test_api import broker, settings  # noqa: F401 - fixtures
from tests.test_browser import browser, live, page  # noqa: F401 - fixtures

pytestmark = pytest.mark.slow

ATTACK_PAGE = """<!doctype html><html><body><script>
const form = new FormData();
form.append("files", new Blob([new Uint8Array([0xff, 0xd8, 0xff, 0xe0, 1, 2, 3])], {type: "image/jpeg"}), "x.jpg");
fetch("%(target)s/api/v1/uploads", {method: "POST", mode: "no-cors", body: form})
  .then(() => { document.title = "sent"; }, () => { document.title = "sent"; });
</script></body></html>"""


def sign_in(page: Any, base: str, key: str) -> None:  # noqa: F811
    page.goto(f"{base}/signin")
    page.fill("#signin-key", key)
    page.click("#signin-form button[type=submit]")
    page.wait_for_url(f"{base}/")
    page.wait_for_selector("#signed-in-as")


def batches(database: Database) -> int:
    with database.session() as session:
        return session.scalar(select(func.count()).select_from(Batch)) or 0


@pytest.fixture
def strict_page(browser: Any) -> Iterator[Any]:  # noqa: F811
    """A page with the server's Content-Security-Policy enforced; any violation fails the test."""
    context = browser.new_context()
    enforced = context.new_page()
    enforced.set_default_timeout(20_000)
    violations: list[str] = []
    enforced.on("console", lambda msg: "Content Security Policy" in msg.text and violations.append(msg.text))
    enforced.on("pageerror", lambda error: violations.append(str(error)))
    yield enforced
    context.close()
    assert violations == []


def test_sign_in_as_reader_then_sign_out(strict_page: Any, live: str, pg_database: Database) -> None:  # noqa: F811
    """Under the real CSP: the pages run without inline script or eval."""
    page = strict_page  # noqa: F811
    _, key = create_key(pg_database, "viewer", READ)
    page.goto(f"{live}/")
    page.wait_for_selector("#sign-in")
    page.wait_for_selector('body[data-state="signed-out"]', state="attached")

    sign_in(page, live, key)
    page.wait_for_selector('body[data-state="ready"]', state="attached")
    assert page.text_content("#signed-in-as") == "viewer (read)"
    page.wait_for_selector("#submit-denied", state="visible")
    assert page.is_hidden("#url-form") and page.is_hidden("#upload-form")
    stored = page.evaluate("() => JSON.stringify({...localStorage}) + JSON.stringify({...sessionStorage})")
    assert key not in stored
    assert "socialfer_session" not in page.evaluate("() => document.cookie")  # HttpOnly

    page.click("#sign-out")
    page.wait_for_url(f"{live}/signin")
    status = page.evaluate("async () => (await fetch('/api/v1/stats')).status")
    assert status == 401


def test_cookie_writes_need_the_csrf_token(page: Any, live: str, pg_database: Database, broker) -> None:  # noqa: F811
    _, key = create_key(pg_database, "submitter", WRITE)
    sign_in(page, live, key)
    page.wait_for_selector("#url-form", state="visible")
    post = """async (withToken) => {
      const headers = {"Content-Type": "application/json"};
      if (withToken) headers["X-CSRF-Token"] = (await (await fetch("/api/v1/session")).json()).csrf_token;
      const response = await fetch("/api/v1/batches", {
        method: "POST", headers, body: JSON.stringify({urls: ["https://example.com/a.jpg"]}),
      });
      return [response.status, (await response.json()).error?.code ?? null];
    }"""
    assert page.evaluate(post, False) == [403, "csrf_failed"]
    assert batches(pg_database) == 0
    assert page.evaluate(post, True) == [202, None]
    assert batches(pg_database) == 1


def test_a_page_on_another_origin_cannot_upload(
    page: Any,  # noqa: F811
    live: str,  # noqa: F811
    pg_database: Database,
    broker,  # noqa: F811
    tmp_path: Path,
) -> None:
    """Open mode (no key): the most tempting target. The attacker's page is on another port of this host."""
    (tmp_path / "evil.html").write_text(ATTACK_PAGE % {"target": live})
    with image_server(tmp_path) as attacker:
        page.goto(attacker.url("evil.html"))
        page.wait_for_function("() => document.title === 'sent'")
    assert batches(pg_database) == 0
