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


def slow_only_at_awaits(document: dict[str, Any]) -> dict[str, Any]:
    """The document without its slow calls and stalls away from the lines the view
    awaited at: on a busy machine a quick call made without await, JsonResponse() waiting
    for the GIL say, passes the thresholds too, and is rightly told as made without await;
    the tests of this trace are about the awaited calls' set-up."""
    awaited = {
        (e["request"], e["line"]) for e in document["events"] if e["kind"].startswith("await.")
    }
    slow = (kinds.CALL_BLOCKING, kinds.LOOP_BLOCKED)
    kept = [
        e
        for e in document["events"]
        if e["kind"] not in slow or (e["request"], e["line"]) in awaited
    ]
    # Numbered again: a step is found by its number.
    return {**document, "events": [{**e, "seq": seq} for seq, e in enumerate(kept, 1)]}


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
            return slow_only_at_awaits(document)
    pytest.fail("no slow asyncio.to_thread set-up in 3 runs of async-offload on a fresh server")
