"""Fill a Postgres database with a large, realistic socialfer data set for the data-path benchmarks.

Default: 1,000,000 faces over 300,000 images in about 1,700 batches, spread over the 90 days
before --end, on facebook, instagram, twitter and a few uploads ("other"). About 7 % of images
fail with the worker's reason codes, about a fifth of the analysed images hold no face, the
newest batch is still being worked on, and every face has seven scores that sum to 1 with its
emotion the largest. Rows are written with COPY, ids in the order the API and the workers
would have given them, so the tables look like ones that grew in production.

    python bench/generate_faces.py                       # socialfer_bench_1m, 1M faces
    python bench/generate_faces.py URL --faces 20000 --images 6000 --reset
    python bench/generate_faces.py --quick --reset       # 20k faces, for a first look

The database is created if missing and migrated with the project's Alembic migrations
(db.migrate.upgrade) first. Postgres only: COPY is what makes a million rows take seconds.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import psycopg
from sqlalchemy import create_engine, make_url, text

from core.vocabulary import DONE, EMOTIONS, FAILED, PLATFORMS, PROCESSING, QUEUED
from db.migrate import upgrade
from db.schema import Base

DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1/socialfer_bench_1m"
DEFAULT_END = "2026-11-01T00:00:00Z"  # fixed, so a seed always gives the same rows
CHUNK = 100_000  # rows per COPY statement (and per progress line)
NULL = "\\N"

# Share of images per platform in batches whose URLs are mixed (inferred per URL); "other" is uploads.
PLATFORM_MIX = {"facebook": 0.24, "instagram": 0.36, "twitter": 0.40}
UPLOAD_BATCHES = 0.05  # of batches: files sent from the dashboard, platform "other"
EXPLICIT_PLATFORM_BATCHES = 0.40  # of URL batches: submitted with "platform" set
FAILURE_RATE = {"facebook": 0.10, "instagram": 0.07, "twitter": 0.05, "other": 0.01}
WITH_FACES = 0.78  # of analysed images: at least one face (the rest are landscapes, memes, text)

# (code, weight, transient?, message) as the worker records them.
FAILURES: tuple[tuple[str, float, bool, str], ...] = (
    ("http_404", 0.28, False, "the server answered 404"),
    ("http_403", 0.16, False, "the server answered 403"),
    ("timeout", 0.11, True, "read timed out after 15.0 s"),
    ("not_an_image", 0.08, False, "the data does not start like an image (text/html)"),
    ("dns_error", 0.07, False, "the host name does not resolve"),
    ("connection_error", 0.06, True, "connection refused"),
    ("corrupt_image", 0.05, False, "image file is truncated"),
    ("http_410", 0.04, False, "the server answered 410"),
    ("no_image_in_page", 0.04, False, "the page has no og:image or twitter:image"),
    ("too_large", 0.04, False, "more than 20971520 bytes"),
    ("tls_error", 0.03, False, "certificate verify failed"),
    ("http_503", 0.03, True, "the server answered 503"),
    ("too_many_redirects", 0.01, False, "more than 5 redirects"),
)
UPLOAD_FAILURES = ("corrupt_image", "not_an_image")

# Dominant-emotion mix of in-the-wild social photos (smiling people dominate), tilted per platform.
EMOTION_MIX = {"angry": 0.08, "disgust": 0.015, "fear": 0.06, "happy": 0.36, "sad": 0.11, "surprise": 0.095}
EMOTION_TILT = {
    "facebook": {},
    "instagram": {"happy": 0.08, "sad": -0.03},
    "twitter": {"angry": 0.04, "disgust": 0.01, "happy": -0.06},
    "other": {"neutral": 0.05, "happy": -0.05},
}
SIZES = {  # (width, height) per platform, as their CDNs serve them
    "facebook": ((960, 720), (720, 960), (2048, 1536), (1200, 630)),
    "instagram": ((1080, 1080), (1080, 1350), (1080, 566)),
    "twitter": ((1200, 675), (1080, 1080), (900, 1200), (1600, 900)),
    "other": ((4032, 3024), (3024, 4032), (1920, 1080), (640, 480)),
}
CONTENT_TYPES = ("image/jpeg", "image/webp", "image/png")
URL_FORMATS = {
    "facebook": "https://scontent.xx.fbcdn.net/v/t39.30808-6/{n}_{m}_n.jpg",
    "instagram": "https://scontent.cdninstagram.com/v/t51.2885-15/{n}_{m}_n.jpg",
    "twitter": "https://pbs.twimg.com/media/F{n:x}{m:x}.jpg",
    "other": "upload:IMG_{m:04d}.jpg",
}


def emotion_probabilities(platform: str) -> np.ndarray:
    """The platform's dominant-emotion distribution, in EMOTIONS order."""
    mix = {**EMOTION_MIX, "neutral": 1.0 - sum(EMOTION_MIX.values())}
    for name, delta in EMOTION_TILT[platform].items():
        mix[name] += delta
    probabilities = np.array([mix[name] for name in EMOTIONS])
    return probabilities / probabilities.sum()


