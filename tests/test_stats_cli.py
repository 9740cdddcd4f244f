"""`socialfer stats`: the aggregates of GET /api/v1/stats, from the same query, as a table."""
# ruff: noqa: F811 - the API fixtures are imported from tests.test_api and named as parameters

from __future__ import annotations

import json
import re
from collections.abc import Callable

import pytest
from click.testing import CliRunner
from flask.testing import FlaskClient

from db import Database
from socialfer.cli import main
from tests.factories import StatsData
from tests.test_api import broker, client, make_client, seeded, settings  # noqa: F401 - fixtures


@pytest.fixture
def run(pg_database: Database, monkeypatch: pytest.MonkeyPatch) -> Callable[..., str]:
    """Runs `socialfer stats ARGS` on the (emptied) Postgres test database; returns its output."""
    monkeypatch.setenv("SOCIALFER_DATABASE_URL", pg_database.url)

    def invoke(*args: str) -> str:
        result = CliRunner().invoke(main, ["stats", *args])
        assert result.exit_code == 0, result.output
        return result.output

    return invoke


def parse_table(output: str) -> dict:
    """The printed table back into the API's shape (counts, and shares to the printed precision)."""
    lines = output.splitlines()
    headline = {
        name: int(lines[index].split()[-1].replace(",", ""))
        for index, name in enumerate(("images", "images_with_faces", "faces"))
    }
    columns = lines[4].split()[1:]
    table: dict = {column: {"emotions": {}} for column in columns}
    for line in lines[5:12]:
        emotion, *cells = line.split()
        for column, (count, share) in zip(columns, re.findall(r"([\d,]+) +([\d.]+) %", line), strict=True):
            table[column]["emotions"][emotion] = (int(count.replace(",", "")), float(share))
        assert len(cells) == 3 * len(columns)
    faces = lines[12].split()[1:]
    for column, count in zip(columns, faces, strict=True):
        table[column]["faces"] = int(count.replace(",", ""))
    return {"headline": headline, "columns": table}


def expected_table(api: dict) -> dict:
    columns = {"all": api, **api["by_platform"]}
    return {
        "headline": {key: api[key] for key in ("images", "images_with_faces", "faces")},
        "columns": {
            name: {
                "emotions": {e: (v["count"], round(v["share"] * 100, 1)) for e, v in summary["emotions"].items()},
                "faces": summary["faces"],
            }
            for name, summary in columns.items()
        },
    }


@pytest.mark.parametrize("args", [(), ("--platform", "facebook"), ("--batch", "{b}"), ("--since", "2025-03-01")])
def test_stats_prints_the_apis_numbers(run, client: FlaskClient, seeded: StatsData, args: tuple[str, ...]) -> None:
    args = tuple(arg.format(b=seeded.batch_b) for arg in args)
    query = "&".join(
        f"{args[i].removeprefix('--').replace('batch', 'batch_id')}={args[i + 1]}" for i in range(0, len(args), 2)
    )
    api = client.get(f"/api/v1/stats?{query}").get_json()

    assert parse_table(run(*args)) == expected_table(api)
    assert json.loads(run(*args, "--json")) == api


def test_stats_table_layout(run, seeded: StatsData) -> None:
    output = run()
    assert output.splitlines()[:3] == [
        "images analysed           4",
        "images with faces         3",
        "faces                     6",
    ]
    assert output.splitlines()[4].split() == ["emotion", "all", "facebook", "instagram", "twitter"]
    assert "happy            3  50.0 %        2  66.7 %        0   0.0 %        1  50.0 %" in output


def test_stats_on_an_empty_database(run) -> None:
    output = run()
    assert "faces                     0" in output and output.splitlines()[4].split() == ["emotion", "all"]


def test_stats_explains_a_missing_database(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOCIALFER_DATABASE_URL", f"sqlite:///{tmp_path / 'nothing.db'}")
    result = CliRunner().invoke(main, ["stats"])
    assert result.exit_code == 1 and "has `socialfer migrate` run?" in result.output
    assert CliRunner().invoke(main, ["stats", "--platform", "myspace"]).exit_code == 2
