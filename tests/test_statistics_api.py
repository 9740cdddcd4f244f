"""GET /api/v1/stats' intervals and corrected shares, and GET /api/v1/compare, on the real Postgres:
the numbers are the estimators' (analysis/) on sums counted here from the rows, the answers match
the OpenAPI document, and bad parameters are 400s."""
# ruff: noqa: F811 - the API fixtures are imported from tests.test_api and named as parameters

from __future__ import annotations

import json
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from analysis.card import confusion
from analysis.clustered import ClusterSums, raw_shares
from analysis.correction import corrected_shares
from analysis.report import stream_of
from core.vocabulary import EMOTIONS
from db import Database
from tests.factories import T0, StatsData, add_batch, add_image
from tests.test_api import broker, client, conforms, make_client, seeded, settings  # noqa: F401 - fixtures

K = len(EMOTIONS)


def get(client: FlaskClient, path: str, schema: str) -> dict[str, Any]:
    response = client.get(path)
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    conforms(body, schema)
    return body


def add_images(session: Session, platform: str, faces_per_image: list[tuple[str, ...]], minutes: int = 0) -> None:
    batch = add_batch(session, total=len(faces_per_image))
    for index, emotions in enumerate(faces_per_image):
        add_image(
            session, batch, platform=platform, emotions=emotions, finished_at=T0 + timedelta(minutes=minutes + index)
        )


def photos(mix: dict[tuple[str, ...], int]) -> list[tuple[str, ...]]:
    """`{("happy", "happy"): 20, ("sad",): 5}`: 20 photos of two happy faces and 5 of one sad one."""
    return [faces for faces, times in mix.items() for _ in range(times)]


INSTAGRAM = photos({("happy", "happy", "neutral"): 25, ("happy",): 20, ("sad",): 5, ("neutral", "angry"): 10})
TWITTER = photos({("angry", "angry"): 15, ("neutral",): 25, ("happy",): 10, ("sad", "neutral"): 10})


@pytest.fixture
def platforms(pg_database: Database) -> None:
    with pg_database.session() as session:
        add_images(session, "instagram", INSTAGRAM)
        add_images(session, "twitter", TWITTER, minutes=5)


def expected_sums(images: list[tuple[str, ...]]) -> ClusterSums:
    counts = np.array([[Counter(faces)[name] for name in EMOTIONS] for faces in images], dtype=float)
    return ClusterSums.from_image_counts(counts)


def test_stats_intervals_are_the_estimators_on_the_rows(client: FlaskClient, platforms: None) -> None:
    body = get(client, "/api/v1/stats", "Stats")
    matrix = confusion(None, "wild_calibration")
    for block, images in [(body["by_platform"]["instagram"], INSTAGRAM), (body, INSTAGRAM + TWITTER)]:
        sums = expected_sums(images)
        raw = raw_shares(sums)
        corrected = corrected_shares([raw], matrix, [stream_of(sums)])[0]
        assert corrected is not None
        for index, name in enumerate(EMOTIONS):
            cell = block["emotions"][name]
            assert cell["interval"] == pytest.approx([raw.low[index], raw.high[index]], abs=1e-6)
            assert cell["corrected"]["share"] == pytest.approx(corrected.share[index], abs=1e-6)
            assert cell["corrected"]["interval"] == pytest.approx(
                [corrected.low[index], corrected.high[index]], abs=1e-6
            )
            assert cell["interval"][0] <= cell["share"] <= cell["interval"][1]
    # 120 images with faces, 60 a platform: under the 200 a share needs by default to be called reliable.
    assert body["reliable"] is False and body["by_platform"]["instagram"]["reliable"] is False
    assert body["statistics"]["corrected"]["matrix"] == "wild_calibration"
    assert body["statistics"]["min_images"] == 200


def test_clustered_interval_is_wider_than_counting_faces(client: FlaskClient, pg_database: Database) -> None:
    """Sixty photos of five alike faces are worth sixty observations, not three hundred."""
    with pg_database.session() as session:
        add_images(session, "facebook", photos({("happy",) * 5: 30, ("sad",) * 5: 30}))
        add_images(session, "twitter", photos({("happy",): 150, ("sad",): 150}), minutes=90)
    body = get(client, "/api/v1/stats", "Stats")
    grouped, single = (
        body["by_platform"]["facebook"]["emotions"]["happy"],
        body["by_platform"]["twitter"]["emotions"]["happy"],
    )
    assert grouped["share"] == single["share"] == 0.5
    width = lambda cell: cell["interval"][1] - cell["interval"][0]  # noqa: E731
    assert width(grouped) > 2 * width(single)


def test_small_samples_are_flagged_by_the_setting(make_client, seeded: StatsData) -> None:
    body = get(make_client(), "/api/v1/stats", "Stats")
    assert body["images_with_faces"] == 3 and body["reliable"] is False
    assert all(block["reliable"] is False for block in body["by_platform"].values())
    relaxed = get(make_client(min_images_for_share=2), "/api/v1/stats", "Stats")
    assert relaxed["reliable"] is True and relaxed["by_platform"]["facebook"]["reliable"] is False


