"""POST /api/v1/uploads on the real Postgres and Redis: photos in one transaction, then the queue."""
# ruff: noqa: F811 - the API fixtures are imported from tests.test_api and named as parameters

from __future__ import annotations

import io
from typing import Any

import pytest
import redis
from flask.testing import FlaskClient
from sqlalchemy import func, select

from api.uploads import sniff_image_type
from core.vocabulary import QUEUED
from db import UPLOAD, Database, Image, ImageFile
from tests.factories import jpeg_bytes
from tests.test_api import (  # noqa: F401 - fixtures
    DEAD_BROKER,
    ClientFactory,
    assert_error,
    broker,
    client,
    conforms,
    make_client,
    queued_task_ids,
    settings,
    stored,
)
from workers.celery_app import QUEUE

JPEG = jpeg_bytes(40, 30)
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def upload(client: FlaskClient, files: list[tuple[bytes, str]], **fields: str) -> Any:
    data: dict[str, Any] = {"files": [(io.BytesIO(content), name) for content, name in files], **fields}
    return client.post("/api/v1/uploads", data=data, content_type="multipart/form-data")


def stored_files(database: Database) -> int:
    with database.session() as session:
        return session.scalar(select(func.count()).select_from(ImageFile)) or 0


def test_upload_stores_one_batch_with_the_bytes_and_queues_each_image(
    client: FlaskClient, pg_database: Database, broker: redis.Redis
) -> None:
    response = upload(
        client, [(JPEG, "holiday.jpg"), (PNG, "../../etc/pass wd.png")], platform="instagram", name=" trip "
    )

    assert response.status_code == 202, response.get_data(as_text=True)
    batch = response.get_json()
    conforms(batch, "Batch")
    assert response.headers["Location"] == f"/api/v1/batches/{batch['id']}"
    assert (batch["total"], batch["queued"], batch["platform"], batch["name"]) == (2, 2, "instagram", "trip")
    with pg_database.session() as session:
        images = session.scalars(select(Image).order_by(Image.id)).all()
        assert [(image.url, image.platform, image.status) for image in images] == [
            ("upload:holiday.jpg", "instagram", QUEUED),
            ("upload:etc_pass_wd.png", "instagram", QUEUED),
        ]
        files = session.scalars(select(ImageFile).order_by(ImageFile.image_id)).all()
        assert [(file.image_id, file.kind, file.content_type, file.data) for file in files] == [
            (images[0].id, UPLOAD, "image/jpeg", JPEG),
            (images[1].id, UPLOAD, "image/png", PNG),
        ]
        image_ids = [image.id for image in images]
    assert sorted(queued_task_ids(broker)) == image_ids


def test_unnamed_and_non_ascii_files_get_safe_names(client: FlaskClient, pg_database: Database) -> None:
    response = upload(client, [(JPEG, "été à Paris.jpg"), (JPEG, "")])

    assert response.status_code == 202, response.get_data(as_text=True)
    with pg_database.session() as session:
        urls = session.scalars(select(Image.url).order_by(Image.id)).all()
        platforms = set(session.scalars(select(Image.platform)))
    assert urls == ["upload:ete_a_Paris.jpg", "upload:photo-2"]
    assert platforms == {"other"}


@pytest.mark.parametrize(
    ("files", "fields", "status", "code", "message_start"),
    [
        ([(JPEG, "a.jpg"), (b"<html>hello</html>", "page.jpg")], {}, 400, "invalid_file", "files[1] (page.jpg): not a"),
        ([(b"", "empty.png")], {}, 400, "invalid_file", "files[0] (empty.png)"),
        ([(JPEG, "a.jpg")] * 3, {}, 400, "invalid_files", "files: send 1 to 2 images"),
        ([], {}, 400, "invalid_files", "files:"),
        ([(JPEG, "a.jpg")], {"platform": "myspace"}, 400, "invalid_platform", "platform:"),
        ([(JPEG, "a.jpg")], {"name": "n" * 201}, 400, "invalid_name", "name:"),
        ([(JPEG, "a.jpg")], {"name": "a\x00b"}, 400, "invalid_name", "name: must not contain NUL"),
        ([(JPEG + b"0" * 5000, "big.jpg")], {}, 413, "file_too_large", "files[0] (big.jpg): larger than the 4000"),
    ],
)
def test_invalid_uploads_store_nothing(
    make_client: ClientFactory,
    pg_database: Database,
    broker: redis.Redis,
    files: list[tuple[bytes, str]],
    fields: dict[str, str],
    status: int,
    code: str,
    message_start: str,
) -> None:
    client = make_client(max_batch_urls=2, max_image_bytes=4000)

    assert_error(upload(client, files, **fields), status, code, message_start)
    assert stored(pg_database) == (0, 0) and stored_files(pg_database) == 0
    assert broker.llen(QUEUE) == 0


def test_a_json_body_is_not_an_upload(client: FlaskClient) -> None:
    assert_error(client.post("/api/v1/uploads", json={"files": ["a.jpg"]}), 400, "invalid_files")


def test_a_request_over_the_upload_limit_is_413(make_client: ClientFactory, pg_database: Database) -> None:
    client = make_client(max_batch_urls=1, max_image_bytes=1000)

    response = upload(client, [(JPEG + b"0" * 20_000, "a.jpg")])

    assert_error(response, 413, "payload_too_large", "an upload carries at most 1 files")
    assert stored(pg_database) == (0, 0)


def test_uploads_may_exceed_the_body_limit_of_url_batches(make_client: ClientFactory, pg_database: Database) -> None:
    client = make_client(max_batch_urls=2, max_url_length=100)
    large = jpeg_bytes(40, 30) + b"0" * 300_000
    assert len(large) > client.application.config["MAX_CONTENT_LENGTH"]

    assert upload(client, [(large, "large.jpg")]).status_code == 202
    assert stored_files(pg_database) == 1


def test_broker_down_is_503_and_stores_no_bytes(make_client: ClientFactory, pg_database: Database) -> None:
    client = make_client(broker_url=DEAD_BROKER)

    assert_error(upload(client, [(JPEG, "a.jpg")]), 503, "broker_unavailable")
    assert stored(pg_database) == (0, 0) and stored_files(pg_database) == 0


def test_uploads_need_a_key_when_keys_are_configured(make_client: ClientFactory, pg_database: Database) -> None:
    client = make_client(api_keys=("key-one",))

    assert_error(upload(client, [(JPEG, "a.jpg")]), 401, "unauthorized")
    files = {"files": [(io.BytesIO(JPEG), "a.jpg")]}
    response = client.post("/api/v1/uploads", data=files, headers={"Authorization": "Bearer key-one"})
    assert response.status_code == 202 and stored(pg_database) == (1, 1)


@pytest.mark.parametrize(
    ("head", "content_type"),
    [
        (b"\xff\xd8\xff\xe0\x00\x10JFIF", "image/jpeg"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0d", "image/png"),
        (b"GIF87a\x01\x00", "image/gif"),
        (b"GIF89a\x01\x00", "image/gif"),
        (b"RIFF\x24\x00\x00\x00WEBPVP8 ", "image/webp"),
        (b"BM\x36\x00\x00\x00", "image/bmp"),
        (b"RIFF\x24\x00\x00\x00WAVEfmt ", None),
        (b"%PDF-1.7", None),
        (b"<svg xmlns=", None),
        (b"", None),
    ],
)
def test_sniff_image_type(head: bytes, content_type: str | None) -> None:
    assert sniff_image_type(head) == content_type
