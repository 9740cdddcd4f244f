"""Metrics, logs and callbacks of a real deployment: gunicorn with 2 workers, Celery with 2 pool
processes, Postgres and Redis. After a batch, both /metrics endpoints are scraped and their
counts must equal what the database holds; every worker log line is one JSON object naming
its image; the batch's callback is refused once (500), retried and delivered, signed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import redis
import requests
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select

from core.vocabulary import WRITE
from db import Database, Face, Image
from db.access import create_key
from tests.support import free_port, image_server, socialfer_process, wait_until
from tests.test_webhooks import SECRET, independent_check, receiver

pytestmark = pytest.mark.slow

ADMIN = "admin-key"


def scrape(url: str, headers: dict[str, str] | None = None) -> dict[tuple[str, tuple], float]:
    """Every sample as {(name, sorted labels): value}."""
    response = requests.get(url, headers=headers or {}, timeout=10)
    assert response.status_code == 200, response.text
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def wait_for(url: str) -> None:
    def answers() -> bool:
        try:
            return requests.get(url, timeout=5).status_code < 500
        except requests.RequestException:  # not listening yet, or still loading
            return False

    wait_until(answers, timeout=120, what=url)


def test_metrics_logs_and_callback_agree_with_the_database(
    pg_database: Database, redis_url: str, shared_data: Path, tmp_path: Path
) -> None:
    redis.Redis.from_url(redis_url).flushdb()
    api_port, metrics_port = free_port(), free_port()
    _, writer = create_key(pg_database, "observability test", WRITE)
    base, auth = f"http://127.0.0.1:{api_port}", {"Authorization": f"Bearer {writer}"}
    env = {
        "SOCIALFER_DATABASE_URL": pg_database.url,
        "SOCIALFER_BROKER_URL": redis_url,
        "SOCIALFER_ALLOW_PRIVATE_URLS": "1",
        "SOCIALFER_DATA_DIR": str(tmp_path),
        "SOCIALFER_API_KEYS": ADMIN,  # a bootstrap admin key; a write key is made below
        "SOCIALFER_WEBHOOK_SECRET": SECRET,
        "SOCIALFER_WEBHOOK_RETRY_BASE_DELAY": "1",
        "SOCIALFER_LOG_FORMAT": "json",
        "SOCIALFER_WORKER_METRICS_PORT": str(metrics_port),
        "PROMETHEUS_MULTIPROC_DIR": None,
    }
    worker_log = tmp_path / "worker.log"
    with (
        image_server(shared_data / "social_examples") as images,
        receiver([500, 200]) as (hook_url, received),
        socialfer_process(["worker", "--concurrency", "2"], env, worker_log) as worker_process,
        socialfer_process(["serve", "--port", str(api_port), "--workers", "2", "--no-worker"], env, tmp_path / "api"),
    ):
        wait_for(f"{base}/healthz")
        urls = [
            images.url(f"{p}/{i}.jpeg")
            for p, n in (("facebook", 3), ("instagram", 3), ("twitter", 5))
            for i in range(1, n + 1)
        ]
        urls += [images.url("missing.jpeg"), images.url("text")]
        reply = requests.post(
            f"{base}/api/v1/batches", json={"urls": urls, "callback_url": hook_url}, headers=auth, timeout=30
        )
        assert reply.status_code == 202, reply.text
        batch_id = reply.json()["id"]

        def delivered() -> dict | None:
            assert worker_process.poll() is None, worker_log.read_text()[-3000:]
            batch = requests.get(f"{base}/api/v1/batches/{batch_id}", headers=auth, timeout=10).json()
            return batch if batch["status"] == "done" and batch["callback"]["state"] == "delivered" else None

        batch = wait_until(delivered, timeout=420, interval=1, what="the batch and its callback")
        stats_calls = 7
        for _ in range(stats_calls):  # one connection each, so both gunicorn processes take some
            assert requests.get(f"{base}/api/v1/stats", headers=auth, timeout=10).status_code == 200
        assert requests.get(f"{base}/metrics", timeout=10).status_code == 401
        assert requests.get(f"{base}/metrics", headers=auth, timeout=10).status_code == 403  # a writer is no admin
        api = scrape(f"{base}/metrics", {"Authorization": f"Bearer {ADMIN}"})
        wait_for(f"http://127.0.0.1:{metrics_port}/metrics")
        worker = scrape(f"http://127.0.0.1:{metrics_port}/metrics")

        failing = subprocess.run(
            [sys.executable, "-m", "socialfer", "submit", "--wait", "--api", base, images.url("missing.jpeg")],
            capture_output=True,
            text=True,
            timeout=180,
            env={**os.environ, "SOCIALFER_API_KEY": writer},
        )

    with pg_database.session() as session:
        states = dict(
            session.execute(
                select(Image.status, func.count()).where(Image.batch_id == batch_id).group_by(Image.status)
            ).all()
        )
        codes = dict(
            session.execute(
                select(Image.error_code, func.count())
                .where(Image.batch_id == batch_id, Image.status == "failed")
                .group_by(Image.error_code)
            ).all()
        )
        faces = session.scalar(select(func.count()).select_from(Face).where(Face.batch_id == batch_id))
    assert states == {"done": 11, "failed": 2} and codes == {"http_404": 1, "not_an_image": 1}
    assert (batch["done"], batch["failed"], batch["faces"]) == (11, 2, faces)

    # the API, summed over its gunicorn processes
    route = "/api/v1/stats"
    assert value(api, "socialfer_http_requests_total", method="GET", route=route, status="200") == stats_calls
    assert value(api, "socialfer_http_request_duration_seconds_count", method="GET", route=route) == stats_calls
    post = {"method": "POST", "route": "/api/v1/batches"}
    assert value(api, "socialfer_http_requests_total", status="202", **post) == 1
    assert value(api, "socialfer_http_requests_total", method="GET", route="/metrics", status="401") == 1
    assert value(api, "socialfer_http_requests_total", method="GET", route="/metrics", status="403") == 1

    # the worker, summed over its pool processes, against the database
    assert value(worker, "socialfer_image_attempts_total", outcome="done", error_code="") == states["done"]
    for code, count in codes.items():
        assert value(worker, "socialfer_image_attempts_total", outcome="failed", error_code=code) == count
    assert value(worker, "socialfer_faces_total") == faces
    assert value(worker, "socialfer_image_stage_seconds_count", stage="fetch") == len(urls)
    for stage in ("decode", "detect", "store"):
        assert value(worker, "socialfer_image_stage_seconds_count", stage=stage) == states["done"], stage
    assert value(worker, "socialfer_image_stage_seconds_count", stage="classify") == 11  # every example has a face
    assert value(worker, "socialfer_webhook_deliveries_total", outcome="retry") == 1
    assert value(worker, "socialfer_webhook_deliveries_total", outcome="delivered") == 1
    assert value(worker, "socialfer_queue_messages") == 0

    # the callback: refused once, retried, then delivered, signed
    assert len(received) == 2 and received[0].body == received[1].body
    independent_check(SECRET, received[1].headers["X-Socialfer-Signature"], received[1].body)
    assert json.loads(received[1].body)["failures"] == codes

    # every worker line is one JSON object; those about an image name it, its batch, task and outcome
    lines = [line for line in worker_log.read_text().splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]
    succeeded = [r for r in records if "socialfer.analyze_image" in r["message"] and "succeeded" in r["message"]]
    assert len(succeeded) == len(urls) + 1  # and the image `submit --wait` sent
    for record in succeeded:
        assert record["image_id"] and record["batch_id"] and record["task_id"]
        assert record["outcome"] in ("done", "failed")
    assert sum(record["batch_id"] == batch_id for record in succeeded) == len(urls)
    received_lines = [
        r for r in records if r["message"].startswith("Task socialfer.analyze_image") and "received" in r["message"]
    ]
    assert received_lines and all(r["image_id"] and r["task_id"] for r in received_lines)

    # submit --wait says why and exits 1
    assert failing.returncode == 1, failing.stderr
    assert "0 done, 1 failed" in failing.stderr
    assert "1 failed with http_404:" in failing.stderr and "missing.jpeg" in failing.stderr
