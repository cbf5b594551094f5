"""The visualizer in a real browser: Playwright drives Debian's Chromium, headless.

The test uses the page as a student would: it waits for a leader, writes a
value, selects the leader and presses C to crash it, waits for a new leader
in a higher term, then drags the time scrubber back to before the crash. It
takes a screenshot (into docs/assets/visualizer.png, the documentation's,
only with RAFT_UPDATE_SCREENSHOT=1), then adds a server and sees it appear
in the ring.

Without /usr/bin/chromium the test is skipped, except in CI (CI=true), where
it must run: scripts/test.sh installs Debian's chromium package.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from visualizer.server import BackgroundServer, Visualizer, bind, missing_vendor_files

CHROMIUM = Path("/usr/bin/chromium")
DOCS_SCREENSHOT = Path(__file__).resolve().parent.parent / "docs" / "assets" / "visualizer.png"
# Tests leave tracked files alone: the documentation's screenshot is refreshed
# only on request (RAFT_UPDATE_SCREENSHOT=1), otherwise it goes to a temporary file.
UPDATE_SCREENSHOT = os.environ.get("RAFT_UPDATE_SCREENSHOT") == "1"
IN_CI = bool(os.environ.get("CI"))
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]

if not CHROMIUM.exists() and not IN_CI:
    pytest.skip("Debian's Chromium is not installed at /usr/bin/chromium (scripts/test.sh installs it; "
                "in CI this test runs)", allow_module_level=True)
try:
    from playwright.sync_api import Page, sync_playwright
except ImportError:
    if IN_CI:
        raise
    pytest.skip("the playwright package is not installed (it is in the dev extra)", allow_module_level=True)


@pytest.fixture
def server() -> Iterator[BackgroundServer]:
    assert not missing_vendor_files(), "install the package first: its build puts socket.io-client in place"
    running = BackgroundServer(Visualizer(nodes=5, seed=1, speed=1.0), bind("127.0.0.1", 0)).start()
    yield running
    running.stop()


@pytest.fixture
def page(server: BackgroundServer) -> Iterator[Page]:
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1600, "height": 1000})
        errors: list[str] = []
        page.on("pageerror", lambda err: errors.append(str(err)))
        page.goto(f"http://127.0.0.1:{server.port}/")
        yield page
        browser.close()
        assert not errors, f"the page raised JavaScript errors: {errors}"


def leader(page: Page, other_than: str | None = None, timeout: float = 30_000) -> tuple[str, int]:
    """Wait until the ring shows a leader (not ``other_than``); return its name and term."""
    selector = "g.node.leader" + (f":not([data-node='{other_than}'])" if other_than else "")
    node = page.wait_for_selector(selector, timeout=timeout)
    assert node is not None
    name = node.get_attribute("data-node")
    term_text = node.query_selector("text.termlabel")
    assert name is not None and term_text is not None
    return name, int((term_text.text_content() or "").split()[-1])


def virtual_time(page: Page) -> float:
    value: Any = page.eval_on_selector("#scrub", "el => parseFloat(el.value)")
    return float(value)


def test_the_page_shows_a_leader_survives_its_crash_and_rewinds(page: Page, tmp_path: Path) -> None:
    """Load, see a leader, crash it, see a new leader in a higher term, scrub back to before the crash."""
    page.wait_for_selector("body[data-ready='1']", timeout=15_000)
    assert page.inner_text("#conn") == "connected"
    assert page.locator("g.node").count() == 5

    old, old_term = leader(page)
    page.fill("#kv-key", "x")
    page.fill("#kv-value", "1")
    page.click("#write-btn")
    page.wait_for_selector("#clients li:has-text('ok, index')", timeout=20_000)

    page.click(f"g.node[data-node='{old}']")
    assert page.inner_text("#selected-label") == old
    before_crash = virtual_time(page)
    page.keyboard.press("c")
    page.wait_for_selector(f"g.node.crashed[data-node='{old}']", timeout=10_000)
    assert "crash" in page.inner_text("#interventions")

    new, new_term = leader(page, other_than=old)
    assert new != old and new_term > old_term

    # Drag the scrubber back to before the crash: the server re-simulates from the seed.
    page.keyboard.press("Escape")
    page.eval_on_selector("#scrub", """(el, t) => {
        el.value = String(t);
        el.dispatchEvent(new Event('input', {bubbles: true}));
        el.dispatchEvent(new Event('change', {bubbles: true}));
    }""", before_crash)
    page.wait_for_selector(f"g.node.leader[data-node='{old}']", timeout=30_000)
    assert page.locator("g.node.crashed").count() == 0, "before the crash every node is up"
    assert page.inner_text("#play-state") == "paused"
    assert "(ahead)" in page.inner_text("#interventions"), "the crash is still recorded, ahead of us"
    assert abs(virtual_time(page) - before_crash) < 0.01

    # Show a message in the inspector, then keep a picture for the docs.
    messages = page.locator("g.msg")
    if messages.count():
        messages.first.click(force=True)
    screenshot = DOCS_SCREENSHOT if UPDATE_SCREENSHOT else tmp_path / "visualizer.png"
    page.screenshot(path=str(screenshot), full_page=True)
    assert screenshot.stat().st_size > 50_000

    # A server added now joins the ring at once (a new branch from this moment), outside the
    # configuration until the leader has appended the entry that adds it.
    page.click("#add-server-btn")
    page.wait_for_selector("g.node.outsider[data-node='n6']", timeout=10_000)
    assert page.locator("g.node").count() == 6
    assert "add n6 as a voter" in page.inner_text("#interventions")


def test_esc_closes_the_help_and_the_slider_reaches_the_fastest_speed(page: Page) -> None:
    """'?' opens the keyboard help and Esc closes it; the speed slider goes as far as ']' (2x)."""
    page.wait_for_selector("body[data-ready='1']", timeout=15_000)
    page.keyboard.press("?")
    assert page.eval_on_selector("#help", "d => d.open") is True
    page.keyboard.press("Escape")
    assert page.eval_on_selector("#help", "d => d.open") is False
    top = float(page.get_attribute("#speed", "max") or "0")
    assert 10 ** top >= 2


def test_drop_without_a_message_says_why_and_twelve_terms_have_twelve_colours(page: Page) -> None:
    """D with nothing selected explains itself; the first 12 terms get 12 different, non-grey colours."""
    page.wait_for_selector("body[data-ready='1']", timeout=15_000)
    page.keyboard.press("d")
    page.wait_for_selector("#toasts .toast.error:has-text('Select a message in flight first')", timeout=5_000)
    colours: list[str] = page.evaluate("() => Array.from({length: 12}, (_, i) => Ring.termColour(i + 1))")
    assert len(set(c.lower() for c in colours)) == 12, colours

    def is_grey(colour: str) -> bool:
        r, g, b = (int(colour[i:i + 2], 16) for i in (1, 3, 5))
        return max(r, g, b) - min(r, g, b) < 24  # no hue to speak of: grey is what a crashed server looks like

    assert not [c for c in colours if is_grey(c)]