@dataclass
class DataSet:
    """Column arrays for the three tables, ids implicit (row index + 1)."""

    batches: dict[str, Any]
    images: dict[str, Any]
    faces: dict[str, Any]


def batch_sizes(rng: np.random.Generator, images: int) -> tuple[np.ndarray, np.ndarray]:
    """Batch sizes adding up to `images` and which batches are uploads.

    Many small batches, some hundreds, a few at the 1000-URL limit; uploads are 1 to 20 files.
    """
    sizes: list[int] = []
    uploads: list[bool] = []
    while sum(sizes) < images:
        kind = rng.random()
        uploads.append(bool(rng.random() < UPLOAD_BATCHES))
        if uploads[-1]:
            sizes.append(int(rng.integers(1, 21)))
        elif kind < 0.6:
            sizes.append(int(rng.integers(1, 51)))
        elif kind < 0.9:
            sizes.append(int(rng.integers(51, 501)))
        else:
            sizes.append(int(rng.integers(501, 1001)))
    sizes[-1] -= sum(sizes) - images
    return np.array(sizes, dtype=np.int64), np.array(uploads)


def make_batches(rng: np.random.Generator, images: int, end: np.datetime64, days: int) -> dict[str, Any]:
    sizes, upload = batch_sizes(rng, images)
    count = len(sizes)
    span_us = days * 86_400_000_000
    offsets = np.sort(rng.integers(0, span_us, size=count))
    offsets[-1] = span_us - 30_000_000  # the newest batch came in 30 s before the end: still running
    created = end - np.timedelta64(span_us, "us") + offsets.astype("timedelta64[us]")
    explicit = (~upload) & (rng.random(count) < EXPLICIT_PLATFORM_BATCHES)
    url_platforms = list(PLATFORM_MIX)
    chosen = rng.choice(len(url_platforms), size=count, p=list(PLATFORM_MIX.values()))
    platform = [url_platforms[c] if e else None for c, e in zip(chosen, explicit, strict=True)]
    named = rng.random(count) < 0.3
    names = [
        f"{p or ('uploads' if u else 'mixed')} sample {i + 1}" if n else None
        for i, (p, u, n) in enumerate(zip(platform, upload, named, strict=True))
    ]
    return {"size": sizes, "created_at": created, "upload": upload, "platform": platform, "name": names}


