"""The `socialfer` command line."""

from __future__ import annotations

import json
import sys
import time
from datetime import datetime
from pathlib import Path

import click

from core.filters import Filters
from core.settings import Settings, SettingsError, load_settings
from core.vocabulary import PLATFORMS, SCOPES

DEFAULT_API = "http://127.0.0.1:8000"


fer2013_option = click.option(
    "--data",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="FER2013 NPZ (default: $SOCIALFER_FER2013 or ../shared/data/fer2013.npz).",
)


wild_option = click.option(
    "--wild",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="The shared real-photo faces (default: ../shared/data/faces_in_the_wild/muxspace_dev.npz).",
)


def model_file_option(help_text: str):
    """`--model PATH` (an existing model file) into `model_path`."""
    return click.option(
        "--model",
        "model_path",
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
        default=None,
        help=help_text,
    )


def fraction_option(flag: str, default: float, help_text: str):
    """An option taking a number from 0 to 1."""
    return click.option(flag, type=click.FloatRange(0.0, 1.0), default=default, show_default=True, help=help_text)


def cli_settings() -> Settings:
    """The settings from the environment; a bad value ends the command with what is wrong, not a traceback."""
    try:
        return load_settings()
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None


def fer2013_path(settings: Settings) -> Path:
    """`SOCIALFER_FER2013`, else the shared copy beside the project."""
    from models.data import default_data_path

    return settings.fer2013 or default_data_path()


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
    from models.train import TrainConfig
    from models.train import train as run_training
    from models.weights import DEFAULT_MODEL_PATH

    settings = cli_settings()
    cfg = TrainConfig(
        data=data or fer2013_path(settings),
        run_dir=run_dir,
        output=output or DEFAULT_MODEL_PATH,
        epochs=epochs,
        batch_size=batch_size,
        learning_rate=learning_rate,
        weight_decay=weight_decay,
        precision=precision,
        seed=seed,
        limit=limit,
        verbose=settings.train_verbose,
    )
    card = run_training(cfg)
    click.echo(json.dumps(card, indent=2))


