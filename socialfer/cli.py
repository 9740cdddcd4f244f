"""The `socialfer` command line."""

from __future__ import annotations

import json
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import click

from db.schema import PLATFORMS
from socialfer.settings import load_settings

DEFAULT_API = "http://127.0.0.1:8000"


fer2013_option = click.option(
    "--data",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="FER2013 NPZ (default: $SOCIALFER_FER2013 or ../shared/data/fer2013.npz).",
)


@click.group()
def main() -> None:
    """socialfer: facial-expression analysis of social-media images."""


@main.command()
@fer2013_option
@click.option(
    "--run-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("runs/emotion_cnn"),
    show_default=True,
    help="Checkpoints and logs; an existing run resumes.",
)
@click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Where the chosen model goes (default: models/weights/emotion_cnn.keras).",
)
@click.option("--epochs", type=int, default=120, show_default=True, help="Length of the cosine schedule.")
@click.option("--batch-size", type=int, default=64, show_default=True)
@click.option("--learning-rate", type=float, default=2e-3, show_default=True, help="Peak rate after warm-up.")
@click.option("--weight-decay", type=float, default=0.05, show_default=True)
@click.option(
    "--precision",
    type=click.Choice(["auto", "float32", "mixed_bfloat16"]),
    default="auto",
    show_default=True,
    help="auto: bfloat16 compute where the CPU has native bfloat16 units.",
)
@click.option("--seed", type=int, default=1337, show_default=True)
@click.option("--limit", type=int, default=None, help="Train on the first N images only (smoke runs).")
def train(
    data: Path | None,
    run_dir: Path,
    output: Path | None,
    epochs: int,
    batch_size: int,
    learning_rate: float,
    weight_decay: float,
    precision: str,
    seed: int,
    limit: int | None,
) -> None:
    """Train the expression model on FER2013 (selection on PublicTest, report on PrivateTest)."""
    from models.data import default_data_path
    from models.train import TrainConfig
    from models.train import train as run_training
    from models.weights import DEFAULT_MODEL_PATH

    cfg = TrainConfig(
        data=data or default_data_path(),
        run_dir=run_dir,
        output=output or DEFAULT_MODEL_PATH,
        epochs=epochs,
        batch_size=batch_size,
        learning_rate=learning_rate,
        weight_decay=weight_decay,
        precision=precision,
        seed=seed,
        limit=limit,
    )
    card = run_training(cfg)
    click.echo(json.dumps(card, indent=2))


@main.command()
@fer2013_option
@click.option(
    "--wild",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="The shared real-photo faces (default: ../shared/data/faces_in_the_wild/muxspace_dev.npz).",
)
@click.option(
    "--finetune-from",
    "base_model",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    required=True,
    help="The trained model to start from.",
)
@click.option("--run-dir", type=click.Path(file_okay=False, path_type=Path), required=True, help="Resumes if present.")
@click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="After training: choose, calibrate and write the model and its card here (models/ship.py).",
)
@click.option("--epochs", type=int, default=12, show_default=True)
@click.option("--steps-per-epoch", type=int, default=None, help="Default: one pass over both sets.")
@click.option("--learning-rate", type=float, default=4e-4, show_default=True)
@click.option("--mixing", type=click.Choice(["weight", "balanced"]), default="weight", show_default=True)
@click.option("--wild-weight", type=float, default=2.0, show_default=True, help="mixing=weight: a wild face's loss.")
@click.option("--wild-share", type=float, default=0.3, show_default=True, help="mixing=balanced: wild share per batch.")
@click.option("--seed", type=int, default=2026, show_default=True)
@click.option("--limit", type=int, default=None, help="Use the first N faces of each set only (smoke runs).")
def finetune(
    data: Path | None,
    wild: Path | None,
    base_model: Path,
    run_dir: Path,
    output: Path | None,
    epochs: int,
    steps_per_epoch: int | None,
    learning_rate: float,
    mixing: str,
    wild_weight: float,
    wild_share: float,
    seed: int,
    limit: int | None,
) -> None:
    """Fine-tune a trained model on FER2013 Training plus the real-photo training folds (snapshots per epoch)."""
    from models.data import default_data_path
    from models.finetune import FinetuneConfig
    from models.finetune import finetune as run_finetune
    from models.wild import DEFAULT_WILD_PATH

    cfg = FinetuneConfig(
        data=data or default_data_path(),
        wild=wild or DEFAULT_WILD_PATH,
        base_model=base_model,
        run_dir=run_dir,
        epochs=epochs,
        steps_per_epoch=steps_per_epoch,
        learning_rate=learning_rate,
        mixing=mixing,
        wild_weight=wild_weight,
        wild_share=wild_share,
        seed=seed,
        limit=limit,
    )
    state = run_finetune(cfg)
    if output is None:
        click.echo(json.dumps(state))
        return
    from models.ship import ship_finetuned

    card = ship_finetuned(cfg, output)
    click.echo(json.dumps({key: card[key] for key in ("selection", "calibration", "abstention")}, indent=2))