def test_the_matrix_parameter_and_a_missing_card(make_client, platforms: None, tmp_path: Path) -> None:
    client = make_client()
    wild = get(client, "/api/v1/stats", "Stats")
    fer = get(client, "/api/v1/stats?matrix=fer2013_publictest", "Stats")
    assert fer["statistics"]["corrected"]["matrix"] == "fer2013_publictest"
    # Which corrections rest on the prior: the real-photo fold has no fear face, every FER2013 row is measured.
    method = wild["statistics"]["corrected"]
    assert set(method["calibration_faces"]) == set(EMOTIONS) and method["calibration_faces"]["fear"] == 0
    assert "fear" in method["thin_rows"] and "happy" not in method["thin_rows"]
    assert all(method["calibration_faces"][name] < method["thin_row_faces"] for name in method["thin_rows"])
    assert fer["statistics"]["corrected"]["thin_rows"] == []
    # Which faces each matrix was measured on, and the warning when they are not real photos.
    assert method["measured_on"] == "real_photos" and method["warning"] is None
    assert fer["statistics"]["corrected"]["measured_on"] == "fer2013_crops"
    assert "not on faces from real photos" in fer["statistics"]["corrected"]["warning"]
    assert fer["emotions"]["angry"]["corrected"] != wild["emotions"]["angry"]["corrected"]
    assert fer["emotions"]["angry"]["count"] == wild["emotions"]["angry"]["count"]
    response = client.get("/api/v1/stats?matrix=imagenet")
    assert response.status_code == 400 and response.get_json()["error"]["code"] == "invalid_parameter"
    assert "matrix: must be one of" in response.get_json()["error"]["message"]

    model = tmp_path / "bare.keras"  # a model whose card holds no confusion matrices
    model.with_suffix(".json").write_text(json.dumps({"model": "bare.keras"}))
    bare = make_client(model_path=model)
    body = get(bare, "/api/v1/stats", "Stats")
    assert body["emotions"]["happy"]["corrected"] is None and body["emotions"]["happy"]["interval"][1] > 0
    assert body["statistics"]["corrected"] is None and "unavailable" in body["statistics"]["note"]
    assert bare.get("/api/v1/stats?matrix=wild_calibration").status_code == 400


def test_compare_two_platforms(client: FlaskClient, platforms: None) -> None:
    body = get(client, "/api/v1/compare?a.platform=instagram&b.platform=twitter", "Comparison")
    assert body["a"]["filters"]["platform"] == "instagram" and body["b"]["filters"]["platform"] == "twitter"
    stats = get(client, "/api/v1/stats", "Stats")
    for side, platform in (("a", "instagram"), ("b", "twitter")):
        assert body[side]["emotions"] == stats["by_platform"][platform]["emotions"]  # the same set, the same numbers
    happy = body["differences"]["happy"]["raw"]
    a, b = body["a"]["emotions"]["happy"]["share"], body["b"]["emotions"]["happy"]["share"]
    assert happy["difference"] == pytest.approx(a - b, abs=1e-6)
    assert happy["interval"][0] < happy["difference"] < happy["interval"][1]
    assert happy["significant"] and happy["p_holm"] < 0.05  # 58 % against 14 % of faces
    assert not body["differences"]["sad"]["raw"]["significant"]  # 5 % against 10 %: not distinguishable
    p_values = [body["differences"][name]["raw"]["p_value"] for name in EMOTIONS]
    holm = [body["differences"][name]["raw"]["p_holm"] for name in EMOTIONS]
    assert all(adjusted >= p for adjusted, p in zip(holm, p_values, strict=True))
    assert min(holm) == pytest.approx(min(1.0, K * min(p_values)), abs=1e-6)
    corrected = body["differences"]["happy"]["corrected"]
    assert corrected["interval"][0] <= corrected["interval"][1]
    assert body["reliable"] is False  # 60 images a side, under the default 200


def test_compare_shared_and_own_filters(client: FlaskClient, platforms: None) -> None:
    """Unprefixed filters apply to both sets; a set's own override them. Identical sets do not differ."""
    body = get(
        client,
        "/api/v1/compare?platform=twitter&a.until=2025-03-01T12:30:00Z&b.since=2025-03-01T12:30:00Z",
        "Comparison",
    )
    assert body["a"]["filters"] == {
        "platform": "twitter",
        "batch_id": None,
        "since": None,
        "until": "2025-03-01T12:30:00Z",
    }
    assert body["a"]["faces"] + body["b"]["faces"] == sum(len(faces) for faces in TWITTER)
    same = get(client, "/api/v1/compare?a.platform=instagram&b.platform=instagram", "Comparison")
    for name in EMOTIONS:
        assert (
            same["differences"][name]["raw"]["difference"] == 0 and not same["differences"][name]["raw"]["significant"]
        )
        assert same["differences"][name]["corrected"]["difference"] == 0
        assert same["differences"][name]["corrected"]["p_value"] == 1.0
    empty = get(client, "/api/v1/compare?a.platform=facebook&b.platform=twitter", "Comparison")
    assert empty["a"]["faces"] == 0 and empty["differences"]["happy"]["corrected"] is None


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ("a.platform=myspace", "a.platform"),
        ("b.batch_id=0", "b.batch_id"),
        ("a.since=yesterday", "a.since"),
        ("b.until=2025-02-30", "b.until"),
        ("platform=Twitter", "platform"),
        ("matrix=nope", "matrix"),
    ],
)
def test_compare_rejects_bad_parameters(client: FlaskClient, query: str, parameter: str) -> None:
    response = client.get(f"/api/v1/compare?{query}")
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert error["code"] == "invalid_parameter" and error["message"].startswith(f"{parameter}:")
