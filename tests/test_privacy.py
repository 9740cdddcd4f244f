"""What is kept of a photo: blurred previews lose the faces' detail and nothing else; `off` keeps none;
result retention and the CLI's erasure remove whole batches."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import cv2
import numpy as np
from click.testing import CliRunner
from sqlalchemy import func, select

from core.settings import Settings
from db import Batch, Database, Image
from db.access import list_keys
from db.schema import utcnow
from socialfer.cli import main
from tests.factories import add_batch, add_image
from tests.support import make_settings
from workers.privacy import blur_faces, preview_to_keep
from workers.sweeper import sweep

BOXES = [(40, 30, 60, 70), (150, 60, 40, 40)]


def detail(gray: np.ndarray) -> float:
    """Variance of the Laplacian: how much fine detail (edges, texture) a region holds."""
    return float(cv2.Laplacian(gray, cv2.CV_64F).var())


def textured(seed: int = 3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(200, 240, 3), dtype=np.uint8)


def test_blurred_faces_lose_most_detail_and_the_rest_is_unchanged() -> None:
    rgb = textured()
    blurred = blur_faces(rgb, BOXES)
    mask = np.zeros(rgb.shape[:2], bool)
    for x, y, w, h in BOXES:
        before = detail(cv2.cvtColor(rgb[y : y + h, x : x + w], cv2.COLOR_RGB2GRAY))
        after = detail(cv2.cvtColor(blurred[y : y + h, x : x + w], cv2.COLOR_RGB2GRAY))
        assert after <= 0.1 * before, (before, after)
        pad_x, pad_y = round(w * 0.15), round(h * 0.15)
        mask[max(0, y - pad_y) : y + h + pad_y, max(0, x - pad_x) : x + w + pad_x] = True
    assert np.array_equal(blurred[~mask], rgb[~mask])


def test_preview_modes() -> None:
    rgb = textured()
    assert preview_to_keep(rgb, BOXES, "off", 640) is None
    plain = cv2.imdecode(np.frombuffer(preview_to_keep(rgb, BOXES, "on", 640), np.uint8), cv2.IMREAD_GRAYSCALE)
    blurred = cv2.imdecode(np.frombuffer(preview_to_keep(rgb, BOXES, "blurred", 640), np.uint8), cv2.IMREAD_GRAYSCALE)
    x, y, w, h = BOXES[0]
    assert detail(blurred[y : y + h, x : x + w]) <= 0.1 * detail(plain[y : y + h, x : x + w])


def test_result_retention_erases_old_batches_in_the_sweep(any_database: Database, tmp_path: Path) -> None:
    with any_database.session() as session:
        old, recent = add_batch(session), add_batch(session)
        old.created_at = utcnow() - timedelta(days=40)
        add_image(session, old, emotions=("happy",))
        add_image(session, recent, emotions=("sad",))
        recent_id = recent.id
    settings: Settings = make_settings(tmp_path, result_retention_days=30)
    report = sweep(any_database, settings, queue_is_empty=True)
    assert (report.batches_expired, report.images_expired) == (1, 1)
    with any_database.session() as session:
        assert session.scalars(select(Batch.id)).all() == [recent_id]
        assert session.scalar(select(func.count()).select_from(Image)) == 1


def test_keys_and_delete_commands(sqlite_url: str, monkeypatch) -> None:
    monkeypatch.setenv("SOCIALFER_DATABASE_URL", sqlite_url)
    runner = CliRunner()
    created = runner.invoke(main, ["keys", "create", "--scope", "read", "--name", "dashboard viewer"])
    assert created.exit_code == 0, created.output
    key = created.stdout.strip().splitlines()[0]
    assert key.startswith("sf_") and len(key) > 40
    database = Database(sqlite_url)
    (row,) = list_keys(database)
    assert (row.name, row.scope, row.revoked_at) == ("dashboard viewer", "read", None)
    assert key not in row.key_hash and row.prefix == key[:10]
    listed = runner.invoke(main, ["keys", "list"])
    assert "dashboard viewer" in listed.output and key not in listed.output
    assert runner.invoke(main, ["keys", "revoke", str(row.id)]).exit_code == 0
    assert runner.invoke(main, ["keys", "revoke", str(row.id)]).exit_code != 0
    assert list_keys(database)[0].revoked_at is not None

    with database.session() as session:
        first, second = add_batch(session), add_batch(session)
        second.created_at = utcnow() - timedelta(days=10)
        add_image(session, first, emotions=("happy",))
        first_id = first.id
    assert runner.invoke(main, ["delete"]).exit_code != 0  # one of --batch / --before
    deleted = runner.invoke(main, ["delete", "--batch", str(first_id), "--yes"])
    assert deleted.exit_code == 0 and "1 image" in deleted.output
    before = (utcnow() - timedelta(days=5)).strftime("%Y-%m-%d")
    assert runner.invoke(main, ["delete", "--before", before, "--yes"]).exit_code == 0
    with database.session() as session:
        assert session.scalar(select(func.count()).select_from(Batch)) == 0
    database.dispose()