def make_images(rng: np.random.Generator, batches: dict[str, Any], faces: int, end: np.datetime64) -> dict[str, Any]:
    """Images in batch order (ids as the API gives them); times, outcomes and face counts per image."""
    sizes = batches["size"]
    total = int(sizes.sum())
    batch_index = np.repeat(np.arange(len(sizes)), sizes)
    position = np.arange(total) - np.repeat(np.cumsum(sizes) - sizes, sizes)

    platform_names = list(PLATFORMS)
    mixed = rng.choice(list(PLATFORM_MIX), size=total, p=list(PLATFORM_MIX.values()))
    fixed = np.array([p or "" for p in batches["platform"]], dtype=object)[batch_index]
    platform = np.where(batches["upload"][batch_index], "other", np.where(fixed != "", fixed, mixed))
    platform_code = np.array([platform_names.index(p) for p in platform.tolist()], dtype=np.int64)

    # The workers take a batch at a few images per second after a short wait in the queue.
    created = batches["created_at"][batch_index]
    wait_ms = rng.exponential(4000, size=len(sizes))[batch_index]
    rate = rng.uniform(2.0, 6.0, size=len(sizes))[batch_index]  # images/s for the batch
    analyze_ms = rng.gamma(4.0, 70.0, size=total)
    finished = created + ((wait_ms + position / rate * 1000 + analyze_ms) * 1000).astype("timedelta64[us]")
    started = finished - (analyze_ms * 1000).astype("timedelta64[us]")

    failure_rate = np.array([FAILURE_RATE[p] for p in platform_names])[platform_code]
    failed = rng.random(total) < failure_rate
    unfinished = finished > end
    status = np.where(failed, FAILED, DONE).astype(object)
    status[unfinished] = QUEUED
    first_unfinished = unfinished & ~np.r_[False, unfinished[:-1]]
    status[first_unfinished | np.r_[False, first_unfinished[:-1]]] = PROCESSING  # two images in a worker's hands

    codes, weights, _, _ = zip(*FAILURES, strict=True)
    code_index = rng.choice(len(codes), size=total, p=np.array(weights) / sum(weights))
    upload_code = rng.integers(0, len(UPLOAD_FAILURES), size=total)
    error_code = np.array(
        [
            (UPLOAD_FAILURES[u] if p == "other" else codes[c]) if s == FAILED else None
            for s, p, c, u in zip(status, platform, code_index, upload_code, strict=True)
        ],
        dtype=object,
    )
    message = {code: text for code, _, _, text in FAILURES}
    transient = {code: retried for code, _, retried, _ in FAILURES}
    error_message = np.array([message[c] if c else None for c in error_code], dtype=object)
    retried = np.array([bool(c) and transient[c] for c in error_code])  # transient failures used every attempt
    attempts = np.where(status == QUEUED, 0, np.where(retried, 4, 1))

    done = status == DONE
    face_count = np.zeros(total, dtype=np.int64)
    done_index = np.flatnonzero(done)
    with_faces = min(round(len(done_index) * WITH_FACES), faces)
    if faces and not with_faces:
        raise SystemExit("no analysed image to put faces in: ask for more images")
    holders = rng.choice(done_index, size=with_faces, replace=False)
    weights = rng.lognormal(0.0, 1.0, size=with_faces)  # a few group photos, many portraits
    extra = rng.multinomial(faces - with_faces, weights / weights.sum())
    face_count[holders] = 1 + extra

    size_choice = rng.integers(0, 4, size=total)
    width = np.array([SIZES[p][s % len(SIZES[p])][0] for p, s in zip(platform, size_choice, strict=True)])
    height = np.array([SIZES[p][s % len(SIZES[p])][1] for p, s in zip(platform, size_choice, strict=True)])
    content = rng.choice(len(CONTENT_TYPES), size=total, p=[0.86, 0.1, 0.04])
    byte_size = (width * height * rng.uniform(0.08, 0.3, size=total)).astype(np.int64)
    fetch_ms = rng.lognormal(4.8, 0.6, size=total)
    tokens = rng.integers(10**14, 10**15, size=total)
    urls = [
        URL_FORMATS[p].format(n=int(n), m=int(i) % 10000)
        for p, n, i in zip(platform, tokens, range(total), strict=True)
    ]
    return {
        "batch_index": batch_index,
        "url": urls,
        "platform": platform,
        "status": status,
        "error_code": error_code,
        "error_message": error_message,
        "width": width,
        "height": height,
        "content_type": np.array(CONTENT_TYPES)[content],
        "byte_size": byte_size,
        "face_count": face_count,
        "attempts": attempts,
        "fetch_ms": fetch_ms,
        "analyze_ms": analyze_ms,
        "created_at": created,
        "started_at": started,
        "finished_at": finished,
        "done": done,
        "failed": status == FAILED,
        "running": status == PROCESSING,
    }


