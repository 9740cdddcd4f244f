"""The endpoints the dashboard draws from (timeline, queue, image listing, previews, export,
filtered batches) and preview pruning, on the real Postgres and once on the embedded SQLite."""
# ruff: noqa: F811 - the API fixtures are imported from tests.test_api and named as parameters

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select, text, update

from api import create_app
from api.serialize import EXPORT_FIELDS
from core.settings import load_settings
from core.vocabulary import EMOTIONS, QUEUED
from db import PREVIEW, UPLOAD, Database, Image, ImageFile
from db.lifecycle import prune_previews
from db.queries import STALLED_AFTER, timeline, worker_state
from db.schema import utcnow
from tests.factories import StatsData, add_batch, add_image, add_preview, seed_stats
from tests.test_api import (  # noqa: F401 - fixtures
    broker,
    client,
    conforms,
    make_client,
    seeded,
    settings,
)


def get_json(client: FlaskClient, path: str, schema: str) -> Any:
    response = client.get(path)
    assert response.status_code == 200, response.get_data(as_text=True)
    conforms(response.get_json(), schema)
    return response.get_json()


def counts(**nonzero: int) -> dict[str, int]:
    return {name: nonzero.get(name, 0) for name in EMOTIONS}


# seed_stats' faces: facebook T0-1d [happy, happy, sad]; instagram T0+1h [neutral]; twitter T0+1d [angry, happy]
HOURLY = [
    {"start": "2025-02-28T12:00:00Z", "faces": 3, "emotions": counts(happy=2, sad=1)},
    {"start": "2025-03-01T13:00:00Z", "faces": 1, "emotions": counts(neutral=1)},
    {"start": "2025-03-02T12:00:00Z", "faces": 2, "emotions": counts(angry=1, happy=1)},
]


# --- timeline -------------------------------------------------------------------------------------


def test_timeline_is_hourly_over_a_range_of_up_to_three_days(client: FlaskClient, seeded: StatsData) -> None:
    body = get_json(client, "/api/v1/timeline", "Timeline")

    assert body == {"bucket": "hour", "start": "2025-02-28T12:00:00Z", "end": "2025-03-02T12:00:00Z", "items": HOURLY}


def test_timeline_is_daily_over_a_longer_range_or_when_asked(client: FlaskClient, seeded: StatsData) -> None:
    daily = [
        {"start": "2025-02-28T00:00:00Z", "faces": 3, "emotions": counts(happy=2, sad=1)},
        {"start": "2025-03-01T00:00:00Z", "faces": 1, "emotions": counts(neutral=1)},
        {"start": "2025-03-02T00:00:00Z", "faces": 2, "emotions": counts(angry=1, happy=1)},
    ]
    long_range = get_json(client, "/api/v1/timeline?since=2025-02-01&until=2025-04-01", "Timeline")
    assert long_range == {
        "bucket": "day",
        "start": "2025-02-01T00:00:00Z",
        "end": "2025-04-01T00:00:00Z",
        "items": daily,
    }
    assert get_json(client, "/api/v1/timeline?bucket=day", "Timeline")["items"] == daily
    assert get_json(client, "/api/v1/timeline?since=2025-02-01&bucket=hour", "Timeline")["items"] == HOURLY


@pytest.mark.parametrize(
    "query",
    ["platform=facebook", "platform=other", "batch_id={b}", "since=2025-03-01", "until=2025-03-01T13:00:00Z", ""],
)
def test_timeline_counts_the_same_faces_as_stats(client: FlaskClient, seeded: StatsData, query: str) -> None:
    query = query.format(b=seeded.batch_b)
    stats = get_json(client, f"/api/v1/stats?{query}", "Stats")
    body = get_json(client, f"/api/v1/timeline?{query}", "Timeline")

    assert sum(item["faces"] for item in body["items"]) == stats["faces"]
    for emotion in EMOTIONS:
        assert sum(item["emotions"][emotion] for item in body["items"]) == stats["emotions"][emotion]["count"]


def test_timeline_without_faces(client: FlaskClient) -> None:
    assert get_json(client, "/api/v1/timeline", "Timeline") == {
        "bucket": "hour",
        "start": None,
        "end": None,
        "items": [],
    }


