"""Live latency: from an event's tracer timestamp to its row in Chromium's DOM.

Starts the app under Daphne, opens the async-io page in Debian's Chromium, and presses
Run (--requests concurrent requests, 300 ms of I/O each) until at least --events rows have
arrived live; that is one round, and --rounds rounds run in the same page. Each row
carries its event's tracer timestamp (server CLOCK_MONOTONIC, in ``data-t-ns``); a
MutationObserver in the page notes the wall-clock time each row is added.
This process converts the monotonic timestamps to wall-clock time with its own offset
(one machine, one clock), and prints p50 / p95 / max of the difference for every round,
then the median round's p95 against the target.

    uv run python bench/live_latency.py [--rounds 3] [--events 200] [--requests 4]

Target: p95 <= 50 ms on loopback.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import django
from playwright.sync_api import Page, expect, sync_playwright

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import (  # noqa: E402
    add_rounds_argument,
    check_rounds,
    machine,
    median_against_target,
)
from visualizer.chromium import chromium_executable  # noqa: E402
from visualizer.server_process import CHROMIUM_ARGS, DaphneServer  # noqa: E402

# Notes each live row once, when it is added to the table.
OBSERVER = """
window.rowTimes = {};
new MutationObserver((mutations) => {
  const now = performance.timeOrigin + performance.now();
  for (const mutation of mutations) {
    for (const node of mutation.addedNodes) {
      if (node.nodeName === "TR" && node.id.startsWith("step-") && !(node.id in rowTimes)) {
        rowTimes[node.dataset.recording + "/" + node.id] = [node.dataset.tNs, now];
      }
    }
  }
}).observe(document.body, {childList: true, subtree: true});
"""
DELAY_MS, TIME_LIMIT_S = 300, 180  # a round


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_rounds_argument(parser)
    parser.add_argument("--events", type=int, default=200, help="rows to measure a round")
    parser.add_argument("--requests", type=int, default=4, help="concurrent requests a run")
    arguments = parser.parse_args()
    check_rounds(parser, arguments.rounds)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "visualizer.settings")
    django.setup()
    from visualizer.scenarios.forms import MAX_RUN_REQUESTS

    if not 1 <= arguments.requests <= MAX_RUN_REQUESTS:
        # The bench presses the page's Run button, and the page's form takes no more.
        parser.error(f"--requests must be from 1 to {MAX_RUN_REQUESTS} (the run form's limit)")
    print(machine())
    print(
        f"Chromium headless; runs of {arguments.requests} concurrent async-io requests, "
        f"{DELAY_MS} ms of I/O each"
    )
    data_dir = tempfile.mkdtemp(prefix="live-latency-")
    errors: list[str] = []
    p95s = []
    try:
        with (
            DaphneServer(env={"TRACING_ENABLED": "true", "DATA_DIR": data_dir}) as server,
            sync_playwright() as playwright,
        ):
            browser = playwright.chromium.launch(
                executable_path=chromium_executable(), args=CHROMIUM_ARGS
            )
            page = browser.new_page()
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.goto(f"{server.base_url}/scenarios/async-io/")
            expect(page.locator("#connection")).to_be_hidden()
            page.evaluate(OBSERVER)
            page.get_by_label("Concurrent requests", exact=True).fill(str(arguments.requests))
            page.get_by_label("I/O delay (ms)", exact=True).fill(str(DELAY_MS))
            for round_number in range(1, arguments.rounds + 1):
                page.evaluate("window.rowTimes = {}")
                rows, runs = measure_round(page, arguments.events)
                p95s.append(report_round(round_number, rows, runs))
            browser.close()
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
    print(f"browser console errors: {len(errors)}")
    median_against_target("p95 tracer timestamp to row in the DOM", p95s, 50, " ms")


def measure_round(page: Page, events: int) -> tuple[list[tuple[str, float]], int]:
    """Press Run until ``events`` rows have arrived (or the time limit); the rows' tracer
    timestamps and DOM times, and how many runs that took."""
    deadline = time.monotonic() + TIME_LIMIT_S
    runs = 0
    while page.evaluate("Object.keys(rowTimes).length") < events:
        if time.monotonic() > deadline:
            print("time limit reached; reporting what arrived")
            break
        page.get_by_role("button", name="Run", exact=True).click()
        expect(page.locator("#run-status")).to_contain_text("Finished", timeout=30_000)
        runs += 1
    return page.evaluate("Object.values(rowTimes)"), runs


def report_round(round_number: int, rows: list[tuple[str, float]], runs: int) -> float:
    offset_ns = time.time_ns() - time.monotonic_ns()
    latencies = [dom_ms - (int(t_ns) + offset_ns) / 1e6 for t_ns, dom_ms in rows]
    if len(latencies) < 2:
        sys.exit("error: too few rows arrived to compute percentiles")
    p95 = statistics.quantiles(latencies, n=100)[94]  # exclusive method
    print(
        f"round {round_number}: {runs} runs, {len(latencies)} rows; tracer timestamp to row "
        f"in the DOM: p50 {statistics.median(latencies):.2f} ms, p95 {p95:.2f} ms, "
        f"max {max(latencies):.2f} ms"
    )
    return p95


if __name__ == "__main__":
    main()
