"""The `socialfer` command line."""

from __future__ import annotations

from pathlib import Path

import click


@click.group()
def main() -> None:
    """socialfer: facial-expression analysis of social-media images."""


@main.command()
@click.option("--data", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="FER2013 NPZ (default: $SOCIALFER_FER2013 or ../shared/data/fer2013.npz).")
@click.option("--run-dir", type=click.Path(file_okay=False, path_type=Path), default=Path("runs/emotion_cnn"),
              show_default=True, help="Checkpoints and logs; an existing run resumes.")
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Where the chosen model goes (default: models/weights/emotion_cnn.keras).")
@click.option("--epochs", type=int, default=20, show_default=True)
@click.option("--batch-size", type=int, default=64, show_default=True)
@click.option("--learning-rate", type=float, default=1e-3, show_default=True)
@click.option("--seed", type=int, default=1337, show_default=True)
@click.option("--limit", type=int, default=None, help="Train on the first N images only (smoke runs).")
def train(data: Path | None, run_dir: Path, output: Path | None, epochs: int, batch_size: int,
          learning_rate: float, seed: int, limit: int | None) -> None:
    """Train the expression model on FER2013 (selection on PublicTest, report on PrivateTest)."""
    import json

    from models.data import default_data_path
    from models.train import TrainConfig
    from models.train import train as run_training
    from models.weights import DEFAULT_MODEL_PATH

    cfg = TrainConfig(data=data or default_data_path(), run_dir=run_dir, output=output or DEFAULT_MODEL_PATH,
                      epochs=epochs, batch_size=batch_size, learning_rate=learning_rate, seed=seed, limit=limit)
    card = run_training(cfg)
    click.echo(json.dumps(card, indent=2))
