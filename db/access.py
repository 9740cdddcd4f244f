"""API keys and the audit log: the writes behind access control.

A key is `sf_` and 43 URL-safe characters (256 random bits); the database keeps its SHA-256
only, so a leaked database holds no usable key. Keys set in `SOCIALFER_API_KEYS` are
bootstrap admin keys: they are not stored, and are checked in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select, update

from core.vocabulary import ADMIN, SCOPES
from db.schema import ApiKey, AuditEntry, utcnow
from db.session import Database

KEY_PREFIX = "sf_"
SHOWN_PREFIX = 10  # characters of a key kept in clear to recognise it in a list
LAST_USED_EVERY = timedelta(minutes=1)  # last_used_at is written at most this often per key


@dataclass(frozen=True)
class Caller:
    """Who a request is from, once its key checked out."""

    name: str
    scope: str
    key_id: int | None = None  # None: a bootstrap key from the environment, or no key in open mode


def key_digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def create_key(database: Database, name: str, scope: str, actor: str = "command line") -> tuple[ApiKey, str]:
    """A new key of `scope`; returns the row and the key itself, which is never shown again."""
    if scope not in SCOPES:
        raise ValueError(f"scope must be one of {', '.join(SCOPES)}")
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    with database.session() as session:
        row = ApiKey(name=name, scope=scope, key_hash=key_digest(key), prefix=key[:SHOWN_PREFIX], created_at=utcnow())
        session.add(row)
        session.flush()
        session.add(AuditEntry(actor=actor, action="key_create", target=f"key {row.id} {name!r} ({scope})", count=1))
        session.expunge(row)
    return row, key


def list_keys(database: Database) -> Sequence[ApiKey]:
    with database.session() as session:
        rows = session.scalars(select(ApiKey).order_by(ApiKey.id)).all()
        session.expunge_all()
        return rows


def revoke_key(database: Database, key_id: int, actor: str) -> bool:
    """Revoked keys stay listed (with their revocation time) but open nothing; False if no such live key."""
    with database.session() as session:
        done = session.execute(
            update(ApiKey).where(ApiKey.id == key_id, ApiKey.revoked_at.is_(None)).values(revoked_at=utcnow())
        ).rowcount
        if done:
            session.add(AuditEntry(actor=actor, action="key_revoke", target=f"key {key_id}", count=1))
        return bool(done)


def live_key_count(database: Database) -> int:
    with database.session() as session:
        return session.scalar(select(func.count()).select_from(ApiKey).where(ApiKey.revoked_at.is_(None))) or 0


def bootstrap_caller(presented: str, bootstrap_keys: Sequence[str]) -> Caller | None:
    """A key from the environment, compared with every one in constant time."""
    matched = None
    for index, key in enumerate(bootstrap_keys, 1):
        if hmac.compare_digest(presented.encode("utf-8", "surrogatepass"), key.encode()):
            matched = index
    return None if matched is None else Caller(name=f"env key {matched}", scope=ADMIN)


def bootstrap_by_digest(digest: str, bootstrap_keys: Sequence[str]) -> Caller | None:
    """A signed-in session of a bootstrap key: still configured?"""
    for index, key in enumerate(bootstrap_keys, 1):
        if hmac.compare_digest(key_digest(key), digest):
            return Caller(name=f"env key {index}", scope=ADMIN)
    return None


def authenticate(database: Database, presented: str, bootstrap_keys: Sequence[str] = ()) -> Caller | None:
    """The caller a presented key belongs to, or None (unknown or revoked); stamps its last use."""
    caller = bootstrap_caller(presented, bootstrap_keys)
    if caller is not None:
        return caller
    if not presented.startswith(KEY_PREFIX):
        return None
    now = utcnow()
    with database.session() as session:
        row = session.scalar(select(ApiKey).where(ApiKey.key_hash == key_digest(presented)))
        if row is None or row.revoked_at is not None:
            return None
        if row.last_used_at is None or now - as_aware(row.last_used_at) > LAST_USED_EVERY:
            row.last_used_at = now
        return Caller(name=row.name, scope=row.scope, key_id=row.id)


def caller_by_key_id(database: Database, key_id: int) -> Caller | None:
    """A signed-in session's key, still live (a revoked key ends its sessions at once)."""
    with database.session() as session:
        row = session.get(ApiKey, key_id)
        if row is None or row.revoked_at is not None:
            return None
        return Caller(name=row.name, scope=row.scope, key_id=row.id)


def as_aware(value: datetime) -> datetime:
    """SQLite hands datetimes back naive (they are stored in UTC)."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def audit(database: Database, actor: str, action: str, target: str | None, count: int = 1) -> None:
    with database.session() as session:
        session.add(AuditEntry(actor=actor, action=action, target=target, count=count))


def audit_page(database: Database, limit: int, cursor: int | None = None) -> tuple[list[AuditEntry], int | None]:
    """Newest first, keyset-paginated on id."""
    query = select(AuditEntry)
    if cursor is not None:
        query = query.where(AuditEntry.id < cursor)
    with database.session() as session:
        rows = list(session.scalars(query.order_by(AuditEntry.id.desc()).limit(limit + 1)))
        session.expunge_all()
    if len(rows) > limit:
        return rows[:limit], rows[limit - 1].id
    return rows, None