def test_timeline_buckets_are_utc_whatever_the_session_time_zone(pg_database: Database) -> None:
    with pg_database.session() as session:
        seed_stats(session)
    with pg_database.session() as session:
        session.execute(text("SET LOCAL TIME ZONE 'Asia/Tokyo'"))
        result = timeline(session, bucket="day")
    assert [item["start"].isoformat() for item in result["items"]] == [
        "2025-02-28T00:00:00+00:00",
        "2025-03-01T00:00:00+00:00",
        "2025-03-02T00:00:00+00:00",
    ]


def test_timeline_bad_bucket_is_400(client: FlaskClient) -> None:
    response = client.get("/api/v1/timeline?bucket=week")
    assert response.status_code == 400 and response.get_json()["error"]["message"].startswith("bucket:")


def test_timeline_and_listings_on_sqlite(tmp_path: Path, sqlite_url: str) -> None:
    """The embedded default groups with strftime instead of date_trunc; same answers."""
    settings = load_settings().with_changes(
        database_url=sqlite_url, broker_url="filesystem://", data_dir=tmp_path, api_keys=()
    )
    app = create_app(settings)
    database: Database = app.extensions["db"]
    with database.session() as session:
        data = seed_stats(session)
    client = app.test_client()

    assert get_json(client, "/api/v1/timeline", "Timeline")["items"] == HOURLY
    assert [item["start"] for item in get_json(client, "/api/v1/timeline?bucket=day", "Timeline")["items"]] == [
        "2025-02-28T00:00:00Z",
        "2025-03-01T00:00:00Z",
        "2025-03-02T00:00:00Z",
    ]
    queue = get_json(client, "/api/v1/queue", "Queue")
    assert queue["images"] == {"queued": 1, "processing": 1, "done": 4, "failed": 1}
    listed = get_json(client, "/api/v1/images?status=done&platform=facebook", "ImageList")
    assert [image["platform"] for image in listed["items"]] == ["facebook", "facebook"]
    exported = client.get(f"/api/v1/faces/export?format=json&batch_id={data.batch_b}").get_json()
    assert [face["id"] for face in exported] == data.face_ids[:-3:-1]
    database.dispose()


# --- images across batches and their previews ------------------------------------------------------


def test_images_listing_newest_first_with_filters_and_cursor(client: FlaskClient, seeded: StatsData) -> None:
    everything = get_json(client, "/api/v1/images", "ImageList")
    ids = [image["id"] for image in everything["items"]]
    assert len(ids) == 7 and ids == sorted(ids, reverse=True) and everything["next_cursor"] is None

    done = get_json(client, "/api/v1/images?status=done", "ImageList")["items"]
    assert [(image["platform"], image["face_count"]) for image in done] == [
        ("twitter", 2),
        ("instagram", 1),
        ("facebook", 0),
        ("facebook", 3),
    ]
    assert [len(image["faces"]) for image in done] == [2, 1, 0, 3]

    first = get_json(client, "/api/v1/images?limit=3", "ImageList")
    assert [image["id"] for image in first["items"]] == ids[:3] and first["next_cursor"] == ids[2]
    rest = get_json(client, f"/api/v1/images?limit=10&cursor={first['next_cursor']}", "ImageList")
    assert [image["id"] for image in rest["items"]] == ids[3:]

    batch_b = get_json(client, f"/api/v1/images?batch_id={seeded.batch_b}", "ImageList")["items"]
    assert {image["batch_id"] for image in batch_b} == {seeded.batch_b} and len(batch_b) == 2
    # time filters are on finished_at: only done and failed images have one
    since = get_json(client, "/api/v1/images?since=2025-03-01", "ImageList")["items"]
    assert sorted(image["status"] for image in since) == ["done", "done", "done", "failed"]


