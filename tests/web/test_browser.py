"""Both pages in a real headless Chromium (Debian's package, driven by Playwright), against a real bridge and
simulator: no console errors, every sensor shown, charts that grow, an outage seen and recovered from.

Screenshots go to test-artifacts/ (see conftest.py).  Every wait is for something on the page.
"""

from __future__ import annotations

import os
import shutil

import pytest

from pibridge.web.server import WebServer
from pibridge.web.sim_view import SimView

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    if not shutil.which(CHROMIUM):
        message = f"{CHROMIUM} is missing: scripts/system-deps.sh --test installs Debian's chromium"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")), executable_path=CHROMIUM, headless=True, args=ARGS,
            viewport={"width": 1280, "height": 900},
        )
        yield context
        context.close()


@pytest.fixture
def open_page(browser):
    """open_page(url) -> (page, errors): *errors* collects console errors and uncaught exceptions."""
    pages = []

    def open_(url: str):
        page = browser.new_page()
        errors: list[str] = []
        page.on("console", lambda m: errors.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(f"page error: {e}"))
        page.set_default_timeout(30000)
        page.goto(url)
        pages.append(page)
        return page, errors

    yield open_
    for page in pages:
        page.close()


def wait_js(page, expression: str, what: str, arg=None) -> None:
    """Wait until *expression* is true on the page; on a timeout, say what was awaited and what the page showed."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        page.wait_for_function(expression, arg=arg)
    except PlaywrightTimeout:
        shown = page.evaluate("() => document.querySelector('header')?.innerText + ' | ' + "
                              "(document.querySelector('#offline-banner')?.hidden ? '' : 'BANNER')")
        raise AssertionError(f"timed out waiting for {what}; the page shows: {shown}") from None


def text_is(page, selector: str, text: str) -> None:
    wait_js(page, "([s, t]) => document.querySelector(s)?.textContent === t", f"{selector} to read {text!r}",
            [selector, text])


def number(page, selector: str) -> int:
    return int(page.inner_text(selector).replace(",", ""))


def test_bridge_page_shows_sensors_growing_charts_and_an_outage_with_the_outbox_filling_and_emptying(
        bridge_page, open_page, artifacts):
    running = bridge_page()
    page, errors = open_page(running.url)
    text_is(page, "#agent-pill", "agent connected")
    for sensor, metrics in {"greenhouse": ["temperature", "humidity"], "door": ["contact"]}.items():
        card = page.locator(f'[data-sensor="{sensor}"]')
        card.wait_for()
        for metric in metrics:
            assert card.locator(f'[data-metric="{metric}"] canvas').is_visible()
    assert page.locator("#agent-client").inner_text() == running.bridge.client_id
    chart = '[data-sensor="greenhouse"] [data-metric="temperature"] canvas'
    wait_js(page, f"() => document.querySelector('{chart}').dataset.points > 0", "a first chart point")
    first = int(page.get_attribute(chart, "data-points"))
    wait_js(page, f"() => document.querySelector('{chart}').dataset.points >= {first + 4}", "4 more chart points")
    wait_js(page, "() => / °C$/.test(document.querySelector("
            "'[data-sensor=\"greenhouse\"] [data-metric=\"temperature\"] .metric-value').textContent)",
            "the temperature in °C")

    running.sim.stop_broker()
    text_is(page, "#agent-pill", "agent not connected")
    wait_js(page, "() => Number(document.querySelector('#outbox-depth').textContent) > 0", "readings in the outbox")
    rising_from = number(page, "#outbox-depth")
    wait_js(page, f"() => Number(document.querySelector('#outbox-depth').textContent) >= {rising_from + 4}",
            "the outbox depth rising")
    page.screenshot(path=str(artifacts / "bridge-page-outage.png"), full_page=True)

    running.sim.start_broker()
    text_is(page, "#agent-pill", "agent connected")
    text_is(page, "#outbox-depth", "0")
    assert number(page, "#delivery-replayed") >= rising_from + 4
    page.screenshot(path=str(artifacts / "bridge-page.png"), full_page=True)
    assert errors == []


def test_sim_page_shows_what_arrived_and_the_cut_fills_in_late(bridge_page, open_page, artifacts):
    running = bridge_page()
    web = WebServer(SimView(running.sim, cut_seconds=3.0), "127.0.0.1", 0).start()
    try:
        page, errors = open_page(web.url)
        text_is(page, "#broker-pill", "agent reachable")
        card = page.locator('[data-sensor="greenhouse"]')
        card.wait_for()
        text_is(page, '[data-sensor="greenhouse"] [data-metric="temperature"] .metric-meta', "°C")
        text_is(page, '[data-sensor="door"] [data-metric="contact"] .metric-meta', "open/closed")
        chart = '[data-sensor="greenhouse"] [data-metric="temperature"] canvas'
        wait_js(page, f"() => document.querySelector('{chart}').dataset.points > 3", "chart points")
        assert int(page.get_attribute(chart, "data-late")) == 0

        page.click("#cut")
        wait_js(page, "() => document.querySelector('#broker-pill').textContent.startsWith('agent cut off')",
                "the cut shown")
        assert page.is_disabled("#cut")
        text_is(page, "#broker-pill", "agent reachable")
        # The readings taken while the agent was away arrive late, from the bridge's outbox.
        wait_js(page, f"() => document.querySelector('{chart}').dataset.late > 0", "late values drawn")
        box = page.locator(chart).bounding_box()
        page.mouse.move(box["x"] + box["width"] - 40, box["y"] + box["height"] / 2)  # the value under the pointer
        page.screenshot(path=str(artifacts / "sim-page.png"), full_page=True)
        assert number(page, "#received") > 0
        assert errors == []
    finally:
        web.stop()
