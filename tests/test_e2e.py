"""End to end: the 11 example photos through the real API, queue, worker, model and database.

Runs twice: on Postgres + Redis (API and worker as separate processes) and on the
embedded default (`socialfer serve` alone, nothing configured).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis
import requests

from core.vocabulary import EMOTIONS
from models.detector import DEFAULT_MIN_CONFIDENCE
from tests.support import EXPECTED_FACES, free_port, image_server, socialfer_process, wait_until

pytestmark = pytest.mark.slow

EXPECTED_PER_PLATFORM = {"facebook": 3, "instagram": 3, "twitter": 5}
DB_ENV_KEYS = ("SOCIALFER_DATABASE_URL", "SOCIALFER_BROKER_URL", "SOCIALFER_API_KEYS")


@pytest.fixture(scope="module")
def examples(shared_data: Path):
    with image_server(shared_data / "social_examples") as server:
        yield server


def wait_for_api(base: str) -> None:
    def healthy() -> bool:
        try:
            return requests.get(f"{base}/healthz", timeout=2).status_code == 200
        except requests.ConnectionError:
            return False

    wait_until(healthy, timeout=90, what=f"{base}/healthz")


def submit(base: str, urls: list[str], **fields) -> dict:
    response = requests.post(f"{base}/api/v1/batches", json={"urls": urls, **fields}, timeout=30)
    assert response.status_code == 202, response.text
    body = response.json()
    assert (body["total"], body["queued"] + body["processing"] + body["done"]) == (len(urls), len(urls))
    return body


def all_images(base: str, batch_id: int) -> list[dict]:
    body = requests.get(f"{base}/api/v1/batches/{batch_id}/images", params={"per_page": 100}, timeout=30).json()
    return body["items"]


def check_flow(base: str, examples, unreachable_port: int) -> dict:
    """Submit the examples (one batch per platform) and three bad URLs; check every answer."""
    wait_for_api(base)
    started = time.monotonic()
    batches = {
        platform: submit(base, [examples.url(f"{platform}/{i}.jpeg") for i in range(1, n + 1)], platform=platform)
        for platform, n in EXPECTED_PER_PLATFORM.items()
    }
    bad = submit(
        base,
        [examples.url("missing.jpeg"), examples.url("text"), f"http://127.0.0.1:{unreachable_port}/x.jpeg"],
        name="bad urls",
    )

    def finished() -> bool:
        states = [requests.get(f"{base}/api/v1/batches/{b['id']}", timeout=10).json() for b in [*batches.values(), bad]]
        return all(state["status"] == "done" for state in states)

    wait_until(finished, timeout=420, interval=1, what="all batches to finish")
    elapsed = time.monotonic() - started

    face_total = 0
    for platform, batch in batches.items():
        state = requests.get(f"{base}/api/v1/batches/{batch['id']}", timeout=10).json()
        assert (state["done"], state["failed"]) == (EXPECTED_PER_PLATFORM[platform], 0), state
        for image in all_images(base, batch["id"]):
            assert image["status"] == "done" and image["platform"] == platform
            name = image["url"].split("/", 3)[-1].removesuffix(".jpeg")
            assert image["width"] > 0 and image["face_count"] == len(image["faces"]) == EXPECTED_FACES[name], name
            for face in image["faces"]:
                assert set(face["scores"]) == set(EMOTIONS)
                assert sum(face["scores"].values()) == pytest.approx(1.0, abs=1e-3)
                assert face["emotion"] == max(face["scores"], key=face["scores"].get)
                assert face["confidence"] >= DEFAULT_MIN_CONFIDENCE and len(face["box"]) == 4
            face_total += len(image["faces"])
    assert face_total == sum(EXPECTED_FACES.values())

    codes = {
        image["url"].rsplit("/", 1)[-1]: (image["status"], image["error"]["code"])
        for image in all_images(base, bad["id"])
    }
    assert codes == {
        "missing.jpeg": ("failed", "http_404"),
        "text": ("failed", "not_an_image"),
        "x.jpeg": ("failed", "connection_error"),
    }

    stats = requests.get(f"{base}/api/v1/stats", timeout=10).json()
    assert (stats["images"], stats["faces"]) == (11, face_total)
    assert sum(e["count"] for e in stats["emotions"].values()) == face_total
    for platform, expected in EXPECTED_PER_PLATFORM.items():
        assert stats["by_platform"][platform]["images"] == expected
    faces_listed = requests.get(f"{base}/api/v1/faces", params={"limit": 500}, timeout=10).json()["items"]
    assert len(faces_listed) == face_total
    print(f"\n{base}: 11 examples + 3 bad URLs finished in {elapsed:.1f}s, {face_total} faces")
    return {"elapsed_s": elapsed, "faces": face_total}


def test_end_to_end_on_postgres_and_redis(pg_database, redis_url: str, examples, tmp_path: Path) -> None:
    redis.Redis.from_url(redis_url).flushdb()
    port = free_port()
    env = {
        "SOCIALFER_DATABASE_URL": pg_database.url,
        "SOCIALFER_BROKER_URL": redis_url,
        "SOCIALFER_ALLOW_PRIVATE_URLS": "1",
        "SOCIALFER_DATA_DIR": str(tmp_path),
        "SOCIALFER_API_KEYS": None,
    }
    with (
        socialfer_process(["worker"], env, tmp_path / "worker.log"),
        socialfer_process(["serve", "--port", str(port), "--no-worker"], env, tmp_path / "api.log"),
    ):
        check_flow(f"http://127.0.0.1:{port}", examples, free_port())


def test_end_to_end_on_embedded_default(examples, tmp_path: Path) -> None:
    port = free_port()
    env = {key: None for key in DB_ENV_KEYS}
    env |= {"SOCIALFER_DATA_DIR": str(tmp_path / "data"), "SOCIALFER_ALLOW_PRIVATE_URLS": "1"}
    base = f"http://127.0.0.1:{port}"
    with socialfer_process(["serve", "--port", str(port)], env, tmp_path / "serve.log"):
        check_flow(base, examples, free_port())
        cli = subprocess.run(
            [sys.executable, "-m", "socialfer", "submit", "--wait", "--api", base, examples.url("twitter/1.jpeg")],
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, **{k: v for k, v in env.items() if v}},
        )
    assert cli.returncode == 0, cli.stderr
    batch_id = int(cli.stdout.strip())
    assert f"batch {batch_id}: 1 done, 0 failed, 2 faces" in cli.stderr
    assert (tmp_path / "data" / "socialfer.db").exists()