@main.command()
def migrate() -> None:
    """Create or upgrade the database schema (Alembic)."""
    from db.migrate import upgrade

    settings = load_settings()
    upgrade(settings.database_url)
    click.echo(f"database is at the latest schema: {redact(settings.database_url)}")


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--workers", "http_workers", default=1, show_default=True, help="gunicorn worker processes.")
@click.option(
    "--with-worker/--no-worker", default=None, help="Also run a Celery worker (default: only on the embedded broker)."
)
def serve(host: str, port: int, http_workers: int, with_worker: bool | None) -> None:
    """Run the API (gunicorn); on the embedded default also a worker, so nothing else is needed."""
    from db.migrate import upgrade
    from socialfer.server import GunicornServer, start_worker_process

    settings = load_settings()
    if settings.database_url.startswith("sqlite"):
        upgrade(settings.database_url)  # the embedded default sets itself up
    if with_worker if with_worker is not None else settings.embedded_broker:
        start_worker_process()
    click.echo(
        f"socialfer is serving on http://{host}:{port}/ (data: {redact(settings.database_url)}, "
        f"broker: {redact(settings.broker_url)})"
    )
    GunicornServer(
        "api:create_app()",
        {
            "bind": f"{host}:{port}",
            "workers": http_workers,
            "threads": 4,
            "accesslog": "-",
            "loglevel": "warning",
        },
    ).run()


@main.command()
@click.option(
    "--concurrency",
    "-c",
    default=None,
    type=click.IntRange(min=1),
    help="Pool processes (default: one per CPU; 2 on 2 cores ran 1.9x the images/s of 1, see BENCHMARKS.md).",
)
@click.option("--loglevel", default="INFO", show_default=True)
def worker(concurrency: int | None, loglevel: str) -> None:
    """Run a Celery worker that analyses queued images."""
    from workers.celery_app import QUEUE, make_celery

    concurrency = concurrency or os.cpu_count() or 1
    settings = load_settings()
    app = make_celery(settings)
    app.conf.worker_concurrency = concurrency  # also sizes each process's TensorFlow threads (workers.tasks)
    app.set_current()
    app.set_default()
    pool = "solo" if concurrency == 1 else "prefork"
    if pool == "solo":  # tasks run in this very process: load the models before the first one arrives
        from workers.tasks import worker_context

        worker_context(app).analyzer  # noqa: B018
    app.worker_main(
        [
            "worker",
            f"--loglevel={loglevel}",
            f"--concurrency={concurrency}",
            f"--pool={pool}",
            "-Q",
            QUEUE,
            "--without-gossip",
            "--without-mingle",
        ]
    )


