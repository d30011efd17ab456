from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from visualizer.chromium import BrowserUnavailable, chromium_executable
from visualizer.server_process import CHROMIUM_ARGS, DaphneServer


@pytest.fixture(scope="session")
def browser_server(server_data_dir: str) -> Iterator[DaphneServer]:
    env = {
        "TRACING_ENABLED": "true",
        "DATA_DIR": server_data_dir,
        "DJANGO_SETTINGS_MODULE": "tests.browser.settings",
    }
    with DaphneServer(env=env) as server:
        yield server


@pytest.fixture(scope="session")
def chromium() -> str | None:
    """The browser to drive: found, or installed on first use (see visualizer/chromium.py)."""
    try:
        return chromium_executable()
    except BrowserUnavailable as error:
        pytest.exit(str(error), returncode=1)


@pytest.fixture(scope="module")
def browser(chromium: str | None) -> Iterator[Browser]:
    # Playwright's sync API runs an event loop in this thread until it stops (hence module
    # scope, and browser tests last: see tests/conftest.py). Django refuses database work
    # in a thread with a running loop unless told otherwise.
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    yield page
    context.close()


def run_in_lab(page: Page, scenario: str | None, requests: int, delay_ms: int) -> None:
    """Fill in the lab form on this page (whatever else it asks is left as it is) and press
    Run. Choosing the scenario resets the pause question: None keeps the one chosen."""
    if scenario is not None:
        page.get_by_label("Scenario").select_option(scenario)
    page.get_by_label("Concurrent requests", exact=True).fill(str(requests))
    page.get_by_label("I/O delay (ms)", exact=True).fill(str(delay_ms))
    page.get_by_role("button", name="Run").click()
