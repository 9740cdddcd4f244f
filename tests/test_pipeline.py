"""One image through the worker pipeline, on the real Postgres, with a fake analyzer (unit level)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from sqlalchemy import func, select

from core.vocabulary import DONE, EMOTIONS, FAILED, QUEUED
from db import PREVIEW, UPLOAD, Batch, Database, Face, Image, ImageFile
from db.lifecycle import record_success
from models.analyzer import FaceResult, ImageAnalysis
from tests.support import free_port, image_server, make_settings
from workers.pipeline import WorkerContext, process_image

HAPPY = {name: (0.94 if name == "happy" else 0.01) for name in EMOTIONS}


class FakeAnalyzer:
    def __init__(self, faces: list[FaceResult] | None = None, error: Exception | None = None):
        self.faces = faces if faces is not None else [FaceResult((1, 2, 10, 12), 0.99, "happy", HAPPY)]
        self.error = error
        self.calls = 0

    def analyze_image(self, rgb: np.ndarray) -> ImageAnalysis:
        return ImageAnalysis(self.analyze(rgb))

    def analyze(self, rgb: np.ndarray) -> list[FaceResult]:
        self.calls += 1
        if self.error:
            raise self.error
        return self.faces


def add_image(database: Database, url: str, platform: str = "twitter") -> int:
    with database.session() as session:
        batch = Batch(total=1)
        image = Image(batch=batch, url=url, platform=platform, status=QUEUED)
        session.add(image)
        session.flush()
        return image.id


@pytest.fixture
def server(tmp_path: Path):
    cv2.imwrite(str(tmp_path / "photo.jpg"), np.full((40, 60, 3), 128, np.uint8))
    cv2.imwrite(str(tmp_path / "wide.jpg"), np.full((500, 1600, 3), 90, np.uint8))
    with image_server(tmp_path) as srv:
        yield srv


def context(database: Database, tmp_path: Path, analyzer=None, **overrides) -> WorkerContext:
    settings = make_settings(tmp_path, **{"allow_private_urls": True, "database_url": database.url, **overrides})
    fake = analyzer or FakeAnalyzer()
    return WorkerContext(settings, database, analyzer_factory=lambda _settings: fake)


def image(database: Database, image_id: int) -> Image:
    with database.session() as session:
        return session.get(Image, image_id)


def test_success_stores_faces_and_details(pg_database: Database, server, tmp_path: Path) -> None:
    image_id = add_image(pg_database, server.url("photo.jpg"))
    assert process_image(image_id, context(pg_database, tmp_path)).status == DONE
    stored = image(pg_database, image_id)
    assert (stored.status, stored.width, stored.height, stored.face_count, stored.attempts) == (DONE, 60, 40, 1, 1)
    assert stored.fetch_ms is not None and stored.analyze_ms is not None and stored.finished_at is not None
    with pg_database.session() as session:
        face = session.scalars(select(Face).where(Face.image_id == image_id)).one()
        assert (face.box, face.emotion, face.platform, face.batch_id) == (
            [1, 2, 10, 12],
            "happy",
            "twitter",
            stored.batch_id,
        )
        assert face.scores == pytest.approx(HAPPY)


@pytest.mark.parametrize(("path", "code"), [("nothing-here.jpg", "http_404"), ("text", "not_an_image")])
def test_bad_urls_fail_with_codes(pg_database: Database, server, tmp_path: Path, path: str, code: str) -> None:
    image_id = add_image(pg_database, server.url(path))
    assert process_image(image_id, context(pg_database, tmp_path)).status == FAILED
    stored = image(pg_database, image_id)
    assert (stored.status, stored.error_code) == (FAILED, code)
    assert stored.error_message


def test_unreachable_port_is_retried_then_fails(pg_database: Database, tmp_path: Path) -> None:
    image_id = add_image(pg_database, f"http://127.0.0.1:{free_port()}/x.jpg")
    ctx = context(pg_database, tmp_path, max_attempts=2, retry_base_delay=4.0)
    first = process_image(image_id, ctx)
    assert first.status == "retry" and 2.0 <= first.retry_in <= 4.0
    stored = image(pg_database, image_id)
    assert (stored.status, stored.error_code, stored.attempts) == (QUEUED, "connection_error", 1)
    assert process_image(image_id, ctx).status == FAILED
    stored = image(pg_database, image_id)
    assert (stored.status, stored.error_code, stored.attempts) == (FAILED, "connection_error", 2)


def test_permanent_failures_are_not_retried(pg_database: Database, server, tmp_path: Path) -> None:
    image_id = add_image(pg_database, server.url("nothing-here.jpg"))
    assert process_image(image_id, context(pg_database, tmp_path, max_attempts=5)).status == FAILED


def test_private_address_blocked_by_default(pg_database: Database, server, tmp_path: Path) -> None:
    image_id = add_image(pg_database, server.url("photo.jpg"))
    process_image(image_id, context(pg_database, tmp_path, allow_private_urls=False))
    assert image(pg_database, image_id).error_code == "blocked_address"
    assert server.hits == []


def test_analyzer_crash_is_a_failure_not_a_lost_image(pg_database: Database, server, tmp_path: Path) -> None:
    image_id = add_image(pg_database, server.url("photo.jpg"))
    ctx = context(pg_database, tmp_path, analyzer=FakeAnalyzer(error=RuntimeError("boom")))
    assert process_image(image_id, ctx).status == FAILED
    assert image(pg_database, image_id).error_code == "internal_error"


def test_terminal_and_missing_images_are_skipped(pg_database: Database, server, tmp_path: Path) -> None:
    analyzer = FakeAnalyzer()
    ctx = context(pg_database, tmp_path, analyzer=analyzer)
    image_id = add_image(pg_database, server.url("photo.jpg"))
    process_image(image_id, ctx)
    assert process_image(image_id, ctx).status == "skipped"
    assert process_image(10**9, ctx).status == "skipped"
    assert analyzer.calls == 1


def test_recording_twice_replaces_faces(pg_database: Database, tmp_path: Path) -> None:
    image_id = add_image(pg_database, "http://example.com/a.jpg")
    faces = [FaceResult((0, 0, 5, 5), 0.99, "sad", HAPPY), FaceResult((9, 9, 5, 5), 0.98, "happy", HAPPY)]
    record_success(pg_database, image_id, faces, {})
    record_success(pg_database, image_id, faces, {})
    with pg_database.session() as session:
        assert session.scalar(select(func.count()).select_from(Face).where(Face.image_id == image_id)) == 2


def files_of(database: Database, image_id: int) -> dict[str, bytes]:
    with database.session() as session:
        rows = session.scalars(select(ImageFile).where(ImageFile.image_id == image_id)).all()
        return {row.kind: row.data for row in rows}


def test_a_downscaled_preview_is_kept(pg_database: Database, server, tmp_path: Path) -> None:
    image_id = add_image(pg_database, server.url("wide.jpg"))
    process_image(image_id, context(pg_database, tmp_path))
    preview = cv2.imdecode(np.frombuffer(files_of(pg_database, image_id)[PREVIEW], np.uint8), cv2.IMREAD_COLOR)
    assert preview.shape[:2] == (200, 640)  # 1600x500 scaled to 640 on the longer side


def add_upload(database: Database, data: bytes) -> int:
    image_id = add_image(database, "upload:photo.png", platform="other")
    with database.session() as session:
        session.add(ImageFile(image_id=image_id, kind=UPLOAD, content_type="image/png", data=data))
    return image_id


def test_an_uploaded_file_is_analysed_and_then_dropped(pg_database: Database, tmp_path: Path) -> None:
    ok, png = cv2.imencode(".png", np.full((30, 50, 3), 10, np.uint8))
    image_id = add_upload(pg_database, png.tobytes())
    assert process_image(image_id, context(pg_database, tmp_path)).status == DONE
    assert (image(pg_database, image_id).width, image(pg_database, image_id).byte_size) == (50, len(png))
    assert set(files_of(pg_database, image_id)) == {PREVIEW}


def test_a_bad_upload_fails_and_is_dropped(pg_database: Database, tmp_path: Path) -> None:
    image_id = add_upload(pg_database, b"not an image at all")
    assert process_image(image_id, context(pg_database, tmp_path)).status == FAILED
    assert image(pg_database, image_id).error_code == "not_an_image"
    assert files_of(pg_database, image_id) == {}


def test_an_upload_whose_bytes_are_gone_fails_with_a_code(pg_database: Database, tmp_path: Path) -> None:
    image_id = add_image(pg_database, "upload:lost.png", platform="other")
    process_image(image_id, context(pg_database, tmp_path))
    assert image(pg_database, image_id).error_code == "upload_missing"


def test_the_worker_stores_sizes_flags_and_the_detection_limits(pg_database: Database, server, tmp_path: Path) -> None:
    faces = [FaceResult((1, 2, 20, 26), 0.99, "happy", HAPPY), FaceResult((30, 2, 40, 48), 0.98, "sad", HAPPY, True)]

    class Capped(FakeAnalyzer):
        def analyze_image(self, rgb: np.ndarray) -> ImageAnalysis:
            return ImageAnalysis(self.analyze(rgb), faces_beyond_cap=7, min_face_px=31, scan_capped=True)

    image_id = add_image(pg_database, server.url("photo.jpg"))
    ctx = context(pg_database, tmp_path, Capped(faces), low_resolution_px=28)
    assert process_image(image_id, ctx).status == DONE
    stored = image(pg_database, image_id)
    assert (stored.faces_beyond_cap, stored.min_face_px, stored.scan_capped, stored.face_count) == (7, 31, True, 2)
    with pg_database.session() as session:
        rows = session.scalars(select(Face).where(Face.image_id == image_id).order_by(Face.id)).all()
        assert [(f.size_px, f.low_resolution, f.uncertain) for f in rows] == [(20, True, False), (40, False, True)]


class StubDetector:
    """Stands in for MTCNN where only the classifier is under test."""

    def __init__(self, **options) -> None:
        self.options = options

    def warm_up(self) -> None:
        pass

    def scan(self, rgb: np.ndarray):
        raise AssertionError("not scanned here")


@pytest.mark.parametrize("precision", ["float32", "mixed_bfloat16"])
def test_the_worker_classifies_in_the_precision_the_setting_pins(
    monkeypatch, tmp_path: Path, caplog, precision: str
) -> None:
    """SOCIALFER_PRECISION reaches the worker's classifier, so every process answers alike (no timing race), and
    the worker says which precision it runs."""
    from workers.pipeline import load_analyzer

    monkeypatch.setattr("models.detector.FaceDetector", StubDetector)
    monkeypatch.setattr("models.hardware.limit_threads", lambda threads: None)
    with caplog.at_level("INFO", logger="workers.pipeline"):
        analyzer = load_analyzer(make_settings(tmp_path, precision=precision))
    assert analyzer.classifier.precision == precision
    assert f"precision {precision} (asked: {precision})" in caplog.text
