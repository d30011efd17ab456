"""Playground: from Run to the first streamed row of an edited async-io view.

Runs async-io's code as the editor gives it, edited (one comment line added), through the
playground as the server's Run does (``run_edited``: the checks, a worker in the sandbox,
or in local mode where bubblewrap does not work), 2 concurrent requests with 100 ms of
I/O, --runs times per series, in this process. A run's figure is the time from the call to
the moment the server reads the worker's first event (``request.received``, the first row
of the run's table) off the worker's stream; the whole run's time is printed beside it.
The series:

* ``cold``: no warm worker (PLAYGROUND_WARM_WORKERS=0), each run starts its worker;
* ``warm``: one warm worker, and each run waits until its replacement has been started
  and set up (a visitor who reads the trace before running again);
* ``back-to-back``: one warm worker, each run right after the last (the replacement may
  still be setting up).

    uv run python bench/playground.py [--runs 20] [--series cold warm back-to-back]

Target: p95 <= 1.5 s.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SERIES = ("cold", "warm", "back-to-back")
TARGET_S = 1.5
REQUESTS, DELAY_MS = 2, 100


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20, help="runs a series (at least 3)")
    parser.add_argument("--series", nargs="+", choices=SERIES, default=list(SERIES))
    arguments = parser.parse_args()
    if arguments.runs < 3:
        parser.error("--runs must be at least 3: fewer give no percentile")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "visualizer.settings")
    os.environ["DATA_DIR"] = tempfile.mkdtemp(prefix="bench-playground-")
    # This process listens nowhere: local mode, where the sandbox cannot run, is safe.
    os.environ.setdefault("VISUALIZER_LISTEN_HOSTS", "127.0.0.1")
    import django

    django.setup()
    from bench.common import machine
    from visualizer.playground.sandbox import current_mode

    print(machine())
    state = current_mode()
    print(f"playground mode: {state.mode}; {REQUESTS} requests of async-io, {DELAY_MS} ms I/O")
    if state.mode == "off":
        sys.exit(f"error: the playground is off here: {state.reason}")
    results = {series: run_series(series, arguments.runs) for series in arguments.series}
    met = True
    for series, firsts in results.items():
        p50, p95 = percentiles(firsts)
        verdict = "met" if p95 <= TARGET_S else "NOT met"
        met = met and p95 <= TARGET_S
        print(
            f"{series}: Run to first streamed row over {len(firsts)} runs: p50 {p50:.3f} s, "
            f"p95 {p95:.3f} s, target p95 <= {TARGET_S} s: {verdict}"
        )
    sys.exit(0 if met else 1)


def percentiles(figures: list[float]) -> tuple[float, float]:
    return statistics.median(figures), statistics.quantiles(figures, n=100)[94]


def run_series(series: str, runs: int) -> list[float]:
    from django.conf import settings

    from visualizer.playground.sandbox import Limits, current_mode, warm_workers

    settings.PLAYGROUND_WARM_WORKERS = 0 if series == "cold" else 1
    warm_workers.end_waiting()  # a series starts with none left by the one before
    if series != "cold":
        warm_workers.fill(current_mode().mode, Limits.from_settings())
    firsts = []
    for number in range(1, runs + 1):
        if series == "warm" and not warm_workers.wait_until_set_up(120):
            sys.exit("error: no warm worker had set up within 120 s")
        first, whole, warm = asyncio.run(one_run())
        firsts.append(first)
        print(
            f"{series} run {number}: first row {first:.3f} s, whole run {whole:.3f} s"
            f"{' (warm worker)' if warm else ''}"
        )
    return firsts


async def one_run() -> tuple[float, float, bool]:
    """One edited run: seconds to its first event, to its end, and whether a warm worker
    ran it."""
    from visualizer.playground.editable import starting_code
    from visualizer.playground.runs import run_edited
    from visualizer.scenarios.catalog import SCENARIOS
    from visualizer.scenarios.runs import RunRequest

    scenario = SCENARIOS["async-io"]
    source = "# edited for the bench\n" + starting_code(scenario)
    first: list[float] = []

    def on_report(report: dict[str, object]) -> None:
        if report.get("kind") == "event" and not first:
            first.append(time.perf_counter())

    started = time.perf_counter()
    result = await run_edited(
        scenario, source, RunRequest(REQUESTS, {"delay_ms": DELAY_MS}), on_report
    )
    ended = time.perf_counter()
    if result.document is None or not first:
        sys.exit(f"error: the run made no trace: {result.problems} {result.stopped}")
    return first[0] - started, ended - started, result.warm


if __name__ == "__main__":
    main()