@main.command()
@fer2013_option
@wild_option
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
@fraction_option(
    "--wild-class-balance",
    0.0,
    "mixing=balanced: draw wild class c in proportion to n_c^(1 - this); 0 as the set has them, 1 equally.",
)
@fraction_option(
    "--degrade-probability", 0.5, "Chance a face is shrunk (16-48 px) and scaled back; blur and JPEG each half that."
)
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
    wild_class_balance: float,
    degrade_probability: float,
    seed: int,
    limit: int | None,
) -> None:
    """Fine-tune a trained model on FER2013 Training plus the real-photo training folds (snapshots per epoch)."""
    from models.finetune import FinetuneConfig
    from models.finetune import finetune as run_finetune
    from models.wild import DEFAULT_WILD_PATH

    cfg = FinetuneConfig(
        data=data or fer2013_path(cli_settings()),
        wild=wild or DEFAULT_WILD_PATH,
        base_model=base_model,
        run_dir=run_dir,
        epochs=epochs,
        steps_per_epoch=steps_per_epoch,
        learning_rate=learning_rate,
        mixing=mixing,
        wild_weight=wild_weight,
        wild_share=wild_share,
        wild_class_balance=wild_class_balance,
        degrade_probability=degrade_probability,
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
@fer2013_option
@wild_option
@click.argument("members", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="Where the ensemble and its card are written.",
)
def ensemble(data: Path | None, wild: Path | None, members: tuple[Path, ...], output: Path) -> None:
    """Average trained nets (MEMBERS: .keras files) into one model; choose members and flip mode, calibrate, write.

    Every subset of the members is tried, within the speed floor (models/ensemble.py), and
    chosen by the selection score on PublicTest and the wild calibration fold (models/ship.py).
    """
    from models.ship import ship_ensemble
    from models.wild import DEFAULT_WILD_PATH

    card = ship_ensemble(list(members), output, data or fer2013_path(cli_settings()), wild or DEFAULT_WILD_PATH)
    click.echo(json.dumps({key: card[key] for key in ("selection", "inference")}, indent=2))


@main.command()
@fer2013_option
@wild_option
@model_file_option("Model file whose card is rewritten (default: the configured model).")
def calibrate(data: Path | None, wild: Path | None, model_path: Path | None) -> None:
    """Fit a shipped model's calibration profiles again and rewrite its card's figures (weights untouched).

    Fits each profile on its choosing set (photos: the real-photo calibration fold; fer2013:
    PublicTest), then scores all four sets and writes the confusion matrices (models/ship.py).
    """
    from models.ship import recalibrate
    from models.weights import DEFAULT_MODEL_PATH
    from models.wild import DEFAULT_WILD_PATH

    settings = cli_settings()
    model = model_path or settings.model_path or DEFAULT_MODEL_PATH
    card = recalibrate(model, data or fer2013_path(settings), wild or DEFAULT_WILD_PATH)
    for name, profile in card["calibration"]["profiles"].items():
        click.echo(
            f"{name}: T={profile['temperature']:.3f}, abstain below {profile['abstain_below']:.3f} "
            f"(fitted on {profile['fitted_on']})"
        )
    for name, figures in card["sets"].items():
        click.echo(
            f"  {name:<20} ({figures['profile']}): accuracy {figures['accuracy']:.4f}, "
            f"ECE {figures['ece_before']:.3f} -> {figures['ece_after']:.3f}, "
            f"kept {figures['kept']['coverage']:.1%} at {figures['kept']['accuracy']:.1%} right"
        )


@main.command()
def migrate() -> None:
    """Create or upgrade the database schema (Alembic)."""
    from db.migrate import upgrade

    settings = cli_settings()
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
    from core.prometheus import mark_process_dead, prepare_multiprocess_dir
    from db.migrate import upgrade
    from socialfer.exposure import open_api_refusal, stored_key_count
    from socialfer.server import GunicornServer, gunicorn_options, served_hosts, start_worker_process

    settings = cli_settings()
    if settings.database_url.startswith("sqlite"):
        upgrade(settings.database_url)  # the embedded default sets itself up
    refusal = open_api_refusal(host, settings, stored_key_count(settings))
    if refusal:
        raise click.ClickException(refusal)
    if with_worker if with_worker is not None else settings.embedded_broker:
        start_worker_process()
    metrics_dir = prepare_multiprocess_dir("api", settings.prometheus_multiproc_dir)  # the worker keeps its own
    click.echo(
        f"socialfer is serving on http://{host}:{port}/ (data: {redact(settings.database_url)}, "
        f"broker: {redact(settings.broker_url)})"
    )
    settings = settings.with_changes(allowed_hosts=served_hosts(settings, host), prometheus_multiproc_dir=metrics_dir)
    options = gunicorn_options(f"{host}:{port}", http_workers)
    options["child_exit"] = lambda _server, gunicorn_worker: mark_process_dead(gunicorn_worker.pid, metrics_dir)
    GunicornServer("api:create_app()", options, settings).run()


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
    from celery.signals import setup_logging

    from core.prometheus import prepare_multiprocess_dir

    settings = cli_settings()
    # before prometheus_client is imported (workers.tasks)
    metrics_dir = prepare_multiprocess_dir("worker", settings.prometheus_multiproc_dir)
    settings = settings.with_changes(prometheus_multiproc_dir=metrics_dir)
    from workers.celery_app import QUEUE, make_celery
    from workers.logs import configure_logging, wrap_native_output

    if concurrency:
        settings = settings.with_changes(worker_concurrency=concurrency)
    concurrency = settings.pool_processes()  # also sizes each process's TensorFlow threads
    if settings.log_format == "json":
        wrap_native_output()
    configure_logging(settings.log_format, loglevel.upper())
    setup_logging.connect(lambda **_: None, weak=False)  # a receiver: Celery leaves logging as configured
    app = make_celery(settings)
    app.set_current()
    app.set_default()
    pool = "solo" if concurrency == 1 else "prefork"
    if pool == "solo":  # tasks run in this very process: load the models before the first one arrives
        from workers.tasks import worker_context

        worker_context(app).analyzer  # noqa: B018
    app.worker_main(
        [
            *(["--quiet"] if settings.log_format == "json" else []),  # no banner: every line is JSON
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
        batch = wait_for_batch(requests, api_url, batch, headers)
        click.echo(
            f"batch {batch['id']}: {batch['done']} done, {batch['failed']} failed, {batch['faces']} faces", err=True
        )
        if batch["failed"]:
            for code, (count, example) in failure_reasons(requests, api_url, batch["id"], headers).items():
                click.echo(f"  {count} failed with {code}: {example}", err=True)
            sys.exit(1)


def wait_for_batch(requests, api_url: str, batch: dict, headers: dict[str, str]) -> dict:
    """Poll the batch and show a progress bar on stderr until every image is terminal."""
    with click.progressbar(length=batch["total"], label=f"batch {batch['id']}", file=sys.stderr, show_pos=True) as bar:
        finished = 0
        while True:
            batch = requests.get(f"{api_url}/api/v1/batches/{batch['id']}", headers=headers, timeout=30).json()
            now = batch["done"] + batch["failed"]
            bar.update(now - finished)
            finished = now
            if batch["status"] == "done":
                return batch
            time.sleep(1.0)


def failure_reasons(requests, api_url: str, batch_id: int, headers: dict[str, str]) -> dict[str, tuple[int, str]]:
    """Per failure code: how many of the batch's images failed with it, and one example message."""
    reasons: dict[str, tuple[int, str]] = {}
    page, pages = 1, 1
    while page <= pages:
        body = requests.get(
            f"{api_url}/api/v1/batches/{batch_id}/images",
            params={"status": "failed", "page": page, "per_page": 500},
            headers=headers,
            timeout=30,
        ).json()
        for image in body["items"]:
            error = image.get("error") or {"code": "unknown", "message": ""}
            count, example = reasons.get(error["code"], (0, f"{image['url']}: {error['message']}"))
            reasons[error["code"]] = (count + 1, example)
        page, pages = page + 1, body["pages"]
    return dict(sorted(reasons.items(), key=lambda item: -item[1][0]))


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

    from models import EmotionClassifier, FaceAnalyzer
    from workers.imaging import DecodeError, decode_image

    settings = cli_settings()
    analyzer = FaceAnalyzer(classifier=EmotionClassifier(settings.model_path, precision=settings.precision))
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
@model_file_option("Model file (default: the committed model).")
@click.option(
    "--confusion-png",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Where to save the confusion matrix (default: confusion-<split>.png).",
)
@click.option(
    "--profile",
    default=None,
    help="Calibration profile of the model card (default: fer2013 where the card has it; photos: the product's).",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def evaluate(
    data: Path | None,
    split: str,
    model_path: Path | None,
    confusion_png: Path | None,
    profile: str | None,
    as_json: bool,
) -> None:
    """Score the expression model on a FER2013 split, exactly as the product classifies."""
    import numpy as np

    from models.evaluate import confusion_png as save_confusion
    from models.evaluate import evaluate_model

    settings = cli_settings()
    try:
        result = evaluate_model(model_path or settings.model_path, data or fer2013_path(settings), split, profile)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    png = confusion_png or Path(f"confusion-{split}.png")
    save_confusion(np.array(result["confusion_matrix"]), png, f"{split}: accuracy {result['accuracy']:.4f}")
    result["confusion_png"] = str(png)
    if as_json:
        click.echo(json.dumps(result))
        return
    click.echo(f"{split}: {result['n']} faces, calibration profile {result['profile'] or '(none)'}")
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
@click.option("--min-face-px", type=click.IntRange(min=1), default=None, help="Only faces at least this large.")
@click.option(
    "--uncertain", type=click.Choice(["include", "exclude", "only"]), default="include", help="Uncertain faces."
)
@click.option(
    "--matrix", default=None, help="The model card's confusion matrix to correct with (default: the setting)."
)
@click.option("--json", "as_json", is_flag=True, help="Print what GET /api/v1/stats answers.")
def stats_command(
    platform: str | None,
    batch_id: int | None,
    since: datetime | None,
    until: datetime | None,
    min_face_px: int | None,
    uncertain: str,
    matrix: str | None,
    as_json: bool,
) -> None:
    """Counts and emotion shares with 95 % intervals, raw and corrected, overall and per platform: the
    numbers of GET /api/v1/stats and the dashboard, from the same query, read straight from the database."""
    from sqlalchemy.exc import SQLAlchemyError

    from analysis.card import CardError, confusion
    from analysis.report import with_intervals
    from db import Database
    from db.queries import stats

    settings = cli_settings()
    try:
        correction, note = confusion(settings.model_path, matrix or settings.confusion_matrix), None
    except CardError as exc:
        if matrix:
            raise click.BadParameter(str(exc), param_hint="--matrix") from None
        correction, note = None, f"corrected shares unavailable: {exc}"
    database = Database(settings.database_url)
    filters = Filters(  # naive times are UTC
        platform=platform, batch_id=batch_id, since=since, until=until, min_face_px=min_face_px, uncertain=uncertain
    )
    try:
        with database.session() as session:
            result = stats(session, filters, with_pairs=True)
    except SQLAlchemyError as exc:
        raise click.ClickException(
            f"cannot read {redact(settings.database_url)} ({exc.__class__.__name__}): "
            "is SOCIALFER_DATABASE_URL right, and has `socialfer migrate` run?"
        ) from exc
    finally:
        database.dispose()
    result = with_intervals(result, correction, settings.min_images_for_share, note)
    click.echo(json.dumps(result) if as_json else stats_table(result))


CELL = 27  # characters per column of the stats table


def percent_range(interval: list[float]) -> str:
    return f"{interval[0] * 100:4.1f}-{interval[1] * 100:5.1f}"


def stats_table(result: dict) -> str:
    """Headline counts; per emotion count, share and 95 % interval, overall and per platform; then the
    shares corrected for the classifier's errors, with theirs. A column marked * is not reliable yet."""
    lines = [
        f"images analysed    {result['images']:>8,}",
        f"images with faces  {result['images_with_faces']:>8,}",
        f"faces              {result['faces']:>8,}",
        "",
    ]
    columns = {"all": result, **result["by_platform"]}
    header = "".join(f"{name + ('' if block['reliable'] else '*'):>{CELL}}" for name, block in columns.items())
    lines.append("emotion  " + header)
    for emotion in result["emotions"]:
        cells = (block["emotions"][emotion] for block in columns.values())
        lines.append(
            f"{emotion:<9}"
            + "".join(
                f"{cell['count']:>9,} {cell['share'] * 100:5.1f} % {percent_range(cell['interval']):>10}"
                for cell in cells
            )
        )
    lines.append(
        "faces    " + "".join(f"{block['faces']:>9,}" + " " * (CELL - 9) for block in columns.values()).rstrip()
    )
    statistics = result["statistics"]
    if statistics["corrected"] is not None:
        lines += [
            "",
            f"corrected for the classifier's errors ({statistics['corrected']['matrix']}): estimated true shares",
        ]
        for emotion in result["emotions"]:
            cells = (block["emotions"][emotion]["corrected"] for block in columns.values())
            lines.append(
                f"{emotion:<9}"
                + "".join(
                    " " * (CELL - 19) + "-" * 19
                    if cell is None
                    else f"{cell['share'] * 100:>{CELL - 13}.1f} % {percent_range(cell['interval']):>10}"
                    for cell in cells
                )
            )
        if statistics["corrected"]["thin_rows"]:
            faces = statistics["corrected"]["calibration_faces"]
            thin = ", ".join(f"{name} {faces[name]:g}" for name in statistics["corrected"]["thin_rows"])
            lines.append(f"leaning on FER2013's confusions for want of labelled faces (faces of its own: {thin})")
        if statistics["corrected"]["warning"]:
            lines.append(f"warning: {statistics['corrected']['warning']}")
    elif statistics.get("note"):
        lines += ["", statistics["note"]]
    lines += ["", "95 % intervals (images as clusters); corrected: see docs/statistics.md"]
    if not all(block["reliable"] for block in columns.values()):
        lines.append(f"* fewer than {statistics['min_images']} images with faces: not reliable yet, read the intervals")
    return "\n".join(lines)


def cli_database():
    from db import Database

    return Database(cli_settings().database_url)


@main.group()
def keys() -> None:
    """API keys: create (shown once), list, revoke. Stored hashed in the database."""


@keys.command("create")
@click.option("--scope", type=click.Choice(SCOPES), required=True, help="read < write < admin")
@click.option("--name", required=True, help="Who or what the key is for (shown in lists and the audit log).")
def keys_create(scope: str, name: str) -> None:
    """Make a key; it is printed once and cannot be shown again."""
    from db.access import create_key

    row, key = create_key(cli_database(), name, scope)
    click.echo(key)
    click.echo(f"key {row.id} {name!r} ({scope}) created; this is the only time it is shown", err=True)


@keys.command("list")
def keys_list() -> None:
    """Every key: id, name, scope, prefix, created, last used, revoked."""
    from db.access import list_keys

    for row in list_keys(cli_database()):
        state = f"revoked {row.revoked_at:%Y-%m-%d %H:%M}" if row.revoked_at else "live"
        used = f"{row.last_used_at:%Y-%m-%d %H:%M}" if row.last_used_at else "never"
        click.echo(
            f"{row.id:>4}  {row.name:<24} {row.scope:<6} {row.prefix}…  created {row.created_at:%Y-%m-%d} "
            f"used {used}  {state}"
        )


@keys.command("revoke")
@click.argument("key_id", type=click.IntRange(min=1))
def keys_revoke(key_id: int) -> None:
    """Revoke a key: it and every session signed in with it stop working at once."""
    from db.access import revoke_key

    if not revoke_key(cli_database(), key_id, "command line"):
        raise click.ClickException(f"no live key {key_id}")
    click.echo(f"key {key_id} revoked")


@main.command()
@click.option("--batch", "batch_id", type=click.IntRange(min=1), default=None, help="Erase this batch.")
@click.option("--before", type=click.DateTime(), default=None, help="Erase every batch created before this time (UTC).")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def delete(batch_id: int | None, before: datetime | None, yes: bool) -> None:
    """Erase batches with their images, faces, previews and uploads; the stats follow at once."""
    from core.filters import to_utc
    from db.access import audit
    from db.lifecycle import delete_batch, delete_before

    if (batch_id is None) == (before is None):
        raise click.UsageError("give exactly one of --batch and --before")
    what = f"batch {batch_id}" if batch_id else f"every batch created before {to_utc(before).isoformat()}"
    if not yes:
        click.confirm(f"Erase {what}, with its images and faces, for good?", abort=True)
    database = cli_database()
    if batch_id is not None:
        images = delete_batch(database, batch_id)
        if images is None:
            raise click.ClickException(f"batch {batch_id} not found")
        batches = 1
    else:
        batches, images = delete_before(database, to_utc(before))
    audit(database, "command line", "delete_batch" if batch_id else "delete_before", what, images)
    click.echo(f"erased {batches} batch(es), {images} image(s)")
