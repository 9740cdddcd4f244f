"""Configuration from the environment, read once per process.

Nothing set means the embedded default: a SQLite file and a filesystem broker in
`SOCIALFER_DATA_DIR`, so a first look needs no servers.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

TRUE_WORDS = {"1", "true", "yes", "on"}


def default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "socialfer"


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    return int(raw) if raw not in (None, "") else default


def env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    return float(raw) if raw not in (None, "") else default


def env_keys(name: str) -> tuple[str, ...]:
    return tuple(k.strip() for k in os.environ.get(name, "").split(",") if k.strip())


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    database_url: str
    broker_url: str
    api_keys: tuple[str, ...] = ()
    allow_private_urls: bool = False
    allowed_ports: frozenset[int] = frozenset({80, 443})
    ca_bundle: str | None = None  # trusted CAs for https fetches (default: certifi's)
    max_batch_urls: int = 1000
    max_url_length: int = 2048
    max_image_bytes: int = 20 * 1024 * 1024
    connect_timeout: float = 5.0
    read_timeout: float = 15.0
    max_redirects: int = 5
    page_size: int = 50
    max_page_size: int = 500
    preview_max_side: int = 640
    preview_retention_days: int = 30
    max_attempts: int = 4  # per image, counting the first; transient failures retry up to this
    retry_base_delay: float = 2.0  # seconds, doubled per attempt, with jitter
    retry_max_delay: float = 300.0
    processing_timeout: float = 600.0  # an image "processing" longer than this lost its worker
    queued_timeout: float = 900.0  # a queued image older than this, with the queue empty, lost its message
    sweep_interval: float = 60.0
    tf_threads: int = 0  # TensorFlow threads per worker process; 0: the CPU count divided by the pool size
    allow_open_api: bool = False  # serve without API keys on a non-loopback address (socialfer.exposure)
    admin_keys: tuple[str, ...] = ()  # keys for GET /metrics; none: the API keys do (none of either: open)
    log_format: str = "text"  # "json": one JSON object per log line (workers.logs)
    worker_metrics_host: str = "127.0.0.1"  # where a worker serves its Prometheus metrics
    worker_metrics_port: int = 9808  # 0: no metrics endpoint on the worker
    webhook_secret: str = ""  # HMAC-SHA256 key for batch callbacks; callback_url is refused without it
    webhook_retry_base_delay: float = 30.0  # seconds before the first retry of a failed callback, doubled after
    webhook_retry_max_delay: float = 1800.0  # below Redis's 1 h visibility timeout, so a countdown is not redelivered
    webhook_give_up_after: float = 86400.0  # seconds after the batch ended: then the callback is `failed`

    @property
    def embedded_broker(self) -> bool:
        return self.broker_url.startswith("filesystem://")

    @property
    def broker_dir(self) -> Path:
        return self.data_dir / "broker"


def load_settings() -> Settings:
    data_dir = Path(os.environ.get("SOCIALFER_DATA_DIR") or default_data_dir())
    broker_url = os.environ.get("SOCIALFER_BROKER_URL") or "filesystem://"
    return Settings(
        data_dir=data_dir,
        database_url=os.environ.get("SOCIALFER_DATABASE_URL") or f"sqlite:///{data_dir / 'socialfer.db'}",
        broker_url=broker_url,
        api_keys=env_keys("SOCIALFER_API_KEYS"),
        allow_private_urls=os.environ.get("SOCIALFER_ALLOW_PRIVATE_URLS", "").lower() in TRUE_WORDS,
        allowed_ports=frozenset(int(p) for p in os.environ.get("SOCIALFER_ALLOWED_PORTS", "80,443").split(",") if p),
        max_batch_urls=env_int("SOCIALFER_MAX_BATCH_URLS", 1000),
        ca_bundle=os.environ.get("SOCIALFER_CA_BUNDLE") or None,
        max_image_bytes=env_int("SOCIALFER_MAX_IMAGE_BYTES", 20 * 1024 * 1024),
        connect_timeout=env_float("SOCIALFER_CONNECT_TIMEOUT", 5.0),
        read_timeout=env_float("SOCIALFER_READ_TIMEOUT", 15.0),
        preview_max_side=env_int("SOCIALFER_PREVIEW_MAX_SIDE", 640),
        preview_retention_days=env_int("SOCIALFER_PREVIEW_RETENTION_DAYS", 30),
        max_attempts=env_int("SOCIALFER_MAX_ATTEMPTS", 4),
        retry_base_delay=env_float("SOCIALFER_RETRY_BASE_DELAY", 2.0),
        processing_timeout=env_float("SOCIALFER_PROCESSING_TIMEOUT", 600.0),
        queued_timeout=env_float("SOCIALFER_QUEUED_TIMEOUT", 900.0),
        sweep_interval=env_float("SOCIALFER_SWEEP_INTERVAL", 60.0),
        tf_threads=env_int("SOCIALFER_TF_THREADS", 0),
        allow_open_api=os.environ.get("SOCIALFER_ALLOW_OPEN_API", "").lower() in TRUE_WORDS,
        admin_keys=env_keys("SOCIALFER_ADMIN_KEYS"),
        log_format=(os.environ.get("SOCIALFER_LOG_FORMAT") or "text").lower(),
        worker_metrics_host=os.environ.get("SOCIALFER_WORKER_METRICS_HOST") or "127.0.0.1",
        worker_metrics_port=env_int("SOCIALFER_WORKER_METRICS_PORT", 9808),
        webhook_secret=os.environ.get("SOCIALFER_WEBHOOK_SECRET", ""),
        webhook_retry_base_delay=env_float("SOCIALFER_WEBHOOK_RETRY_BASE_DELAY", 30.0),
        webhook_retry_max_delay=env_float("SOCIALFER_WEBHOOK_RETRY_MAX_DELAY", 1800.0),
        webhook_give_up_after=env_float("SOCIALFER_WEBHOOK_GIVE_UP_AFTER", 86400.0),
    )