def make_faces(rng: np.random.Generator, images: dict[str, Any]) -> dict[str, Any]:
    """Faces in the order the workers stored them (by finish time), each with box, emotion and 7 scores."""
    order = np.argsort(images["finished_at"], kind="stable")
    counts = images["face_count"][order]
    image_index = np.repeat(order, counts)
    total = len(image_index)
    platform = images["platform"][image_index]

    emotion = np.empty(total, dtype=np.int64)
    for name in PLATFORMS:
        rows = np.flatnonzero(platform == name)
        emotion[rows] = rng.choice(len(EMOTIONS), size=len(rows), p=emotion_probabilities(name))
    # Peaked score vectors that sum to 1; the largest is swapped onto the face's emotion.
    scores = rng.dirichlet(np.full(len(EMOTIONS), 0.45), size=total)
    rows = np.arange(total)
    largest = scores.argmax(axis=1)
    top, own = scores[rows, largest].copy(), scores[rows, emotion].copy()
    scores[rows, largest], scores[rows, emotion] = own, top

    width, height = images["width"][image_index], images["height"][image_index]
    side = (np.minimum(width, height) * rng.uniform(0.06, 0.35, size=total)).astype(np.int64)
    w = np.maximum(side, 20)
    h = (w * rng.uniform(1.05, 1.3, size=total)).astype(np.int64)
    x = (rng.random(total) * np.maximum(width - w, 1)).astype(np.int64)
    y = (rng.random(total) * np.maximum(height - h, 1)).astype(np.int64)
    return {
        "image_index": image_index,
        "batch_index": images["batch_index"][image_index],
        "platform": platform,
        "analyzed_at": images["finished_at"][image_index],
        "box": (x, y, w, h),
        "confidence": 1.0 - 0.05 * rng.beta(1.0, 12.0, size=total),
        "emotion": np.array(EMOTIONS)[emotion],
        "scores": scores,
    }


def generate(seed: int, faces: int, images: int, days: int, end: datetime) -> DataSet:
    rng = np.random.default_rng(seed)
    end64 = np.datetime64(end.astimezone(UTC).replace(tzinfo=None), "us")
    batches = make_batches(rng, images, end64, days)
    image_rows = make_images(rng, batches, faces, end64)
    return DataSet(batches, image_rows, make_faces(rng, image_rows))


# --- COPY text ------------------------------------------------------------------------------------


def times(values: np.ndarray, present: np.ndarray | None = None) -> list[str]:
    """Timestamps as COPY text in UTC; where `present` is False, NULL."""
    strings = np.datetime_as_string(values, unit="us", timezone="UTC").tolist()
    if present is None:
        return strings
    return [s if keep else NULL for s, keep in zip(strings, present.tolist(), strict=True)]


def texts(values: Sequence[Any] | np.ndarray) -> list[str]:
    """Any column as COPY text: None is NULL; numbers in their shortest exact form."""
    if isinstance(values, np.ndarray) and values.dtype != object:
        return list(map(str, values.tolist()))  # no None possible: the fast path for the big numeric columns
    items = values.tolist() if isinstance(values, np.ndarray) else values
    return [NULL if v is None else str(v) for v in items]