def test_preview_is_the_stored_jpeg(client: FlaskClient, pg_database: Database) -> None:
    with pg_database.session() as session:
        image = add_image(session, add_batch(session), emotions=("happy",))
        stored = add_preview(session, image, size=(80, 60)).data
        bare = add_image(session, add_batch(session))
        image_id, bare_id = image.id, bare.id

    response = client.get(f"/api/v1/images/{image_id}/preview")
    assert response.status_code == 200 and response.mimetype == "image/jpeg"
    assert response.data == stored and response.data.startswith(b"\xff\xd8\xff")
    assert "max-age" in response.headers["Cache-Control"]
    assert get_json(client, f"/api/v1/images/{image_id}", "Image")["width"] == 80

    for missing in (bare_id, 999999):
        response = client.get(f"/api/v1/images/{missing}/preview")
        assert response.status_code == 404 and response.get_json()["error"]["code"] == "not_found"


def test_prune_previews_deletes_only_old_previews(pg_database: Database) -> None:
    now = utcnow()
    with pg_database.session() as session:
        batch = add_batch(session, total=3)
        old, fresh, upload = (add_image(session, batch) for _ in range(3))
        add_preview(session, old, created_at=now - timedelta(days=31))
        add_preview(session, fresh, created_at=now - timedelta(days=29))
        session.add(ImageFile(image_id=upload.id, kind=UPLOAD, content_type="image/png", data=b"x"))
        session.add(ImageFile(image_id=old.id, kind=UPLOAD, content_type="image/png", data=b"x", created_at=now))
        old_id, fresh_id = old.id, fresh.id

    with pg_database.session() as session:
        assert prune_previews(session, now - timedelta(days=30)) == 1
    with pg_database.session() as session:
        assert prune_previews(session, now - timedelta(days=30)) == 0
        left = session.execute(select(ImageFile.image_id, ImageFile.kind).order_by(ImageFile.image_id)).all()
    assert (old_id, PREVIEW) not in left and (fresh_id, PREVIEW) in left
    assert sum(kind == UPLOAD for _, kind in left) == 2


# --- the queue and the worker verdict ---------------------------------------------------------------


def test_queue_counts_images_per_state_under_the_filters(client: FlaskClient, seeded: StatsData) -> None:
    body = get_json(client, "/api/v1/queue", "Queue")
    assert body["images"] == {"queued": 1, "processing": 1, "done": 4, "failed": 1}
    assert body["worker"]["state"] == "working"
    assert (body["worker"]["queued"], body["worker"]["processing"]) == (1, 1)

    twitter = get_json(client, "/api/v1/queue?platform=twitter", "Queue")
    assert twitter["images"] == {"queued": 1, "processing": 0, "done": 1, "failed": 1}
    assert twitter["worker"] == body["worker"]  # the verdict is about every image
    assert get_json(client, "/api/v1/queue?since=2025-03-01", "Queue")["images"] == {
        "queued": 0,
        "processing": 0,
        "done": 3,
        "failed": 1,
    }
    stats = get_json(client, "/api/v1/stats?platform=facebook", "Stats")
    assert get_json(client, "/api/v1/queue?platform=facebook", "Queue")["images"]["done"] == stats["images"]


def test_queue_says_stalled_when_images_wait_and_nothing_finishes(client: FlaskClient, pg_database: Database) -> None:
    assert get_json(client, "/api/v1/queue", "Queue")["worker"] == {
        "state": "idle",
        "queued": 0,
        "processing": 0,
        "oldest_queued_at": None,
        "last_finished_at": None,
    }
    with pg_database.session() as session:
        batch = add_batch(session, total=2)
        waiting = [add_image(session, batch, status=QUEUED).id for _ in range(2)]
    assert get_json(client, "/api/v1/queue", "Queue")["worker"]["state"] == "waiting"

    long_ago = utcnow() - STALLED_AFTER - timedelta(seconds=30)
    with pg_database.session() as session:
        session.execute(update(Image).where(Image.id.in_(waiting)).values(enqueued_at=long_ago))
    worker = get_json(client, "/api/v1/queue", "Queue")["worker"]
    assert (worker["state"], worker["queued"]) == ("stalled", 2)
    assert worker["oldest_queued_at"].endswith("Z")


