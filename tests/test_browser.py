"""The dashboard and image pages in a real browser: Debian's chromium driven by Playwright.

Two servers: the Flask app in a thread over seeded Postgres (numbers, filters, empty and
error states), and `socialfer serve` on the embedded default with its own worker (submit
URLs, upload a photo, watch them finish). Every page's numbers are compared with the API's.
Screenshots go to test-artifacts/ (docs/dashboard.png is copied from there).
"""
# ruff: noqa: F811 - the API fixtures are imported from tests.test_api and named as parameters

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from sqlalchemy import select, update
from werkzeug.serving import WSGIRequestHandler, make_server

from api import create_app
from core.settings import Settings
from core.vocabulary import DONE, EMOTIONS, FAILED, QUEUED
from db import Database, Image
from db.queries import STALLED_AFTER
from db.schema import utcnow
from tests.conftest import unavailable
from tests.factories import StatsData, add_batch, add_image, add_preview, seed_stats
from tests.support import EXPECTED_FACES, free_port, image_server, socialfer_process
from tests.test_api import broker, settings  # noqa: F401 - fixtures
from tests.test_e2e import wait_for_api

pytestmark = pytest.mark.slow

PROJECT_ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = PROJECT_ROOT / "test-artifacts"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1280, "height": 900}
WAIT_MS = 20_000
PLATFORMS = ("facebook", "instagram", "twitter", "other")

# Everything the dashboard shows, read from the page in one go (numbers come from data attributes
# and the text drawn on the charts).
READ_DASHBOARD = """() => {
  const all = (selector, root = document) => [...root.querySelectorAll(selector)];
  const bars = (root) => all("g.bar", root).map((bar) => ({
    emotion: bar.dataset.emotion, count: Number(bar.dataset.count), share: Number(bar.dataset.share),
    low: Number(bar.dataset.low), high: Number(bar.dataset.high),
    corrected: bar.dataset.corrected === undefined ? null : Number(bar.dataset.corrected),
    text: bar.querySelector("text.value").textContent,
  }));
  return {
    metrics: Object.fromEntries(all("[data-metric]").map((node) => [node.dataset.metric, node.textContent])),
    emotions: bars(document.getElementById("emotion-chart")),
    platforms: Object.fromEntries(all(".platform").map((node) => [node.dataset.platform, {
      faces: Number(node.dataset.faces), bars: bars(node),
    }])),
    timeline: all("#timeline-chart g.bucket").map((bucket) => ({
      start: bucket.dataset.start, faces: Number(bucket.dataset.faces),
      emotions: Object.fromEntries(
        all("rect", bucket).map((rect) => [rect.dataset.emotion, Number(rect.dataset.count)]),
      ),
    })),
    caption: document.getElementById("timeline-caption").textContent,
    batches: all("#batches tr[data-batch-id]").map((row) => ({
      id: Number(row.dataset.batchId), status: row.dataset.status,
      progress: Number(row.querySelector(".progress").getAttribute("aria-valuenow")),
      label: row.querySelector(".progress b").textContent,
    })),
    images: all("#thumbnails .thumb").map((thumb) => ({
      id: Number(thumb.dataset.imageId), platform: thumb.dataset.platform, boxes: all("g.face", thumb).length,
    })),
    exportCsv: document.getElementById("export-csv").getAttribute("href"),
    notices: all("#notices .notice").map((node) => node.textContent),
  };
}"""


