"""The explorer in a real browser: ``streamlit run`` on a free loopback port, Debian chromium
driven by Playwright, two sessions at once, every page, no exception; screenshots for the README.

Needs ``chromium`` on PATH and the ``playwright`` package (never ``playwright install``);
skips without them on a laptop, fails without them in CI (see ``require`` in conftest).
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import pytest
from conftest import require

from kb import KnowledgeBase

ROOT = Path(__file__).resolve().parents[1]
# README screenshots are refreshed only on request (SOC_KB_SCREENSHOTS=docs/screenshots), so
# a CI or local test run leaves the tree clean; otherwise they go to a temporary folder
SHOTS_ENV = "SOC_KB_SCREENSHOTS"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]
# url path, title on the page, what must have rendered besides the title
PAGES = [("", "SOC × warming evidence", "[data-testid='stVegaLiteChart']"),
         ("study?id=cosore-d20200229_phillips", "Study", "[data-testid='stDataFrame']"),
         ("add_study", "Add study", "[data-testid='stForm']"),
         ("claims", "Claims", "[data-testid='stDataFrame']"),
         ("synthesis", "Synthesis", "[data-testid='stMarkdownContainer']"),
         ("evidence_map", "Evidence map", "[data-testid='stVegaLiteChart']"),
         ("bibliography", "Bibliography", "[data-testid='stDownloadButton']")]

pytestmark = pytest.mark.browser


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


SERVER_FLAGS = ["--server.headless", "true", "--server.address", "127.0.0.1",
                "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"]


@contextmanager
def streamlit_server(command: list[str], db: Path):
    """``command`` (``streamlit run app.py ...``) on a free loopback port with ``SOC_KB_DB=db``;
    yields the base URL once ``/_stcore/health`` answers ``ok``; stops the server after."""
    port = free_port()
    env = {**os.environ, "SOC_KB_DB": str(db)}
    proc = subprocess.Popen([*command, *SERVER_FLAGS, "--server.port", str(port)], cwd=ROOT, env=env,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, proc)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=20)


@pytest.fixture(scope="module")
def shipped_db(tmp_path_factory) -> Path:
    """The shipped seed: the screenshots show real records."""
    path = tmp_path_factory.mktemp("browser") / "app.db"
    KnowledgeBase(path).close()
    return path


@pytest.fixture(scope="module")
def server(shipped_db):
    require(shutil.which("chromium") is not None, "chromium is not on PATH (apt-get install chromium)")
    with streamlit_server([sys.executable, "-m", "streamlit", "run", "app.py"], shipped_db) as url:
        yield url


def wait_healthy(url: str, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited: {proc.stdout.read().decode(errors='replace')}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.read() == b"ok":
                    return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"streamlit did not become healthy at {url} within {timeout} s")


@pytest.fixture(scope="module")
def browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        require(False, "the playwright package is not installed (pip install -e '.[test]')")
    require(shutil.which("chromium") is not None, "chromium is not on PATH (apt-get install chromium)")
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=shutil.which("chromium"), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def open_page(page, url: str, title: str, marker: str) -> None:
    from playwright.sync_api import expect

    page.goto(url, wait_until="domcontentloaded")
    expect(page.get_by_role("heading", name=title, exact=True).first).to_be_visible(timeout=30_000)
    page.wait_for_selector(marker, state="attached", timeout=30_000)
    settle(page)


def settle(page) -> None:
    """Wait until the script run is over, then show the whole page and let charts draw.

    Streamlit scrolls inside its main block, so a full-page screenshot needs a viewport
    as tall as the content; charts below the fold are drawn only once they are in view,
    so each is scrolled to before the page goes back to the top.
    """
    page.wait_for_selector("[data-testid='stStatusWidget']", state="detached", timeout=30_000)
    height = page.evaluate("document.querySelector('[data-testid=stMain]').scrollHeight")
    # as tall as the page, up to 2400 px (a long bibliography makes a 1.5 MB screenshot)
    page.set_viewport_size({"width": page.viewport_size["width"], "height": min(max(height, 800), 2400)})
    for chart in page.locator("[data-testid='stVegaLiteChart']").all():
        if not chart.is_visible():  # inside a closed expander: drawn when it is opened
            continue
        chart.scroll_into_view_if_needed()
        chart.locator("canvas, svg").first.wait_for(timeout=30_000)
    page.evaluate("document.querySelector('[data-testid=stMain]').scrollTo(0, 0)")
    page.wait_for_timeout(800)


def no_exception(page, where: str) -> None:
    shown = page.locator("[data-testid='stException']")
    assert shown.count() == 0, f"{where}: {shown.first.inner_text()}"


@pytest.fixture
def shots(tmp_path) -> Path:
    folder = Path(os.environ[SHOTS_ENV]) if os.environ.get(SHOTS_ENV) else tmp_path / "screenshots"
    folder = folder if folder.is_absolute() else ROOT / folder
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def test_two_sessions_every_page(server, browser, shots):
    started = time.monotonic()
    first = browser.new_context(viewport={"width": 1400, "height": 1000})
    second = browser.new_context(viewport={"width": 1280, "height": 900})
    a, b = first.new_page(), second.new_page()
    try:
        for path, title, marker in PAGES:
            # both sessions load the page at the same time, then both are checked
            a.goto(f"{server}/{path}", wait_until="commit")
            open_page(b, f"{server}/{path}", title, marker)
            open_page(a, f"{server}/{path}", title, marker)
            no_exception(a, f"session 1, /{path}")
            no_exception(b, f"session 2, /{path}")
            name = path.split("?")[0] or "explore"
            a.screenshot(path=str(shots / f"{name}.png"), full_page=True)
            assert (shots / f"{name}.png").stat().st_size > 10_000, f"/{path}: blank screenshot"
    finally:
        first.close()
        second.close()
    print(f"\n7 pages × 2 sessions in {time.monotonic() - started:.1f} s")


def test_a_study_added_in_one_session_shows_in_the_other(server, browser):
    from playwright.sync_api import expect

    first, second = browser.new_context(), browser.new_context()
    a, b = first.new_page(), second.new_page()
    try:
        open_page(b, server, "SOC × warming evidence", "[data-testid='stMetric']")
        before = int(b.locator("[data-testid='stMetricValue']").first.inner_text().replace(",", ""))
        open_page(a, f"{server}/add_study", "Add study", "[data-testid='stForm']")
        a.get_by_label("Study id (unique, no spaces)").fill("browser2025-a")
        a.get_by_label("SOC direction (required)").click()
        a.get_by_role("option", name="Decrease").click()
        a.get_by_role("button", name="Save").click()
        expect(a.get_by_text("Saved browser2025-a")).to_be_visible(timeout=30_000)
        no_exception(a, "add study")
        b.reload(wait_until="domcontentloaded")
        expect(b.locator("[data-testid='stMetricValue']").first).to_have_text(
            f"{before + 1}", timeout=30_000)
        no_exception(b, "explore after the other session wrote")
    finally:
        first.close()
        second.close()


HOSTILE_TEXT = ("Bare https://evil.example/s, www.evil.example, mail@evil.example, "
                ":material/home: and :smile: [x](https://evil.example/md)")


@pytest.fixture(scope="module")
def hostile_server(tmp_path_factory):
    """A base whose texts hold every pattern Markdown turns into a link or an icon."""
    require(shutil.which("chromium") is not None, "chromium is not on PATH (apt-get install chromium)")
    path = tmp_path_factory.mktemp("hostile") / "app.db"
    with KnowledgeBase(path, seed=False) as kb:
        kb.add_records({
            "sources": [{"key": "evil2025", "title": "Title " + HOSTILE_TEXT, "year": 2025,
                         "authors": "Doe, Jane"}],
            "studies": [{"id": "evil2025-a", "source_key": "evil2025", "soc_direction": "decrease",
                         "summary": HOSTILE_TEXT, "evidence_quote": HOSTILE_TEXT}],
            "claims": [{"id": "c-evil", "text": HOSTILE_TEXT}]})
    with streamlit_server([sys.executable, "-m", "streamlit", "run", "app.py"], path) as url:
        yield url


@pytest.mark.parametrize("path,title", [("study?id=evil2025-a", "Study"), ("bibliography", "Bibliography"),
                                        ("claims", "Claims")])
def test_text_from_records_never_becomes_a_link_or_an_icon(hostile_server, browser, path, title):
    page = browser.new_page()
    try:
        open_page(page, f"{hostile_server}/{path}", title, "[data-testid='stMarkdownContainer']")
        no_exception(page, path)
        links = page.eval_on_selector_all("[data-testid='stMain'] a[href]", "els => els.map(e => e.href)")
        assert not [href for href in links if "evil.example" in href], links
        text = page.locator("[data-testid='stMain']").inner_text().replace("\u2060", "")
        assert "www.evil.example" in text and "material/home" in text  # shown, as text
    finally:
        page.close()


# a missing value printed by Python or pandas; quoted (a record's own text) it is data
MISSING_TOKEN = re.compile(r"(?<!')\b(?:None|nan|NaN|NaT)\b(?!')|<NA>")


def shipped_study(db: Path, prefix: str) -> str:
    with KnowledgeBase(db) as kb:
        return next(i for i in kb.study_ids() if i.startswith(prefix))


@pytest.mark.parametrize("path,title", [
    ("", "SOC × warming evidence"), ("study?id={srdb}", "Study"), ("study?id={cosore}", "Study"),
    ("study?id=crowther2016", "Study"), ("study?id=chen2023", "Study"), ("claims", "Claims"),
    ("synthesis", "Synthesis"), ("evidence_map", "Evidence map"), ("bibliography", "Bibliography"),
    ("add_study", "Add study")])
def test_no_page_shows_none_or_nan(server, shipped_db, browser, path, title):
    """The text a reader sees (tables are drawn on a canvas, so their cells are read through
    AppTest in test_app.py; charts are SVG, so their labels are here)."""
    path = path.format(srdb=shipped_study(shipped_db, "srdb"), cosore=shipped_study(shipped_db, "cosore"))
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    try:
        open_page(page, f"{server}/{path}", title, "[data-testid='stMarkdownContainer']")
        no_exception(page, path)
        text = page.locator("[data-testid='stMain']").inner_text()
        text += page.locator("[data-testid='stSidebar']").inner_text()
        assert text.strip() and not MISSING_TOKEN.findall(text), MISSING_TOKEN.findall(text)
    finally:
        page.close()


# (lon, lat) -> what the map must draw there: ocean, Central Africa, the Indian Ocean, Siberia
MAP_PROBES = [((-140, 5), "sea"), ((25, 5), "land"), ((80, -20), "sea"), ((100, 60), "land")]
LAND_FILL, SEA_FILL = "#f4f1e8", "#dde9f2"  # charts.site_map's fills


def test_the_site_map_draws_land_where_the_land_is(server, browser):
    """A land polygon wound the wrong way fills the rest of the globe instead: the map is
    read back at known places. Equal Earth keeps the equator straight and longitude linear
    along it, so the sphere's outline gives each probe's position (near the equator, and
    roughly at 60°, where the error is far smaller than Siberia)."""
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    try:
        open_page(page, server, "SOC × warming evidence", "[data-testid='stVegaLiteChart']")
        chart = page.locator("[data-testid='stVegaLiteChart']").first
        chart.scroll_into_view_if_needed()
        sphere = chart.locator(".mark-shape path").first.bounding_box()
        centre_x, centre_y = sphere["x"] + sphere["width"] / 2, sphere["y"] + sphere["height"] / 2
        for (lon, lat), expected in MAP_PROBES:
            # Equal Earth: x along a parallel is linear in longitude, shrinking ~9 % at 60°
            shrink = 1 - 0.09 * (abs(lat) / 60) ** 2
            x = centre_x + lon / 180 * sphere["width"] / 2 * shrink
            y = centre_y - lat / 90 * sphere["height"] / 2 * (1.0 if abs(lat) < 30 else 1.1)
            # the topmost shape there with a fill of its own (the graticule above it has none)
            fill = page.evaluate("([x, y]) => document.elementsFromPoint(x, y).map(e => e.getAttribute("
                                 "'fill')).find(f => f && f !== 'transparent' && f !== 'none')", [x, y])
            assert fill == (LAND_FILL if expected == "land" else SEA_FILL), (lon, lat, fill)
    finally:
        page.close()


def test_a_click_on_a_site_opens_its_study(server, browser):
    from playwright.sync_api import expect

    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    try:
        open_page(page, server, "SOC × warming evidence", "[data-testid='stVegaLiteChart']")
        site = page.locator("[data-testid='stVegaLiteChart'] .mark-symbol path").first
        site.scroll_into_view_if_needed()
        site.click(force=True)  # force: a neighbouring site may overlap this one
        expect(page.get_by_role("heading", name="Study", exact=True)).to_be_visible(timeout=30_000)
        assert "study?id=" in page.url
        no_exception(page, "study opened from the map")
    finally:
        page.close()


def test_a_click_on_an_evidence_map_cell_lists_its_studies(server, browser):
    from playwright.sync_api import expect

    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    try:
        open_page(page, f"{server}/evidence_map", "Evidence map", "[data-testid='stVegaLiteChart']")
        heat_map = page.locator("[data-testid='stVegaLiteChart']").first
        # the last cell: no mechanism × no biome stated, several studies on the shipped base
        cell = heat_map.locator(".mark-rect.role-mark path").last
        cell.scroll_into_view_if_needed()
        box = cell.bounding_box()
        page.mouse.click(box["x"] + 2, box["y"] + 2)  # a corner: the count's text sits in the middle
        expect(page.get_by_text(re.compile(r"^\d+ studies in Not reported × Not reported"))).to_be_visible(
            timeout=30_000)
        expect(page.locator("[data-testid='stDataFrame']")).to_be_visible(timeout=30_000)  # the list
        no_exception(page, "evidence map cell")
    finally:
        page.close()