def masked(values: np.ndarray, present: np.ndarray) -> list[str]:
    return [str(v) if keep else NULL for v, keep in zip(values.tolist(), present.tolist(), strict=True)]


def copy_rows(
    connection: psycopg.Connection, table: str, columns: Sequence[str], data: Sequence[list[str]], label: str
) -> None:
    """COPY the column lists into `table`, CHUNK rows per statement, with a progress line per chunk."""
    rows = len(data[0])
    started = time.perf_counter()
    for first in range(0, rows, CHUNK):
        last = min(first + CHUNK, rows)
        payload = "".join("\t".join(row) + "\n" for row in zip(*(column[first:last] for column in data), strict=True))
        with connection.cursor() as cursor, cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
            copy.write(payload)
        print(f"  {label}: {last:>9,}/{rows:,} rows  {time.perf_counter() - started:6.1f} s", flush=True)


def batches_copy(data: DataSet) -> tuple[list[str], list[list[str]]]:
    batches = data.batches
    count = len(batches["size"])
    columns = ["id", "name", "platform", "total", "created_at"]
    return columns, [
        texts(np.arange(1, count + 1)),
        texts(batches["name"]),
        texts(batches["platform"]),
        texts(batches["size"]),
        times(batches["created_at"]),
    ]


def images_copy(data: DataSet) -> tuple[list[str], list[list[str]]]:
    images = data.images
    count = len(images["url"])
    analysed, terminal = images["done"], images["done"] | images["failed"]
    started = terminal | images["running"]
    columns = [
        "id",
        "batch_id",
        "url",
        "platform",
        "status",
        "error_code",
        "error_message",
        "width",
        "height",
        "content_type",
        "byte_size",
        "face_count",
        "attempts",
        "fetch_ms",
        "analyze_ms",
        "created_at",
        "enqueued_at",
        "started_at",
        "finished_at",
    ]
    created = times(images["created_at"])
    return columns, [
        texts(np.arange(1, count + 1)),
        texts(images["batch_index"] + 1),
        images["url"],
        texts(images["platform"]),
        texts(images["status"]),
        texts(images["error_code"]),
        texts(images["error_message"]),
        masked(images["width"], analysed),
        masked(images["height"], analysed),
        masked(images["content_type"], analysed),
        masked(images["byte_size"], analysed),
        masked(images["face_count"], analysed),
        texts(images["attempts"]),
        masked(images["fetch_ms"].round(1), analysed),
        masked(images["analyze_ms"].round(1), analysed),
        created,
        created,
        times(images["started_at"], started),
        times(images["finished_at"], terminal),
    ]


def faces_copy(data: DataSet) -> tuple[list[str], list[list[str]]]:
    faces = data.faces
    count = len(faces["emotion"])
    x, y, w, h = faces["box"]
    columns = ["id", "image_id", "batch_id", "platform", "analyzed_at", "x", "y", "w", "h", "confidence", "emotion"]
    columns += [f"score_{name}" for name in EMOTIONS]
    return columns, [
        texts(np.arange(1, count + 1)),
        texts(faces["image_index"] + 1),
        texts(faces["batch_index"] + 1),
        texts(faces["platform"]),
        times(faces["analyzed_at"]),
        texts(x),
        texts(y),
        texts(w),
        texts(h),
        texts(faces["confidence"]),
        texts(faces["emotion"]),
        *(texts(faces["scores"][:, index]) for index in range(len(EMOTIONS))),
    ]


# --- the database ---------------------------------------------------------------------------------


def ensure_database(url: str) -> None:
    """Create the database if it does not exist (connecting to `postgres` for that)."""
    target = make_url(url)
    admin = create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        if not connection.execute(
            text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": target.database}
        ).scalar():
            connection.execute(text(f'CREATE DATABASE "{target.database}"'))
    admin.dispose()