@main.command()
@click.argument("urls", nargs=-1)
@click.option("--file", "url_file", type=click.File("r"), help="A file with one URL per line ('-' for stdin).")
@click.option("--platform", type=click.Choice(["facebook", "instagram", "twitter", "other"]), default=None)
@click.option("--name", default=None, help="A name for the batch.")
@click.option("--wait", is_flag=True, help="Show progress until every image is done or failed.")
@click.option("--api", "api_url", envvar="SOCIALFER_API_URL", default=DEFAULT_API, show_default=True)
@click.option("--api-key", envvar="SOCIALFER_API_KEY", default=None, help="Bearer key ($SOCIALFER_API_KEY).")
def submit(
    urls: tuple[str, ...],
    url_file,
    platform: str | None,
    name: str | None,
    wait: bool,
    api_url: str,
    api_key: str | None,
) -> None:
    """Submit image URLs as one batch; prints the batch id."""
    import requests

    all_urls = list(urls) + ([line.strip() for line in url_file if line.strip()] if url_file else [])
    if not all_urls:
        raise click.UsageError("give at least one URL (arguments or --file)")
    body: dict = {"urls": all_urls}
    if platform:
        body["platform"] = platform
    if name:
        body["name"] = name
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    try:
        response = requests.post(f"{api_url}/api/v1/batches", json=body, headers=headers, timeout=60)
    except requests.ConnectionError as exc:
        raise click.ClickException(f"cannot reach the API at {api_url} (is `socialfer serve` running?)") from exc
    if response.status_code != 202:
        raise click.ClickException(f"{response.status_code}: {error_message(response)}")
    batch = response.json()
    click.echo(batch["id"])
    if wait:
        batch = wait_for_batch(requests, api_url, batch)
        click.echo(
            f"batch {batch['id']}: {batch['done']} done, {batch['failed']} failed, {batch['faces']} faces", err=True
        )


def wait_for_batch(requests, api_url: str, batch: dict) -> dict:
    """Poll the batch and show a progress bar on stderr until every image is terminal."""
    with click.progressbar(length=batch["total"], label=f"batch {batch['id']}", file=sys.stderr, show_pos=True) as bar:
        finished = 0
        while True:
            batch = requests.get(f"{api_url}/api/v1/batches/{batch['id']}", timeout=30).json()
            now = batch["done"] + batch["failed"]
            bar.update(now - finished)
            finished = now
            if batch["status"] == "done":
                return batch
            time.sleep(1.0)


def error_message(response) -> str:
    try:
        return response.json()["error"]["message"]
    except (ValueError, KeyError, TypeError):
        return response.text[:200]