@pytest.mark.parametrize(
    ("queued", "processing", "waited", "since_finish", "state"),
    [
        (0, 0, None, None, "idle"),
        (0, 2, None, None, "working"),
        (3, 1, 600, 600, "working"),
        (3, 0, 10, None, "waiting"),
        (3, 0, 600, None, "stalled"),
        (3, 0, 600, 600, "stalled"),
        (3, 0, 600, 5, "waiting"),  # something just finished: a worker is alive
    ],
)
def test_worker_state(queued: int, processing: int, waited: int | None, since_finish: int | None, state: str) -> None:
    now = utcnow()
    oldest = now - timedelta(seconds=waited) if waited is not None else None
    last = now - timedelta(seconds=since_finish) if since_finish is not None else None
    assert worker_state(queued, processing, oldest, last, now) == state


# --- export -----------------------------------------------------------------------------------------


def export(client: FlaskClient, query: str) -> tuple[Any, str]:
    response = client.get(f"/api/v1/faces/export?{query}")
    assert response.status_code == 200, response.get_data(as_text=True)
    disposition = response.headers["Content-Disposition"]
    assert disposition.startswith('attachment; filename="socialfer-faces-')
    return response, disposition


def test_export_csv_has_every_filtered_face(client: FlaskClient, seeded: StatsData) -> None:
    response, disposition = export(client, "format=csv")
    assert response.mimetype == "text/csv" and disposition.endswith('.csv"')
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    assert rows[0] == list(EXPORT_FIELDS)
    listed = client.get("/api/v1/faces?limit=100").get_json()["items"]
    assert [int(row[0]) for row in rows[1:]] == [face["id"] for face in listed] == seeded.face_ids[::-1]
    first = dict(zip(rows[0], rows[1], strict=True))
    face = listed[0]
    assert first["emotion"] == face["emotion"] and first["analyzed_at"] == face["analyzed_at"]
    assert [int(first[key]) for key in ("x", "y", "w", "h")] == face["box"]
    assert {name: float(first[f"score_{name}"]) for name in EMOTIONS} == face["scores"]
    assert first["image_url"] == "https://example.com/a.jpg"

    default, _ = export(client, "emotion=happy&platform=facebook")
    assert default.mimetype == "text/csv"
    assert len(list(csv.reader(io.StringIO(default.get_data(as_text=True))))) == 1 + 2


def test_export_json_is_the_listing_with_urls(client: FlaskClient, seeded: StatsData) -> None:
    for query in ("", f"batch_id={seeded.batch_a}", "since=2025-03-01&emotion=neutral", "platform=other"):
        response, disposition = export(client, f"format=json&{query}")
        assert response.mimetype == "application/json" and disposition.endswith('.json"')
        body = json.loads(response.get_data(as_text=True))
        for face in body:
            conforms(face, "ExportedFace")
        listed = client.get(f"/api/v1/faces?limit=100&{query}").get_json()["items"]
        assert [{key: value for key, value in face.items() if key != "image_url"} for face in body] == listed


def test_export_rejects_bad_parameters(client: FlaskClient) -> None:
    for query, name in (("format=xml", "format"), ("emotion=joy", "emotion"), ("since=soon", "since")):
        response = client.get(f"/api/v1/faces/export?{query}")
        assert response.status_code == 400 and response.get_json()["error"]["message"].startswith(f"{name}:")


# --- batches under the dashboard's filters ----------------------------------------------------------


def test_batches_filtered_like_the_other_panels(client: FlaskClient, seeded: StatsData) -> None:
    def batch_ids(query: str) -> list[int]:
        return [batch["id"] for batch in get_json(client, f"/api/v1/batches?{query}", "BatchList")["items"]]

    a, b = seeded.batch_a, seeded.batch_b
    assert batch_ids("") == [b, a]
    assert batch_ids("platform=instagram") == [b, a]
    assert batch_ids("platform=facebook") == [a]
    assert batch_ids("platform=other") == []
    assert batch_ids(f"batch_id={a}") == [a]
    created = client.get(f"/api/v1/batches/{a}").get_json()["created_at"]
    assert batch_ids(f"since={created}") == [b, a]  # since is inclusive; b came later
    assert batch_ids(f"until={created}") == []
