from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import of_kind, record
from tracer import events as kinds
from visualizer.server_process import DaphneServer


def awaited_slow_set_up(document: dict[str, Any]) -> bool:
    """Whether setting up a call the view awaited was itself slow on the event loop."""
    awaited = {
        (e["request"], e["line"]) for e in document["events"] if e["kind"].startswith("await.")
    }
    return any(
        e["on_event_loop"] and (e["request"], e["line"]) in awaited
        for e in of_kind(document, kinds.CALL_BLOCKING)
    )


@pytest.fixture(scope="session")
def offload_trace(server_data_dir: str) -> dict[str, Any]:
    """A real async-offload trace, 4 requests at once, in which setting up
    asyncio.to_thread was slow on the loop: each new worker thread must get the GIL from
    the ones already computing. That happens on a fresh server, whose thread pool is still
    empty, so each try gets a server of its own."""
    env = {"TRACING_ENABLED": "true", "DATA_DIR": server_data_dir}
    for _ in range(3):
        with DaphneServer(env=env) as server:
            document = record(server, "async-offload", requests=4)
        if awaited_slow_set_up(document):
            return document
    pytest.fail("no slow asyncio.to_thread set-up in 3 runs of async-offload on a fresh server")
