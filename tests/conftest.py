from __future__ import annotations

import asyncio
import os
import tempfile
from collections.abc import Iterator
from typing import Any

import pytest

from visualizer.scenarios.catalog import SCENARIOS
from visualizer.scenarios.runs import record_run
from visualizer.server_process import DaphneServer, GunicornServer

# Every test client is 127.0.0.1, so the per-visitor limits on runs (visualizer/limits.py)
# would make one test wait for another's background run, and record() sends its concurrent
# requests (up to 50) to the UI's /run/ addresses: the servers the tests start get room for
# them (tests/visualizer/test_limits.py sets the limits it tests).
for name, value in {
    "LIMIT_LAB_RUNS_PER_CLIENT": "8",
    "LIMIT_LAB_RUNS": "8",
    "LIMIT_WSGI_RUNS": "4",
    "LIMIT_LIVE_RUNS_PER_CLIENT": "16",
    "LIMIT_LIVE_RUNS": "16",
    "LIMIT_VIEW_REQUESTS_PER_CLIENT": "100",
    "LIMIT_VIEW_REQUESTS": "100",
    # A machine busy with other work (another job beside the suite) took 80 s to migrate
    # and start Daphne: the servers the tests start, and those they start, get time.
    "SERVER_START_TIMEOUT_S": "300",
}.items():
    os.environ.setdefault(name, value)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Browser tests last: Playwright's sync API keeps an event loop running in the main
    thread while a browser is open, and asyncio.run() cannot start inside it."""
    items.sort(key=lambda item: item.get_closest_marker("browser") is not None)


@pytest.fixture(scope="session")
def server_data_dir() -> Iterator[str]:
    with tempfile.TemporaryDirectory(prefix="visualizer-test-") as path:
        yield path


@pytest.fixture(scope="session")
def traced_server(server_data_dir: str) -> Iterator[DaphneServer]:
    """The app under a real Daphne process, tracing on."""
    with DaphneServer(env={"TRACING_ENABLED": "true", "DATA_DIR": server_data_dir}) as server:
        yield server


@pytest.fixture(scope="session")
def gunicorn_1x1(server_data_dir: str) -> Iterator[GunicornServer]:
    """The app under gunicorn (WSGI), one worker of one thread, tracing on; shared by the
    truth checks."""
    env = {"TRACING_ENABLED": "true", "DATA_DIR": server_data_dir}
    with GunicornServer(env, workers=1, threads=1) as server:
        yield server


def record(server: DaphneServer, slug: str, requests: int = 1, **params: int) -> dict[str, Any]:
    """Send real concurrent requests to a scenario and return the recorded trace."""
    return asyncio.run(
        record_run(server.base_url, SCENARIOS[slug], requests=requests, params=params)
    )


def kinds(document: dict[str, Any], request: str | None = None) -> list[str]:
    return [e["kind"] for e in document["events"] if request is None or e["request"] == request]


def of_kind(
    document: dict[str, Any], kind: str, request: str | None = None
) -> list[dict[str, Any]]:
    return [
        e
        for e in document["events"]
        if e["kind"] == kind and (request is None or e["request"] == request)
    ]


# A busy machine holds a quick step of any run (Django's, Daphne's, the view's) past the
# stall threshold now and then, by tens of milliseconds: the OS gives the core to other work.
BUSY_MACHINE_MS = 60


def without_short_stalls(document: dict[str, Any], shorter_than_ms: int) -> dict[str, Any]:
    """The document without its event-loop stalls and slow calls shorter than
    ``shorter_than_ms``.

    A busy machine adds such events to any run: the OS gives the core to another process
    for tens of milliseconds in the middle of any step, Django's, Daphne's or the view's
    own, and a quick call or callback then passes the thresholds (20 ms, 10 ms). What a
    test asks of the view's own waits holds apart from them: those last at least the
    upstream's delay, so give ``shorter_than_ms`` that delay and they stay in.
    """
    noise = {"loop.blocked", "call.blocking"}
    shortest = shorter_than_ms * 1_000_000
    return {
        **document,
        "events": [
            e for e in document["events"] if e["kind"] not in noise or e["duration_ns"] >= shortest
        ],
    }