def libpq_url(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def secondary_indexes(tables: Sequence[str]) -> Iterator[Any]:
    """The schema's indexes on `tables` (what the migrations created; tests/test_migrations.py checks they agree)."""
    for table in tables:
        yield from Base.metadata.tables[table].indexes


def load(url: str, data: DataSet, *, reset: bool) -> None:
    """COPY the rows in with the secondary indexes dropped, then build them once and ANALYZE."""
    tables = ("batches", "images", "faces")
    with psycopg.connect(libpq_url(url)) as connection:
        existing = connection.execute(
            "SELECT (SELECT count(*) FROM batches) + (SELECT count(*) FROM images)"
        ).fetchone()
        if existing and existing[0]:
            if not reset:
                raise SystemExit(f"{make_url(url).database} already holds data: pass --reset to replace it")
            connection.execute("TRUNCATE faces, images, batches, image_files RESTART IDENTITY CASCADE")
        connection.execute("SET synchronous_commit = off")
        connection.execute("SET maintenance_work_mem = '512MB'")
        indexes = list(secondary_indexes(tables))
        for index in indexes:
            connection.execute(f'DROP INDEX IF EXISTS "{index.name}"')
        for table, build in zip(tables, (batches_copy, images_copy, faces_copy), strict=True):
            started = time.perf_counter()
            columns, columns_text = build(data)
            print(f"{table}: formatted in {time.perf_counter() - started:.1f} s", flush=True)
            copy_rows(connection, table, columns, columns_text, table)
        for table in tables:
            connection.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")
        connection.commit()
    started = time.perf_counter()
    engine = create_engine(url)
    with engine.begin() as sa_connection:
        sa_connection.execute(text("SET maintenance_work_mem = '512MB'"))
        for index in indexes:
            index.create(sa_connection)
    engine.dispose()
    print(f"indexes: {len(indexes)} built in {time.perf_counter() - started:.1f} s", flush=True)
    started = time.perf_counter()
    with psycopg.connect(libpq_url(url), autocommit=True) as connection:
        connection.execute("VACUUM (ANALYZE) batches, images, faces, image_hours, face_hours")
    print(f"vacuum analyze: {time.perf_counter() - started:.1f} s", flush=True)


def parse_end(value: str) -> datetime:
    parsed = datetime.fromisoformat(value)
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("url", nargs="?", default=DEFAULT_URL, help=f"SQLAlchemy URL (default {DEFAULT_URL})")
    parser.add_argument("--faces", type=int, default=1_000_000)
    parser.add_argument("--images", type=int, default=300_000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--end", type=parse_end, default=parse_end(DEFAULT_END), help="newest batch time (UTC)")
    parser.add_argument("--seed", type=int, default=6)
    parser.add_argument("--quick", action="store_true", help="20,000 faces over 6,000 images")
    parser.add_argument("--reset", action="store_true", help="empty the tables first if they hold data")
    args = parser.parse_args()
    if args.quick:
        args.faces, args.images = 20_000, 6_000
    if not make_url(args.url).drivername.startswith("postgresql"):
        raise SystemExit("Postgres only: the generator writes with COPY")

    overall = time.perf_counter()
    ensure_database(args.url)
    upgrade(args.url)
    print(f"migrated {make_url(args.url).database} in {time.perf_counter() - overall:.1f} s", flush=True)
    started = time.perf_counter()
    data = generate(args.seed, args.faces, args.images, args.days, args.end)
    images = data.images
    print(
        f"generated {len(data.batches['size']):,} batches, {len(images['url']):,} images "
        f"({int(images['done'].sum()):,} done, {int(images['failed'].sum()):,} failed, "
        f"{int((images['face_count'] > 0).sum()):,} with faces), {len(data.faces['emotion']):,} faces "
        f"in {time.perf_counter() - started:.1f} s (seed {args.seed})",
        flush=True,
    )
    load(args.url, data, reset=args.reset)
    print(f"total: {time.perf_counter() - overall:.1f} s", flush=True)


if __name__ == "__main__":
    main()
