"""Real recorded runs shared by the tests of the breakdown and of the loop picture: each
is recorded once per session, on Daphne (ASGI) or gunicorn 1x1 (WSGI)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import record
from visualizer.server_process import DaphneServer, GunicornServer

REQUESTS, DELAY_MS, WORK = 4, 300, 60_000


@pytest.fixture(scope="session")
def async_io_run(traced_server: DaphneServer) -> dict[str, Any]:
    return record(traced_server, "async-io", requests=REQUESTS, delay_ms=DELAY_MS)


@pytest.fixture(scope="session")
def sync_io_run(traced_server: DaphneServer) -> dict[str, Any]:
    return record(traced_server, "sync-io", requests=REQUESTS, delay_ms=DELAY_MS)


@pytest.fixture(scope="session")
def async_cpu_run(traced_server: DaphneServer) -> dict[str, Any]:
    return record(traced_server, "async-cpu", requests=REQUESTS, work=WORK)


@pytest.fixture(scope="session")
def wsgi_sync_io_run(gunicorn_1x1: GunicornServer) -> dict[str, Any]:
    return record(gunicorn_1x1, "sync-io", requests=REQUESTS, delay_ms=DELAY_MS)


def without_loop_data(document: dict[str, Any]) -> dict[str, Any]:
    """The document as a tracer before loop_clock.py recorded it."""
    older = {
        **document,
        "requests": [
            {k: v for k, v in r.items() if k not in ("loop_ns", "loop_wait_ns", "loop_steps")}
            for r in document["requests"]
        ],
        "events": [{k: v for k, v in e.items() if k != "called_ns"} for e in document["events"]],
    }
    return older
