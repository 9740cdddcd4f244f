"""Every setting, declared once: name, type, default, environment variable and a line of doc.

Read from `SOCIALFER_*` environment variables by pydantic-settings, once per process, by
the composition root (the `socialfer` command line or `api.create_app`) and passed down;
no other module reads the environment. Nothing set means the embedded default: a SQLite
file and a filesystem broker in `SOCIALFER_DATA_DIR`, so a first look needs no servers.
Settings that contradict each other are refused at start with a message that names them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

ENV_PREFIX = "SOCIALFER_"


def default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "socialfer"


def comma_separated(value: Any) -> Any:
    """`a,b , c` from the environment as a list; values given in code pass through."""
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


class SettingsError(ValueError):
    """The environment holds a value that cannot be used; the message names each variable."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_ignore_empty=True,  # `SOCIALFER_X=` means "not set", as it always has
        frozen=True,
        populate_by_name=True,
        protected_namespaces=(),
        extra="ignore",
    )

    data_dir: Path = Field(
        default_factory=default_data_dir,
        description="where the embedded default keeps its SQLite file and broker folder "
        "(default `$XDG_DATA_HOME/socialfer`, else `~/.local/share/socialfer`)",
    )
    database_url: str = Field(
        "",
        description="e.g. `postgresql+psycopg://user@host/socialfer` (default `sqlite:///$SOCIALFER_DATA_DIR/socialfer.db`)",
    )
    broker_url: str = Field(
        "filesystem://",
        description="e.g. `redis://host:6379/0`; `filesystem://` is the embedded broker in the data dir",
    )
    api_keys: Annotated[tuple[str, ...], NoDecode] = Field(
        (),
        description="comma-separated bootstrap admin keys (not stored); with these or any key made by "
        "`socialfer keys create`, every data route needs a key of the right scope",
    )
    public_reads: bool = Field(False, description="`1`: reads need no key even when keys exist (an explicit opt-in)")
    allowed_hosts: Annotated[tuple[str, ...], NoDecode] = Field(
        (),
        description="comma-separated Host names the API answers to (default: loopback names and the address "
        "`socialfer serve --host` binds); others get 400, which stops DNS rebinding",
    )
    secret_key: str | None = Field(
        None,
        description="signs the dashboard's session cookies; the default is generated once and kept in "
        "`$SOCIALFER_DATA_DIR/secret_key` (set it when API processes run on several hosts)",
    )
    cors_origins: Annotated[tuple[str, ...], NoDecode] = Field(
        (), description="comma-separated origins allowed to call the API from a browser (default none: no CORS)"
    )
    write_rate_limit: str = Field(
        "120/minute;2000/hour", description="writes allowed per key (or per address without one), limits syntax"
    )
    rate_limit_storage_url: str | None = Field(
        None, description="where rate-limit counters live (default: the broker's Redis, else this process's memory)"
    )
    result_retention_days: int = Field(
        0, ge=0, description="days batches, images and faces are kept (0: keep); the sweeper deletes older ones"
    )
    previews: Literal["on", "blurred", "off"] = Field(
        "on", description="`on`: keep a preview of each image; `blurred`: with every detected face blurred; `off`: none"
    )
    allow_private_urls: bool = Field(
        False,
        description="`1` lets the worker fetch loopback/private/link-local addresses on any port "
        "(tests and demos only); it is the only way to reach them",
    )
    allowed_ports: Annotated[frozenset[int], NoDecode] = Field(
        frozenset({80, 443}), description="comma-separated ports the worker may connect to on public hosts"
    )
    ca_bundle: str | None = Field(
        None, description="CA certificates trusted for https fetches, a file (default certifi's)"
    )
    max_batch_urls: int = Field(1000, ge=1, description="URLs (or uploaded files) per batch")
    max_url_length: int = Field(2048, ge=1, description="characters per URL")
    max_image_bytes: int = Field(
        20 * 1024 * 1024,
        ge=1,
        description="download size cap, enforced while streaming; also the limit per uploaded file",
    )
    connect_timeout: float = Field(5.0, gt=0, description="seconds to connect, per request")
    read_timeout: float = Field(
        15.0, gt=0, description="seconds between bytes, per read; also cut to what is left of the attempt's deadline"
    )
    attempt_deadline: float = Field(
        40.0,
        gt=0,
        description="seconds for one attempt at an image, whatever the pool: name lookup, connect, status line, "
        "headers and body of every hop (redirects, a post page and its `og:image`), decoding and analysis; "
        "past it the attempt ends as `timeout` (retried) or, while decoding, `too_complex`",
    )
    max_queued_upload_bytes: int = Field(
        1024**3,
        ge=1,
        description="bytes that uploaded files waiting for a worker may occupy in the database (1 GiB); "
        "an upload past it is `507 upload_queue_full`",
    )
    max_redirects: int = Field(5, ge=0, description="redirects followed per download")
    page_size: int = Field(50, ge=1, description="items per page when a listing is not told (at most the maximum)")
    max_page_size: int = Field(500, ge=1, description="the largest page a listing serves")
    preview_max_side: int = Field(
        640, ge=1, description="pixels on the longer side of the JPEG preview kept of each analysed image"
    )
    preview_retention_days: int = Field(
        30, ge=0, description="days previews are kept (0: forever); the workers' sweeper deletes older ones"
    )
    max_attempts: int = Field(
        4, ge=1, description="attempts per image; transient failures (timeouts, 408/425/429/5xx) retry up to this"
    )
    retry_base_delay: float = Field(
        2.0, gt=0, description="seconds of backoff after the first attempt, doubled per attempt, with jitter"
    )
    retry_max_delay: float = Field(
        300.0, gt=0, description="the longest backoff, seconds (a server's Retry-After is honoured up to it)"
    )
    task_soft_time_limit: float = Field(
        240.0, gt=0, description="seconds an analysis task may run before it is interrupted"
    )
    task_time_limit: float = Field(300.0, gt=0, description="seconds after which a task's process is killed")
    processing_timeout: float = Field(
        600.0, gt=0, description="an image `processing` longer than this has lost its worker and is published again"
    )
    queued_timeout: float = Field(
        900.0,
        gt=0,
        description="a `queued` image older than this, while the broker's queue is empty, is published again",
    )
    sweep_interval: float = Field(60.0, gt=0, description="seconds between each worker's sweeps for lost images")
    worker_concurrency: int = Field(
        0, ge=0, description="pool processes per worker (0: one per CPU); `socialfer worker --concurrency` overrides"
    )
    tf_threads: int = Field(0, ge=0, description="TensorFlow threads per worker process (0: CPUs / pool processes)")
    min_face_px: int = Field(
        24, ge=12, description="the smallest face looked for, in original pixels, whatever the image's size"
    )
    max_scan_pixels: int = Field(
        8_000_000,
        ge=100_000,
        description="pixels the detector's fine pass scans per image at most; above it the image says which face "
        "size it looked down to",
    )
    max_faces: int = Field(256, ge=1, description="faces kept per image (the largest); the number beyond is recorded")
    low_resolution_px: int = Field(
        24,
        ge=1,
        description="faces whose shorter side is under this many pixels are flagged `low_resolution`: the shipped "
        "classifier is 5 points less accurate under 22.3 px with the bicubic crop (23.4 px with the bilinear one "
        "before it; `bench/resolution.py`)",
    )
    model_path: Path | None = Field(
        None, validation_alias="SOCIALFER_MODEL", description="expression model file (default the committed model)"
    )
    precision: Literal["auto", "float32", "mixed_bfloat16"] = Field(
        "auto",
        description="the classifier's compute precision in workers and `socialfer analyze`: `auto` times bfloat16 "
        "against float32 in each process on a CPU with bfloat16 units and keeps the faster, so two workers can "
        "differ in a probability's last digits (and, rarely, a face's label); `float32`, what the model card's "
        "figures were made with, gives the same answers in every process",
    )
    confusion_matrix: str = Field(
        "wild_calibration",
        description="the model card's confusion matrix that corrected shares are estimated with "
        "(an API request may name another with `matrix=`)",
    )
    min_images_for_share: int = Field(
        200,
        ge=1,
        description="below this many images with faces, a share is flagged as not reliable yet (the smallest set "
        "size whose intervals the simulation found within 93.5-96.5 % and unbiased: docs/statistics.md)",
    )
    fer2013: Path | None = Field(
        None, description="FER2013 NPZ for `train` and `evaluate` (default `../shared/data/fer2013.npz`)"
    )
    train_verbose: bool = Field(False, description="`1`: training prints Keras' per-epoch progress")
    prometheus_multiproc_dir: Path | None = Field(
        None,
        validation_alias="PROMETHEUS_MULTIPROC_DIR",
        description="where every process writes its metrics (prometheus_client's own variable); `serve` and "
        "`worker` make a fresh temporary one each when unset, which is right: set it only per process tree",
    )
    allow_open_api: bool = Field(
        False, description="`1` lets `socialfer serve` listen on a non-loopback address while no API key exists"
    )
    log_format: Literal["text", "json"] = Field(
        "text", description="`json`: workers write one JSON object per line, with image, batch and task ids and outcome"
    )
    worker_metrics_host: str = Field("127.0.0.1", description="where each worker serves its Prometheus metrics")
    worker_metrics_port: int = Field(9808, ge=0, le=65535, description="each worker's metrics port (0: none)")
    webhook_secret: str = Field(
        "", description="HMAC-SHA256 key that signs batch callbacks; `callback_url` is refused without it"
    )
    webhook_retry_base_delay: float = Field(
        30.0, gt=0, description="seconds before a failed callback is retried, doubled for each further attempt"
    )
    webhook_retry_max_delay: float = Field(
        1800.0, gt=0, le=3600, description="the longest wait between callback attempts (below Redis's 1 h visibility)"
    )
    webhook_give_up_after: float = Field(
        86400.0, gt=0, description="seconds after a batch ended when its undelivered callback becomes `failed`"
    )

    @field_validator("api_keys", "allowed_ports", "allowed_hosts", "cors_origins", mode="before")
    @classmethod
    def _split_lists(cls, value: Any) -> Any:
        return comma_separated(value)

    @field_validator("allowed_ports")
    @classmethod
    def _ports_in_range(cls, ports: frozenset[int]) -> frozenset[int]:
        wrong = sorted(port for port in ports if not 1 <= port <= 65535)
        if wrong:
            raise ValueError(f"ports must be 1 to 65535, got {wrong}")
        return ports

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        """Refuse combinations that would misbehave at run time, naming both variables."""
        if not self.database_url:
            object.__setattr__(self, "database_url", f"sqlite:///{self.data_dir / 'socialfer.db'}")
        problems = []
        if self.task_soft_time_limit >= self.task_time_limit:
            problems.append("SOCIALFER_TASK_SOFT_TIME_LIMIT must be below SOCIALFER_TASK_TIME_LIMIT")
        if self.processing_timeout <= self.task_time_limit:
            problems.append(
                "SOCIALFER_PROCESSING_TIMEOUT must exceed SOCIALFER_TASK_TIME_LIMIT, "
                "or the sweeper publishes again images that are still running"
            )
        if self.retry_base_delay > self.retry_max_delay:
            problems.append("SOCIALFER_RETRY_BASE_DELAY must not exceed SOCIALFER_RETRY_MAX_DELAY")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @property
    def embedded_broker(self) -> bool:
        return self.broker_url.startswith("filesystem://")

    @property
    def broker_dir(self) -> Path:
        return self.data_dir / "broker"

    def pool_processes(self) -> int:
        """The worker's pool size: the setting, or one process per CPU."""
        return self.worker_concurrency or os.cpu_count() or 1

    def threads_per_process(self) -> int:
        """TensorFlow threads for each pool process: the setting, or the CPUs shared among the pool."""
        return self.tf_threads or max(1, (os.cpu_count() or 1) // self.pool_processes())

    def with_changes(self, **changes: Any) -> Settings:
        """A copy with `changes`, validated like the environment's values (tests and the CLI's options)."""
        values = {name: getattr(self, name) for name in type(self).model_fields}
        return type(self)(**{**values, **changes})


def env_name(field_name: str) -> str:
    """The environment variable a field is read from."""
    alias = Settings.model_fields[field_name].validation_alias
    return alias if isinstance(alias, str) else ENV_PREFIX + field_name.upper()


def describe_error(error: ValidationError) -> str:
    """One line per problem, naming the environment variable rather than the field."""
    lines = []
    for problem in error.errors():
        location = [str(part) for part in problem.get("loc", ()) if part != "__root__"]
        message = problem["msg"].removeprefix("Value error, ")
        if location and location[0] in Settings.model_fields:
            message = f"{env_name(location[0])}: {message}"
        lines.append(message)
    return "invalid configuration: " + "; ".join(lines)


def load_settings(**overrides: Any) -> Settings:
    """The settings from the environment (and `overrides`), or SettingsError saying what is wrong."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise SettingsError(describe_error(exc)) from None


def shown_default(field_name: str) -> str:
    """A field's default as the README shows it."""
    field = Settings.model_fields[field_name]
    if field.default_factory is not None:
        return "see meaning"
    value = field.default
    if value in (None, "", ()):
        return "none"
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, frozenset):
        return ",".join(str(item) for item in sorted(value))
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def configuration_table() -> str:
    """The README's configuration table, made from the declaration (a test keeps the two equal)."""
    rows = ["| variable | default | meaning |", "| --- | --- | --- |"]
    for name, field in Settings.model_fields.items():
        rows.append(f"| `{env_name(name)}` | {shown_default(name)} | {field.description} |")
    return "\n".join(rows)
