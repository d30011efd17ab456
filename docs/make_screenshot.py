"""Regenerate docs/screenshot.png from the real page: a real run of async-io with two
concurrent requests, shown at the step where the second request pauses at its await.

    uv run python docs/make_screenshot.py
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from playwright.sync_api import expect, sync_playwright

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from visualizer.chromium import chromium_executable  # noqa: E402
from visualizer.server_process import CHROMIUM_ARGS, DaphneServer  # noqa: E402


def main() -> None:
    with (
        tempfile.TemporaryDirectory() as data_dir,
        DaphneServer(env={"DATA_DIR": data_dir, "TRACING_ENABLED": "true"}) as server,
        sync_playwright() as playwright,
    ):
        browser = playwright.chromium.launch(
            executable_path=chromium_executable(), args=CHROMIUM_ARGS
        )
        page = browser.new_page(viewport={"width": 1440, "height": 1100})
        page.goto(f"{server.base_url}/scenarios/async-io/")
        expect(page.locator("#connection")).to_be_hidden()
        page.get_by_label("Concurrent requests").fill("2")
        page.get_by_label("I/O delay (ms)").fill("300")
        page.get_by_role("button", name="Run", exact=True).click()
        expect(page.locator("#run-status")).to_contain_text("Finished", timeout=10_000)
        pauses = page.locator("#rows tr", has_text="Pauses at line")
        pauses.nth(1).locator("th a").click()
        expect(page.locator("#narration-text")).to_contain_text("awaits")
        page.screenshot(path=str(ROOT / "docs" / "screenshot.png"), full_page=True)
        browser.close()


if __name__ == "__main__":
    main()
