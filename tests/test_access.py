"""Access control on the real Postgres: the authorization matrix from the URL map, sessions, CSRF,
origins, hosts, headers, rate limits, the audit log and erasure through the API."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from api import create_app
from api.auth import ACCESS, PUBLIC
from core.settings import Settings
from core.vocabulary import ADMIN, READ, SCOPES, WRITE, scope_allows
from db import Batch, Database, Face, Image, ImageFile
from db.access import create_key, revoke_key
from db.queries import stats
from tests.factories import add_batch, add_image, add_preview
from tests.test_api import URLS, broker, make_client, settings  # noqa: F401 - fixtures
from tests.test_lifecycle import assert_invariants

MISSING_ID = 999_999  # path ids in the matrix: routes answer 404, never act on a real row
CREDENTIALS = ("none", "wrong", "revoked", READ, WRITE, ADMIN)


@dataclass
class Keys:
    by_scope: dict[str, str]
    revoked: str

    def header(self, credential: str) -> dict[str, str]:
        if credential == "none":
            return {}
        if credential == "wrong":
            return {"Authorization": "Bearer sf_not-a-key-anyone-made"}
        key = self.revoked if credential == "revoked" else self.by_scope[credential]
        return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def keys(pg_database: Database) -> Keys:
    by_scope = {scope: create_key(pg_database, f"{scope} key", scope)[1] for scope in SCOPES}
    revoked_row, revoked = create_key(pg_database, "old key", ADMIN)
    revoke_key(pg_database, revoked_row.id, "test")
    return Keys(by_scope, revoked)


@pytest.fixture
def app(settings: Settings) -> Iterator[Flask]:  # noqa: F811 - the fixture imported above
    app = create_app(settings)
    yield app
    app.extensions["db"].dispose()


def routes(app: Flask) -> list[tuple[str, str, str]]:
    """(endpoint, method, url) for every route and method the app serves, ids that match nothing."""
    adapter = app.url_map.bind("localhost")
    found = []
    for rule in app.url_map.iter_rules():
        values = {name: "style.css" if name == "filename" else MISSING_ID for name in rule.arguments}
        url = adapter.build(rule.endpoint, values)
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            found.append((rule.endpoint, method, url))
    return found


def expected(rule: str, credential: str) -> str:
    if rule == PUBLIC:
        return "allowed"
    if credential in ("none", "wrong", "revoked"):
        return "401"
    return "allowed" if scope_allows(credential, rule) else "403"


def answered(status: int) -> str:
    return str(status) if status in (401, 403) else "allowed"


def test_every_route_has_an_access_rule(app: Flask) -> None:
    """A route added without a rule fails here (and is refused with 403 at run time)."""
    assert {endpoint for endpoint, _, _ in routes(app)} - set(ACCESS) == set()


def test_authorization_matrix(app: Flask, keys: Keys, broker) -> None:  # noqa: F811
    client = app.test_client()
    mismatches = []
    for endpoint, method, url in routes(app):
        rule = ACCESS[endpoint]
        for credential in CREDENTIALS:
            kwargs = {"json": {}} if method in ("POST", "PUT", "PATCH") else {}
            response = client.open(url, method=method, headers=keys.header(credential), **kwargs)
            response.close()  # an export streams: end it here
            if answered(response.status_code) != expected(rule, credential):
                mismatches.append((method, url, credential, response.status_code))
    assert mismatches == []


def test_open_mode_without_any_key_allows_everything(make_client) -> None:  # noqa: F811
    client = make_client()
    assert client.get("/api/v1/stats").status_code == 200
    assert client.get("/api/v1/session").get_json()["open_mode"] is True


def test_bootstrap_keys_are_admin(make_client, pg_database: Database) -> None:  # noqa: F811
    client = make_client(api_keys=("boot-key",))
    assert client.get("/api/v1/audit", headers={"Authorization": "Bearer boot-key"}).status_code == 200
    assert client.get("/api/v1/session").get_json()["open_mode"] is False


def sign_in(client: FlaskClient, key: str) -> str:
    response = client.post("/api/v1/session", json={"key": key})
    assert response.status_code == 200, response.get_data(as_text=True)
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    return response.get_json()["csrf_token"]


def test_session_cookie_reads_writes_with_csrf_and_ends_with_revocation(
    app: Flask,
    pg_database: Database,
    broker,  # noqa: F811
) -> None:
    row, key = create_key(pg_database, "analyst", WRITE)
    client = app.test_client()
    assert client.get("/api/v1/stats").status_code == 401
    token = sign_in(client, key)
    assert client.get("/api/v1/session").get_json()["scope"] == WRITE
    assert client.get("/api/v1/stats").status_code == 200

    without = client.post("/api/v1/batches", json={"urls": URLS[:1]})
    assert without.status_code == 403 and without.get_json()["error"]["code"] == "csrf_failed"
    with_token = client.post("/api/v1/batches", json={"urls": URLS[:1]}, headers={"X-CSRF-Token": token})
    assert with_token.status_code == 202

    revoke_key(pg_database, row.id, "test")
    assert client.get("/api/v1/stats").status_code == 401  # a revoked key's sessions end at once


def test_sign_out_clears_the_session(app: Flask, pg_database: Database) -> None:
    _, key = create_key(pg_database, "reader", READ)
    client = app.test_client()
    token = sign_in(client, key)
    assert client.delete("/api/v1/session", headers={"X-CSRF-Token": token}).status_code == 200
    assert client.get("/api/v1/stats").status_code == 401


def test_sign_in_with_a_wrong_key_is_401(app: Flask, keys: Keys) -> None:
    client = app.test_client()
    assert client.post("/api/v1/session", json={"key": keys.revoked}).status_code == 401
    assert client.post("/api/v1/session", json={"key": "nope"}).status_code == 401


@pytest.mark.parametrize(
    "headers",
    [{"Origin": "http://evil.example"}, {"Sec-Fetch-Site": "cross-site"}, {"Sec-Fetch-Site": "same-site"}],
)
def test_state_changes_from_other_origins_are_refused(make_client, pg_database: Database, headers) -> None:  # noqa: F811
    client = make_client()  # open mode: exactly what a page elsewhere would aim at
    response = client.post("/api/v1/batches", json={"urls": URLS[:1]}, headers=headers)
    assert response.status_code == 403 and response.get_json()["error"]["code"] == "cross_origin"
    with pg_database.session() as session:
        assert session.scalar(select(func.count()).select_from(Batch)) == 0


def test_own_origin_is_accepted(make_client, broker) -> None:  # noqa: F811
    client = make_client()
    headers = {"Origin": "http://localhost", "Sec-Fetch-Site": "same-origin"}
    assert client.post("/api/v1/batches", json={"urls": URLS[:1]}, headers=headers).status_code == 202


def test_other_hosts_are_refused(make_client) -> None:  # noqa: F811
    client = make_client()
    response = client.get("/api/v1/stats", headers={"Host": "rebind.evil.example"})
    assert response.status_code == 400 and response.is_json
    assert client.get("/api/v1/stats", headers={"Host": "127.0.0.1:8000"}).status_code == 200
    custom = make_client(allowed_hosts=("socialfer.internal",))
    assert custom.get("/healthz", headers={"Host": "socialfer.internal"}).status_code == 200
    assert custom.get("/healthz", headers={"Host": "localhost"}).status_code == 400


def test_security_headers_on_every_response(make_client) -> None:  # noqa: F811
    client = make_client()
    for path in ("/", "/api/v1/stats", "/api/v1/nothing", "/static/style.css"):
        headers = client.get(path).headers
        policy = headers["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in policy and "script-src 'self'" in policy
        assert "unsafe-inline" not in policy.split("script-src")[1].split(";")[0]
        assert headers["X-Content-Type-Options"] == "nosniff" and headers["Referrer-Policy"] == "no-referrer"
        assert "Access-Control-Allow-Origin" not in headers


def test_cors_only_for_configured_origins(make_client) -> None:  # noqa: F811
    client = make_client(cors_origins=("https://analysis.example",))
    allowed = client.get("/api/v1/stats", headers={"Origin": "https://analysis.example"})
    assert allowed.headers["Access-Control-Allow-Origin"] == "https://analysis.example"
    other = client.get("/api/v1/stats", headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in other.headers


def test_writes_are_rate_limited_per_key(make_client, pg_database: Database, broker) -> None:  # noqa: F811
    _, key = create_key(pg_database, "busy", WRITE)
    _, other = create_key(pg_database, "calm", WRITE)
    client = make_client(write_rate_limit="2/minute", rate_limit_storage_url="memory://")
    headers = {"Authorization": f"Bearer {key}"}
    statuses = [client.post("/api/v1/batches", json={"urls": URLS[:1]}, headers=headers).status_code for _ in range(3)]
    assert statuses == [202, 202, 429]
    limited = client.post("/api/v1/batches", json={"urls": URLS[:1]}, headers=headers)
    assert limited.get_json()["error"]["code"] == "rate_limited" and int(limited.headers["Retry-After"]) > 0
    calm = client.post("/api/v1/batches", json={"urls": URLS[:1]}, headers={"Authorization": f"Bearer {other}"})
    assert calm.status_code == 202
    assert client.get("/api/v1/stats", headers=headers).status_code == 200  # reads are not limited


def test_audit_log_names_the_key(app: Flask, pg_database: Database, broker) -> None:  # noqa: F811
    _, writer = create_key(pg_database, "ingest bot", WRITE)
    _, admin = create_key(pg_database, "ops", ADMIN)
    client = app.test_client()
    created = client.post("/api/v1/batches", json={"urls": URLS[:2]}, headers={"Authorization": f"Bearer {writer}"})
    batch_id = created.get_json()["id"]
    admin_headers = {"Authorization": f"Bearer {admin}"}
    assert client.delete(f"/api/v1/batches/{batch_id}", headers=admin_headers).get_json()["images"] == 2
    entries = client.get("/api/v1/audit", headers=admin_headers).get_json()["items"]
    assert [(e["actor"], e["action"], e["count"]) for e in entries[:2]] == [
        ("ops", "delete_batch", 2),
        ("ingest bot", "submit", 2),
    ]
    assert client.get("/api/v1/audit", headers={"Authorization": f"Bearer {writer}"}).status_code == 403


def test_erasure_through_the_api_leaves_nothing_and_exact_stats(app: Flask, pg_database: Database) -> None:
    with pg_database.session() as session:
        gone, kept = add_batch(session, total=2), add_batch(session, total=1)
        first = add_image(session, gone, emotions=("happy", "sad"))
        add_preview(session, first)
        add_image(session, gone, emotions=("fear",))
        single = add_image(session, kept, emotions=("neutral", "happy"))
        gone_id, first_id, single_id = gone.id, first.id, single.id
    client = app.test_client()  # open mode
    assert client.delete(f"/api/v1/batches/{gone_id}").status_code == 200
    assert client.delete(f"/api/v1/batches/{gone_id}").status_code == 404
    with pg_database.session() as session:
        assert session.scalar(select(func.count()).select_from(Image).where(Image.batch_id == gone_id)) == 0
        assert session.scalar(select(func.count()).select_from(Face).where(Face.batch_id == gone_id)) == 0
        assert session.get(ImageFile, (first_id, "preview")) is None
        assert stats(session)["faces"] == 2
    assert_invariants(pg_database)
    assert client.delete(f"/api/v1/images/{single_id}").status_code == 200
    assert client.get("/api/v1/stats").get_json()["faces"] == 0
    assert_invariants(pg_database)