@main.command()
@click.argument("image_files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="One JSON object per file.")
def analyze(image_files: tuple[str, ...], as_json: bool) -> None:
    """Analyse local image files directly (no queue) and print faces and emotions."""
    from pathlib import Path

    from models import FaceAnalyzer
    from workers.imaging import DecodeError, decode_image

    analyzer = FaceAnalyzer()
    failed = False
    for path in image_files:
        try:
            faces = [face.to_dict() for face in analyzer.analyze(decode_image(Path(path).read_bytes()))]
        except DecodeError as exc:
            failed = True
            report = {"file": path, "error": {"code": exc.code, "message": exc.message}}
            click.echo(json.dumps(report) if as_json else f"{path}: {exc.code}: {exc.message}", err=not as_json)
            continue
        if as_json:
            click.echo(json.dumps({"file": path, "faces": faces}))
            continue
        click.echo(f"{path}: {len(faces)} face(s)")
        for i, face in enumerate(faces, 1):
            top = sorted(face["scores"].items(), key=lambda kv: -kv[1])[:3]
            click.echo(
                f"  {i}. box {face['box']} confidence {face['confidence']:.3f} -> {face['emotion']} "
                f"({', '.join(f'{k} {v:.2f}' for k, v in top)})"
            )
    if failed:
        sys.exit(1)


def redact(url: str) -> str:
    """A URL safe to print: no password."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.password:
        return url.replace(f":{parts.password}@", ":***@")
    return url


@main.command()
@fer2013_option
@click.option(
    "--split", type=click.Choice(["PrivateTest", "PublicTest", "Training"]), default="PrivateTest", show_default=True
)
@click.option(
    "--model",
    "model_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Model file (default: the committed model).",
)
@click.option(
    "--confusion-png",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Where to save the confusion matrix (default: confusion-<split>.png).",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def evaluate(data: Path | None, split: str, model_path: Path | None, confusion_png: Path | None, as_json: bool) -> None:
    """Score the expression model on a FER2013 split, exactly as the product classifies."""
    import numpy as np

    from models.data import default_data_path
    from models.evaluate import confusion_png as save_confusion
    from models.evaluate import evaluate_model

    result = evaluate_model(model_path, data or default_data_path(), split)
    png = confusion_png or Path(f"confusion-{split}.png")
    save_confusion(np.array(result["confusion_matrix"]), png, f"{split}: accuracy {result['accuracy']:.4f}")
    result["confusion_png"] = str(png)
    if as_json:
        click.echo(json.dumps(result))
        return
    click.echo(f"{split}: {result['n']} faces")
    click.echo(
        f"  accuracy                 {result['accuracy']:.4f} ({result['precision']}, flip averaging "
        f"{'on' if result['flip_tta'] else 'off'}; with it {result['accuracy_flip_tta']:.4f}, "
        f"without {result['accuracy_no_tta']:.4f})"
    )
    click.echo(f"  accuracy without disgust {result['accuracy_without_disgust']:.4f}")
    click.echo(f"  macro-F1                 {result['macro_f1']:.4f}")
    click.echo("  class      precision recall support")
    for name, row in result["per_class"].items():
        click.echo(f"  {name:<10} {row['precision']:9.3f} {row['recall']:6.3f} {row['support']:7d}")
    click.echo(f"  confusion matrix: {png}")


@main.command("stats")
@click.option("--platform", type=click.Choice(PLATFORMS), default=None, help="Only this platform.")
@click.option("--batch", "batch_id", type=click.IntRange(min=1), default=None, help="Only this batch.")
@click.option("--since", type=click.DateTime(), default=None, help="Analysed at or after this time (UTC).")
@click.option("--until", type=click.DateTime(), default=None, help="Analysed before this time (UTC).")
@click.option("--json", "as_json", is_flag=True, help="Print what GET /api/v1/stats answers.")
def stats_command(
    platform: str | None, batch_id: int | None, since: datetime | None, until: datetime | None, as_json: bool
) -> None:
    """Counts and emotion shares, overall and per platform: the numbers of GET /api/v1/stats and the
    dashboard, from the same query, read straight from the database."""
    from sqlalchemy.exc import SQLAlchemyError

    from db import Database
    from db.queries import stats

    settings = load_settings()
    database = Database(settings.database_url)
    window = {"since": since, "until": until}
    filters = {key: value.replace(tzinfo=UTC) if value else None for key, value in window.items()}
    try:
        with database.session() as session:
            result = stats(session, platform=platform, batch_id=batch_id, **filters)
    except SQLAlchemyError as exc:
        raise click.ClickException(
            f"cannot read {redact(settings.database_url)} ({exc.__class__.__name__}): "
            "is SOCIALFER_DATABASE_URL right, and has `socialfer migrate` run?"
        ) from exc
    finally:
        database.dispose()
    click.echo(json.dumps(result) if as_json else stats_table(result))


def stats_table(result: dict) -> str:
    """Headline counts, then one row per emotion: count and share overall and for each platform."""
    lines = [
        f"images analysed    {result['images']:>8,}",
        f"images with faces  {result['images_with_faces']:>8,}",
        f"faces              {result['faces']:>8,}",
        "",
    ]
    columns = {"all": result, **result["by_platform"]}
    lines.append("emotion  " + "".join(f"{name:>17}" for name in columns))
    for emotion in next(iter(columns.values()))["emotions"]:
        cells = (summary["emotions"][emotion] for summary in columns.values())
        lines.append(f"{emotion:<9}" + "".join(f"{cell['count']:>9,} {cell['share'] * 100:5.1f} %" for cell in cells))
    lines.append("faces    " + "".join(f"{summary['faces']:>9,}        " for summary in columns.values()).rstrip())
    return "\n".join(lines)