# --- browser and servers -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        unavailable(f"chromium at {CHROMIUM} (apt-get install chromium; `make test` installs it as root)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("playwright (pip install -e '.[test]')")
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh page that may load only from this machine, and fails the test on any script error."""
    # Playwright's wait_for_function evaluates strings, which our CSP forbids (as it should):
    # these tests lift it; tests/test_browser_access.py loads the pages with it enforced.
    context = browser.new_context(viewport=VIEWPORT, bypass_csp=True)
    outside: list[str] = []
    errors: list[str] = []

    def local_only(route: Any) -> None:
        host = urlsplit(route.request.url).hostname
        if route.request.url.startswith("data:") or host == "127.0.0.1":
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    context.route("**/*", local_only)
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    context.close()
    assert outside == [], f"the page tried to load from outside: {outside}"
    assert errors == [], f"script errors: {errors}"


class QuietHandler(WSGIRequestHandler):
    def log_request(self, *_args: Any) -> None:
        """The browser's hundreds of polls would drown the test's output."""


@pytest.fixture
def live(settings: Settings, pg_database: Database) -> Iterator[str]:
    """The app over the Postgres test database, served from a thread; yields its base URL."""
    yield from serve(settings)


def serve(settings: Settings) -> Iterator[str]:
    """Serve an app with `settings` from a thread: its base URL, then it shuts down."""
    app = create_app(settings)
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=QuietHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=10)
    app.extensions["db"].dispose()


@pytest.fixture
def seeded(pg_database: Database) -> StatsData:
    """seed_stats, with previews for the done images so thumbnails have something to show."""
    with pg_database.session() as session:
        data = seed_stats(session)
        for image in session.scalars(select(Image).where(Image.status == DONE)):
            add_preview(session, image, size=(160, 120))
    return data


# --- reading the page and the API ------------------------------------------------------------------


def wait_ready(page: Any, query: str = "") -> None:
    """Until the dashboard has drawn every panel for exactly these filters."""
    page.wait_for_selector(f'body[data-state="ready"][data-query="{query}"]', state="attached")


def api(base: str, path: str) -> Any:
    response = requests.get(f"{base}{path}", timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


RELIABLE_TEXT = re.compile(r"([\d.]+) % \[([\d.]+)–([\d.]+)\] · ([\d,]+)")  # share [interval] · count
UNRELIABLE_TEXT = re.compile(r"()([\d.]+)–([\d.]+) % · ([\d,]+)")  # too few images: the interval, no share


def check_bars(drawn: list[dict[str, Any]], summary: dict[str, Any]) -> None:
    """Seven bars whose counts, shares, intervals, corrected shares and written numbers are the API's;
    a set with too few images shows its intervals instead of bare percentages."""
    assert [bar["emotion"] for bar in drawn] == list(EMOTIONS)
    for bar in drawn:
        expected = summary["emotions"][bar["emotion"]]
        assert (bar["count"], bar["share"]) == (expected["count"], pytest.approx(expected["share"]))
        assert [bar["low"], bar["high"]] == pytest.approx(expected["interval"])
        assert bar["corrected"] == (pytest.approx(expected["corrected"]["share"]) if expected["corrected"] else None)
        written = (RELIABLE_TEXT if summary["reliable"] else UNRELIABLE_TEXT).fullmatch(bar["text"])
        assert written, bar["text"]
        if summary["reliable"]:
            assert float(written[1]) == pytest.approx(expected["share"] * 100, abs=0.051)
        assert [float(written[2]), float(written[3])] == pytest.approx(
            [v * 100 for v in expected["interval"]], abs=0.051
        )
        assert int(written[4].replace(",", "")) == expected["count"]


def check_dashboard(page: Any, base: str, query: str = "") -> dict[str, Any]:
    """Every panel on the page equals what the API answers for the same filters; returns what was read."""
    wait_ready(page, query)
    shown = page.evaluate(READ_DASHBOARD)
    suffix = f"&{query}" if query else ""
    stats = api(base, f"/api/v1/stats?{query}")
    queue = api(base, f"/api/v1/queue?{query}")
    timeline = api(base, f"/api/v1/timeline?{query}")
    batches = api(base, f"/api/v1/batches?limit=15{suffix}")["items"]
    images = api(base, f"/api/v1/images?status=done&limit=12{suffix}")["items"]

    expected_metrics = {
        "images": stats["images"],
        "images_with_faces": stats["images_with_faces"],
        "faces": stats["faces"],
        "failed": queue["images"]["failed"],
    }
    assert shown["metrics"] == {name: f"{value:,}" for name, value in expected_metrics.items()}
    if stats["faces"]:
        check_bars(shown["emotions"], stats)
    else:
        assert shown["emotions"] == []
    for platform in PLATFORMS:
        summary = stats["by_platform"].get(platform)
        drawn = shown["platforms"][platform]
        assert drawn["faces"] == (summary["faces"] if summary else 0), platform
        if summary and summary["faces"]:
            check_bars(drawn["bars"], summary)
        else:
            assert drawn["bars"] == []
    assert shown["timeline"] == [
        {
            "start": item["start"],
            "faces": item["faces"],
            "emotions": {name: count for name, count in item["emotions"].items() if count},
        }
        for item in timeline["items"]
    ]
    assert shown["caption"] == f"faces per emotion per {timeline['bucket']} (UTC)"
    assert [(batch["id"], batch["progress"]) for batch in shown["batches"]] == [
        (batch["id"], 100 * (batch["done"] + batch["failed"]) // batch["total"]) for batch in batches
    ]
    assert [(image["id"], image["platform"], image["boxes"]) for image in shown["images"]] == [
        (image["id"], image["platform"], len(image["faces"])) for image in images
    ]
    assert shown["exportCsv"] == f"/api/v1/faces/export?{query}{'&' if query else ''}format=csv"
    return shown


def screenshot(page: Any, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / name), full_page=True)


# --- seeded Postgres: numbers, filters, states -----------------------------------------------------


def test_dashboard_numbers_equal_the_api(page: Any, live: str, seeded: StatsData) -> None:
    page.goto(f"{live}/")

    shown = check_dashboard(page, live)

    assert shown["metrics"] == {"images": "4", "images_with_faces": "3", "faces": "6", "failed": "1"}
    assert shown["caption"] == "faces per emotion per hour (UTC)" and len(shown["timeline"]) == 3
    happy = {bar["emotion"]: bar["text"] for bar in shown["emotions"]}["happy"]
    assert re.fullmatch(r"\d+\.\d–\d+\.\d % · 3", happy), happy  # 3 images with faces: the interval, not "50.0 %"
    assert "Not reliable yet: 3 images with faces, under the 200" in page.text_content("#emotion-chart")
    assert page.locator('.platform[data-platform="facebook"] .unreliable').count() == 1
    # The shipped card's real-photo matrix has no fear face of its own: the chart says that correction is assumed.
    assert "fear (0 faces)" in page.text_content("#emotion-chart .thin-rows")
    assert page.locator("#emotion-chart .matrix-warning").count() == 0  # corrected with real photos' matrix
    page.wait_for_function("[...document.querySelectorAll('#thumbnails img')].every((img) => img.naturalWidth > 0)")
    screenshot(page, "dashboard-seeded.png")


def test_a_matrix_not_measured_on_real_photos_is_flagged_on_the_chart(
    page: Any, settings: Settings, seeded: StatsData
) -> None:
    fer_settings = settings.model_copy(update={"confusion_matrix": "fer2013_publictest"})
    for base in serve(fer_settings):
        page.goto(f"{base}/")
        page.wait_for_selector("#emotion-chart .matrix-warning")
        warning = page.text_content("#emotion-chart .matrix-warning")
        assert "fer2013_publictest" in warning and "not on faces from real photos" in warning
        page.goto(f"{base}/?a.platform=facebook&b.platform=twitter")  # and the compare view says it too
        page.wait_for_selector("#compare-chart .matrix-warning")


def test_a_filter_changes_every_panel_and_the_url(page: Any, live: str, seeded: StatsData) -> None:
    page.goto(f"{live}/")
    everything = check_dashboard(page, live)

    page.select_option("#filter-platform", "facebook")
    facebook = check_dashboard(page, live, "platform=facebook")
    assert page.url == f"{live}/?platform=facebook"
    for panel in ("metrics", "emotions", "platforms", "timeline", "batches", "images", "exportCsv"):
        assert facebook[panel] != everything[panel], f"{panel} did not change"
    assert facebook["batches"] == [batch for batch in everything["batches"] if batch["id"] == seeded.batch_a]
    assert {image["platform"] for image in facebook["images"]} == {"facebook"}
    screenshot(page, "dashboard-filtered.png")

    page.fill("#filter-since", "2025-03-01")
    check_dashboard(page, live, "platform=facebook&since=2025-03-01")
    page.select_option("#filter-batch", str(seeded.batch_b))
    narrowed = check_dashboard(page, live, f"platform=facebook&batch_id={seeded.batch_b}&since=2025-03-01")
    assert "Nothing matches these filters" in " ".join(narrowed["notices"])

    page.go_back()  # the filters are history entries: back restores the previous view
    check_dashboard(page, live, "platform=facebook&since=2025-03-01")

    shared = page.context.new_page()  # a shared link shows the same view
    shared.goto(f"{live}/?batch_id={seeded.batch_a}&until=2025-03-01T13:00:00Z")
    check_dashboard(shared, live, f"batch_id={seeded.batch_a}&until=2025-03-01T13%3A00%3A00Z")
    assert shared.input_value("#filter-batch") == str(seeded.batch_a)
    assert shared.input_value("#filter-until") == "2025-03-01"


READ_COMPARE = """() => [...document.querySelectorAll("#compare-chart g.difference")].map((row) => ({
  emotion: row.dataset.emotion, raw: Number(row.dataset.raw), low: Number(row.dataset.rawLow),
  high: Number(row.dataset.rawHigh), significant: "significant" in row.dataset,
  corrected: row.dataset.corrected === undefined ? null : Number(row.dataset.corrected),
}))"""


@pytest.fixture
def two_platforms(pg_database: Database) -> None:
    """210 instagram photos of mostly happy faces and 210 twitter ones of mostly angry faces: each side over the
    200 images a share needs to be reliable."""
    with pg_database.session() as session:
        for platform, mood in (("instagram", "happy"), ("twitter", "angry")):
            batch = add_batch(session, total=210)
            for index in range(210):
                faces = (mood, mood) if index % 4 else ("neutral",)
                add_image(session, batch, platform=platform, emotions=faces)


def test_compare_view_draws_the_apis_differences(page: Any, live: str, two_platforms: None) -> None:
    page.goto(f"{live}/")
    wait_ready(page)
    assert "Choose what A and B are" in page.text_content("#compare-chart")

    page.select_option("#compare-a-platform", "instagram")
    page.select_option("#compare-b-platform", "twitter")
    query = "a.platform=instagram&b.platform=twitter"
    page.wait_for_selector("#compare-chart g.difference")
    assert page.url == f"{live}/?{query}"
    body = api(live, f"/api/v1/compare?{query}")
    drawn = {row["emotion"]: row for row in page.evaluate(READ_COMPARE)}
    assert list(drawn) == list(EMOTIONS)
    for name in EMOTIONS:
        raw, corrected = body["differences"][name]["raw"], body["differences"][name]["corrected"]
        row = drawn[name]
        assert [row["raw"], row["low"], row["high"]] == pytest.approx([raw["difference"], *raw["interval"]])
        assert row["significant"] is raw["significant"]
        assert row["corrected"] == pytest.approx(corrected["difference"])
    assert drawn["happy"]["significant"] and drawn["happy"]["raw"] > 0 and drawn["angry"]["raw"] < 0
    sides = page.text_content("#compare-chart .sides")
    assert "instagram: 367 faces in 210 images" in sides and "not reliable" not in sides
    screenshot(page, "dashboard-compare.png")

    shared = page.context.new_page()  # the compared sets live in the URL, beside the filters
    shared.goto(f"{live}/?platform=twitter&{query}")
    shared.wait_for_selector("#compare-chart .sides")
    assert shared.input_value("#compare-a-platform") == "instagram"
    assert "A platform instagram" in shared.text_content("#compare-chart .sides")


def test_empty_and_error_states_explain_themselves(page: Any, live: str, pg_database: Database) -> None:
    page.goto(f"{live}/")
    check_dashboard(page, live)
    assert "No data yet" in page.text_content("#notices")
    assert page.text_content("#emotion-chart") == "No faces found yet."
    screenshot(page, "dashboard-empty.png")

    long_ago = utcnow() - 2 * STALLED_AFTER
    with pg_database.session() as session:
        failed = add_batch(session, total=2, name="all broken")
        for code in ("http_404", "not_an_image"):
            image = add_image(session, failed, status=FAILED, url=f"https://example.com/{code}", finished_at=long_ago)
            image.error_code, image.error_message = code, f"{code} happened"
        waiting = add_batch(session, total=1, name="stuck")
        stuck = add_image(session, waiting, status=QUEUED).id
        session.execute(update(Image).where(Image.id == stuck).values(enqueued_at=long_ago))
    page.reload()
    check_dashboard(page, live)
    notices = page.text_content("#notices")
    assert "no worker seems to be running" in notices and "socialfer worker" in notices
    row = page.locator(f'tr[data-batch-id="{failed.id}"]')
    assert row.get_attribute("data-status") == "failed"
    reasons = page.locator(f'details.failures[data-batch-id="{failed.id}"]')
    assert reasons.get_attribute("open") is not None  # a failed batch shows why without a click
    page.wait_for_selector(f'details.failures[data-batch-id="{failed.id}"] code')
    assert {"http_404", "not_an_image"} <= set(reasons.locator("code").all_text_contents())
    screenshot(page, "dashboard-failed-and-stalled.png")

    page.route(
        "**/api/v1/stats*",
        lambda route: route.fulfill(
            status=500, json={"error": {"code": "internal_error", "message": "internal server error"}}
        ),
    )
    page.reload()
    page.wait_for_selector('body[data-state="error"]', state="attached")
    assert "The API did not answer (internal server error)" in page.text_content("#notices")


def test_image_pages_explain_missing_images_previews_and_failures(page: Any, live: str, pg_database: Database) -> None:
    with pg_database.session() as session:
        batch = add_batch(session, total=2)
        pruned = add_image(session, batch, emotions=("sad",))
        pruned.width, pruned.height = 160, 120  # analysed, but its preview is past the retention time
        failed = add_image(session, batch, status=FAILED)
        failed.error_code, failed.error_message = "http_403", "server answered 403"

    page.goto(f"{live}/images/{pruned.id}")
    page.wait_for_selector('body[data-state="ready"]', state="attached")
    page.wait_for_selector("#image-view .no-preview")
    assert "preview is no longer kept (previews are kept 30 days)" in page.text_content("#image-view")
    assert page.locator("#face-table tbody tr").count() == 1 and page.locator("#image-view .face-box").count() == 0

    page.goto(f"{live}/images/{failed.id}")
    page.wait_for_selector('body[data-state="ready"]', state="attached")
    assert page.text_content("#notices") == (
        "Analysis failed: http_403 — the server answered HTTP 403. (server answered 403)"
    )
    screenshot(page, "image-page-failed.png")

    page.goto(f"{live}/images/4242")
    page.wait_for_selector('body[data-state="error"]', state="attached")
    assert page.text_content("#notices") == "There is no image 4242."


# --- the embedded default with a real worker: submit, upload, watch -----------------------------------


@pytest.fixture(scope="module")
def served(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Any]]:
    """`socialfer serve` on the embedded default (SQLite, filesystem broker, its own worker), and the
    example photos on a local image server; yields (base URL, image server)."""
    tmp = tmp_path_factory.mktemp("served")
    env = {key: None for key in ("SOCIALFER_DATABASE_URL", "SOCIALFER_BROKER_URL", "SOCIALFER_API_KEYS")}
    env |= {"SOCIALFER_DATA_DIR": str(tmp / "data"), "SOCIALFER_ALLOW_PRIVATE_URLS": "1"}
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with (
        image_server(shared_data / "social_examples") as examples,
        socialfer_process(["serve", "--port", str(port)], env, tmp / "serve.log"),
    ):
        wait_for_api(base)
        yield base, examples


WATCH_PROGRESS = """() => {
  window.progressSeen = {};
  new MutationObserver(() => {
    for (const row of document.querySelectorAll("#batches tr[data-batch-id]")) {
      const value = Number(row.querySelector(".progress").getAttribute("aria-valuenow"));
      (window.progressSeen[row.dataset.batchId] ||= []).push(value);
    }
  }).observe(document.getElementById("batches"), { subtree: true, childList: true, attributes: true });
  window.loadedOnce = true;
}"""


def submitted_batch(page: Any, message: str) -> int:
    page.wait_for_function(f"document.getElementById('{message}').textContent.includes('queued')")
    return int(re.search(r"Batch #(\d+) queued", page.text_content(f"#{message}"))[1])


def wait_finished(page: Any, *batch_ids: int) -> None:
    """Until the batches' bars show 100 %, then one more refresh: it fetched every panel after the
    last image finished (the page polls quickly once more when work ends)."""
    for batch_id in batch_ids:
        page.wait_for_selector(f'tr[data-batch-id="{batch_id}"] .progress[aria-valuenow="100"]', timeout=180_000)
    seen = int(page.evaluate("document.body.dataset.refreshes"))
    page.wait_for_function(f"Number(document.body.dataset.refreshes) > {seen}")


def test_submitted_urls_progress_to_100_without_a_reload(page: Any, served: tuple[str, Any]) -> None:
    base, examples = served
    page.goto(f"{base}/")
    wait_ready(page)
    page.evaluate(WATCH_PROGRESS)

    batches = {}
    for platform in ("facebook", "instagram", "twitter"):
        names = sorted(name for name in EXPECTED_FACES if name.startswith(f"{platform}/"))
        page.fill("#urls", "\n".join(examples.url(f"{name}.jpeg") for name in names) + "\n")
        page.select_option("#url-platform", platform)
        page.fill("#url-name", f"{platform} examples")
        page.click("#url-form button")
        batches[platform] = submitted_batch(page, "url-message")
    page.fill("#urls", examples.url("missing.jpeg"))
    page.select_option("#url-platform", "")
    page.fill("#url-name", "a dead link")
    page.click("#url-form button")
    dead = submitted_batch(page, "url-message")

    wait_finished(page, *batches.values(), dead)
    assert page.evaluate("window.loadedOnce") is True  # the same page all along: no reload
    seen = page.evaluate("window.progressSeen")
    assert any(value < 100 for batch_id in batches.values() for value in seen[str(batch_id)]), seen
    labels = {row["id"]: (row["status"], row["label"]) for row in check_dashboard(page, base)["batches"]}
    assert labels[batches["twitter"]] == ("done", "5 / 5") and labels[dead] == ("failed", "1 / 1 · 1 failed")
    page.wait_for_selector(f'details.failures[data-batch-id="{dead}"] code')
    assert page.locator(f'details.failures[data-batch-id="{dead}"] code').all_text_contents() == ["http_404"]
    screenshot(page, "dashboard-after-urls.png")


def test_an_uploaded_photo_shows_its_annotated_result(page: Any, served: tuple[str, Any], shared_data: Path) -> None:
    base, _ = served
    page.goto(f"{base}/")
    wait_ready(page)

    page.set_input_files("#upload-files", str(shared_data / "social_examples" / "twitter" / "1.jpeg"))
    page.select_option("#upload-platform", "twitter")
    page.click("#upload-form button")
    batch_id = submitted_batch(page, "upload-message")
    wait_finished(page, batch_id)

    image = api(base, f"/api/v1/batches/{batch_id}/images")["items"][0]
    assert (image["url"], image["status"], len(image["faces"])) == ("upload:1.jpeg", "done", 2)
    thumb = page.locator(f'#thumbnails .thumb[data-image-id="{image["id"]}"]')
    thumb.locator("img").wait_for()
    assert thumb.locator("g.face").count() == 2
    check_dashboard(page, base)
    screenshot(page, "dashboard.png")

    thumb.click()
    page.wait_for_selector('body[data-state="ready"]', state="attached")
    assert page.url == f"{base}/images/{image['id']}"
    page.wait_for_function("document.querySelector('#image-view img').naturalWidth > 0")
    assert page.locator("#image-view .face-box").count() == 2
    assert page.locator("#face-table tbody tr").count() == 2
    for index, face in enumerate(image["faces"]):
        page.click(f'#face-table tr[data-index="{index}"] button.face-link')
        card = page.locator(f'#face-detail .face-card[data-index="{index}"]')
        assert card.get_attribute("data-emotion") == face["emotion"]
        rows = card.locator(".probability")
        assert rows.count() == 7
        for row in range(7):
            emotion = rows.nth(row).get_attribute("data-emotion")
            assert float(rows.nth(row).get_attribute("data-score")) == pytest.approx(face["scores"][emotion])
            assert rows.nth(row).locator(".value").text_content() == f"{face['scores'][emotion] * 100:.1f} %"
    screenshot(page, "image-page.png")


# --- a group photo, and accessibility ---------------------------------------------------------------

AXE_TAGS = ["wcag2a", "wcag2aa"]


def axe_violations(page: Any) -> list[str]:
    """axe-core's WCAG 2 A/AA violations on the page as it is drawn (the script from axe-playwright-python's
    package, read from disk and evaluated through the DevTools protocol: nothing is fetched, and the page's
    Content-Security-Policy, which refuses inline scripts, stays as it is)."""
    try:
        import axe_playwright_python
    except ImportError:
        unavailable("axe-playwright-python (pip install -e '.[test]')")
    page.evaluate((Path(axe_playwright_python.__file__).parent / "axe.min.js").read_text())
    results = page.evaluate("(tags) => axe.run(document, { runOnly: { type: 'tag', values: tags } })", AXE_TAGS)
    return [
        f"{violation['id']}: {node['target']} {node.get('failureSummary', '')}"
        for violation in results["violations"]
        for node in violation["nodes"]
    ]


@pytest.fixture
def group_photo(pg_database: Database, shared_data: Path) -> int:
    """linzaer_11.jpg of the shared group photos, stored as analysed: its 26 hand-checked faces, a preview."""
    import json

    from db import Face, ImageFile
    from db.schema import PREVIEW
    from tests.factories import scores_for
    from workers.imaging import decode_image, encode_preview

    folder = shared_data / "group_photos"
    entry = next(
        e for e in json.loads((folder / "annotations.json").read_text())["images"] if e["file"] == "linzaer_11.jpg"
    )
    rgb = decode_image((folder / entry["file"]).read_bytes())
    with pg_database.session() as session:
        batch = add_batch(session, total=1, name="a department on the steps")
        image = add_image(session, batch, url="https://example.com/group.jpg")
        image.width, image.height = rgb.shape[1], rgb.shape[0]
        image.face_count, image.min_face_px = len(entry["faces"]), 24
        for index, face in enumerate(entry["faces"]):
            x, y, w, h = face["box"]
            emotion = EMOTIONS[index % len(EMOTIONS)]
            session.add(
                Face(
                    image_id=image.id, batch_id=batch.id, platform=image.platform, analyzed_at=image.finished_at,
                    x=x, y=y, w=w, h=h, confidence=0.99, emotion=emotion, **scores_for(emotion),
                    size_px=min(w, h), low_resolution=min(w, h) < 36, uncertain=index % 5 == 0,  # 36: some flagged
                )
            )  # fmt: skip
        session.add(
            ImageFile(image_id=image.id, kind=PREVIEW, content_type="image/jpeg", data=encode_preview(rgb, 640))
        )
        session.flush()
        return image.id


def selected_everywhere(page: Any) -> list[str]:
    """The data-index of the selected marker, box and table row (the three must agree)."""
    return page.evaluate(
        "() => ['.marker.selected', '.face-box.selected', '#face-table tr.selected']"
        ".map((s) => document.querySelector(s)?.dataset.index ?? null)"
    )


def test_a_group_photo_page_stays_short_and_every_face_is_reachable(page: Any, live: str, group_photo: int) -> None:
    page.goto(f"{live}/images/{group_photo}")
    page.wait_for_selector('body[data-state="ready"]', state="attached")
    page.wait_for_function("document.querySelector('#image-view img').naturalWidth > 0")
    faces = api(live, f"/api/v1/images/{group_photo}")["faces"]
    assert len(faces) == 26
    assert page.locator("button.marker").count() == 26 and page.locator("#face-table tbody tr").count() == 26
    height = page.evaluate("document.documentElement.scrollHeight")
    assert height <= 1.5 * VIEWPORT["height"], height  # one card per face made it over 6,000 px
    summary = {
        row.get_attribute("data-emotion"): int(row.get_attribute("data-count"))
        for row in page.locator(".summary-row").all()
    }
    assert summary == {e: sum(1 for f in faces if f["emotion"] == e) for e in EMOTIONS}
    screenshot(page, "image-page-group.png")

    for index in range(26):  # by pointer, from the picture: the row follows, and the label names the face
        page.locator(f'button.marker[data-index="{index}"]').click()
        assert selected_everywhere(page) == [str(index)] * 3
        page.mouse.move(1, 1)  # off the picture: the label shows the selected face, not the one under the pointer
        label = page.locator("#face-label")
        assert label.is_visible() and label.text_content().startswith(f"{index + 1} {faces[index]['emotion']}")
    for index in reversed(range(26)):  # by pointer, from the table: the picture follows
        page.locator(f'#face-table tr[data-index="{index}"] td:nth-child(2)').click()
        assert selected_everywhere(page) == [str(index)] * 3

    page.locator('button.marker[data-index="0"]').focus()  # by keyboard: Tab visits every marker in number order
    reached = []
    for _ in range(26):
        reached.append(page.evaluate("document.activeElement.dataset.index"))
        page.keyboard.press("Tab")
    assert reached == [str(index) for index in range(26)]
    page.locator('button.marker[data-index="4"]').focus()
    page.keyboard.press("Enter")
    assert selected_everywhere(page) == ["4"] * 3
    page.keyboard.press("ArrowRight")
    assert selected_everywhere(page) == ["5"] * 3 and page.evaluate("document.activeElement.dataset.index") == "5"
    page.locator('#face-table button.face-link[data-index="17"]').focus()  # and from the table
    page.keyboard.press("Enter")
    assert selected_everywhere(page) == ["17"] * 3
    assert page.locator("#face-detail .probability").count() == 7

    page.click('button.sort[data-sort="size"]')  # sorting: largest first, then back
    sizes = [int(cell.get_attribute("data-size")) for cell in page.locator("#face-table td[data-size]").all()]
    assert sizes == sorted((f["size_px"] for f in faces), reverse=True)
    assert page.get_attribute('th:has(button[data-sort="size"])', "aria-sort") == "descending"
    page.click('button.sort[data-sort="size"]')
    sizes = [int(cell.get_attribute("data-size")) for cell in page.locator("#face-table td[data-size]").all()]
    assert sizes == sorted(f["size_px"] for f in faces)
    assert selected_everywhere(page) == ["17"] * 3  # the selection survives a sort
    flagged = page.locator("#face-table .flag.low-resolution").count()
    assert flagged == sum(f["low_resolution"] for f in faces) and flagged > 0
    assert page.locator("#face-table .flag.uncertain").count() == sum(f["uncertain"] for f in faces)
    assert axe_violations(page) == []


def test_every_page_passes_axe_wcag2_a_and_aa(
    page: Any, live: str, seeded: StatsData, group_photo: int, pg_database: Database
) -> None:
    with pg_database.session() as session:
        failed = add_image(session, add_batch(session, total=1), status=FAILED)
        failed.error_code, failed.error_message = "http_404", "not found"
        failed_id = failed.id
    views = {
        "dashboard": ("/", lambda: wait_ready(page)),
        "dashboard, filtered": (
            "/?min_face_px=28&uncertain=exclude",
            lambda: wait_ready(page, "min_face_px=28&uncertain=exclude"),
        ),
        "image page": (f"/images/{group_photo}", None),
        "failed image": (f"/images/{failed_id}", None),
        "sign-in page": ("/signin", None),
    }
    found = {}
    for name, (path, ready) in views.items():
        page.goto(f"{live}{path}")
        if ready:
            ready()
        elif path.startswith("/images/"):
            page.wait_for_selector('body[data-state="ready"]', state="attached")
        else:
            page.wait_for_load_state("load")
        found[name] = axe_violations(page)
    assert found == {name: [] for name in views}


def test_the_dashboard_says_how_many_faces_a_face_filter_leaves_out(page: Any, live: str, group_photo: int) -> None:
    page.goto(f"{live}/")
    wait_ready(page)
    assert page.locator("#faces-note .left-out").count() == 0
    page.select_option("#filter-min-face", "48")
    check_dashboard(page, live, "min_face_px=48")
    stats = api(live, "/api/v1/stats?min_face_px=48")
    assert (
        stats["faces_left_out"]
        == sum(f["size_px"] < 48 for f in api(live, f"/api/v1/images/{group_photo}")["faces"])
        > 0
    )
    note = page.locator("#faces-note .left-out")
    assert int(note.get_attribute("data-left-out")) == stats["faces_left_out"]
    assert page.get_attribute("#export-csv", "href") == "/api/v1/faces/export?min_face_px=48&format=csv"
