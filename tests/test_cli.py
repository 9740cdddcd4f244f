"""The `socialfer` command line (commands that need no running server)."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner
from sqlalchemy import inspect

from db.session import make_engine
from socialfer.cli import main


def test_analyze_prints_faces_as_json(shared_data: Path) -> None:
    photo = shared_data / "social_examples" / "twitter" / "1.jpeg"
    result = CliRunner().invoke(main, ["analyze", "--json", str(photo)])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output.strip().splitlines()[-1])
    assert report["file"] == str(photo) and len(report["faces"]) == 2
    assert {"box", "confidence", "emotion", "scores"} <= set(report["faces"][0])


def test_analyze_reports_a_file_that_is_not_an_image(tmp_path: Path) -> None:
    bogus = tmp_path / "notes.jpg"
    bogus.write_text("not an image")
    result = CliRunner().invoke(main, ["analyze", str(bogus)])
    assert result.exit_code == 1
    assert "not_an_image" in result.output


def test_migrate_creates_the_schema(tmp_path: Path, monkeypatch) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    monkeypatch.setenv("SOCIALFER_DATABASE_URL", url)
    result = CliRunner().invoke(main, ["migrate"])
    assert result.exit_code == 0, result.output
    assert {"batches", "images", "faces", "alembic_version"} <= set(inspect(make_engine(url)).get_table_names())


def test_submit_needs_urls_and_a_reachable_api() -> None:
    runner = CliRunner()
    assert runner.invoke(main, ["submit"]).exit_code == 2
    result = runner.invoke(main, ["submit", "--api", "http://127.0.0.1:9", "http://example.com/a.jpg"])
    assert result.exit_code == 1 and "cannot reach the API" in result.output
