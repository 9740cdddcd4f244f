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


RAW_CELL = re.compile(r"([\d,]+) +([\d.]+) % +([\d.]+)- *([\d.]+)")
CORRECTED_CELL = re.compile(r"([\d.]+) % +([\d.]+)- *([\d.]+)|-{19}")


def percents(*values: str) -> tuple[float, ...]:
    return tuple(float(value) for value in values)


def parse_table(output: str) -> dict:
    """The printed table back into the API's shape (counts; shares and bounds in percent, as printed)."""
    lines = output.splitlines()
    headline = {
        name: int(lines[index].split()[-1].replace(",", ""))
        for index, name in enumerate(("images", "images_with_faces", "faces"))
    }
    columns = lines[4].split()[1:]
    table: dict = {column: {"emotions": {}, "corrected": {}} for column in columns}
    for line in lines[5:12]:
        emotion = line.split()[0]
        cells = RAW_CELL.findall(line)
        assert len(cells) == len(columns), line
        for column, (count, *shares) in zip(columns, cells, strict=True):
            table[column]["emotions"][emotion] = (int(count.replace(",", "")), *percents(*shares))
    for column, count in zip(columns, lines[12].split()[1:], strict=True):
        table[column]["faces"] = int(count.replace(",", ""))
    if lines[14].startswith("corrected"):
        for line in lines[15:22]:
            emotion = line.split()[0]
            cells = CORRECTED_CELL.findall(line[9:])
            for column, cell in zip(columns, cells, strict=True):
                table[column]["corrected"][emotion] = percents(*cell) if cell[0] else None
    return {"headline": headline, "columns": table}


def in_percent(*values: float) -> tuple[float, ...]:
    return tuple(round(value * 100, 1) for value in values)


def expected_table(api: dict) -> dict:
    columns = {"all": api, **api["by_platform"]}
    return {
        "headline": {key: api[key] for key in ("images", "images_with_faces", "faces")},
        "columns": {
            name + ("" if summary["reliable"] else "*"): {
                "emotions": {
                    e: (v["count"], *in_percent(v["share"], *v["interval"])) for e, v in summary["emotions"].items()
                },
                "corrected": {
                    e: None
                    if v["corrected"] is None
                    else in_percent(v["corrected"]["share"], *v["corrected"]["interval"])
                    for e, v in summary["emotions"].items()
                },
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
    assert output.splitlines()[4].split() == ["emotion", "all*", "facebook*", "instagram*", "twitter*"]
    assert re.search(r"^happy +3  50\.0 % +\d+\.\d- *\d+\.\d +2  66\.7 % ", output, re.MULTILINE)
    assert "corrected for the classifier's errors (wild_calibration)" in output
    assert "* fewer than 200 images with faces: not reliable yet" in output


def test_stats_matrix_option(run, seeded: StatsData) -> None:
    fer = run("--matrix", "fer2013_publictest")
    assert "(fer2013_publictest)" in fer and "warning: this matrix was measured on FER2013's 48x48 crops" in fer
    assert "warning:" not in run()
    result = CliRunner().invoke(main, ["stats", "--matrix", "imagenet"])
    assert result.exit_code == 2 and "no confusion matrix 'imagenet'" in result.output


def test_stats_on_an_empty_database(run) -> None:
    output = run()
    assert "faces                     0" in output and output.splitlines()[4].split() == ["emotion", "all*"]


def test_stats_explains_a_missing_database(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOCIALFER_DATABASE_URL", f"sqlite:///{tmp_path / 'nothing.db'}")
    result = CliRunner().invoke(main, ["stats"])
    assert result.exit_code == 1 and "has `socialfer migrate` run?" in result.output
    assert CliRunner().invoke(main, ["stats", "--platform", "myspace"]).exit_code == 2
