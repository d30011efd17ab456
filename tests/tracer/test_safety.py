"""Tracing never changes what a view returns, and leaves nothing behind when off."""

from __future__ import annotations

import asyncio
import sys
import time
from typing import Any

import pytest
from channels.testing import HttpCommunicator
from django.core.asgi import get_asgi_application

from tests.tracer import hostile_views
from tracer.django_integration import (
    RECORDING_HEADER,
    TraceRequests,
    get_tracer,
    recording_header_value,
)
from tracer.instrumentation import LOCAL_EVENTS, TOOL_NAME, register_view
from tracer.recorder import RequestTrace

pytestmark = pytest.mark.urls("tests.tracer.hostile_views")

register_view(hostile_views.hostile_async)
register_view(hostile_views.hostile_sync)


@pytest.fixture
def tracing():
    instrumentation = get_tracer().instrumentation
    instrumentation.enable()
    yield instrumentation
    instrumentation.disable()


async def fetch(path: str, recording: str) -> tuple[dict[str, Any], float]:
    app = TraceRequests(get_asgi_application())
    headers = [
        (b"host", b"localhost"),
        (RECORDING_HEADER, recording_header_value(recording).encode()),
    ]
    communicator = HttpCommunicator(app, "GET", path, headers=headers)
    started = time.monotonic()
    response = await communicator.get_response(timeout=30)
    return response, time.monotonic() - started


@pytest.mark.parametrize("path", ["/hostile-async/", "/hostile-sync/"])
def test_it_returns_the_same_response_with_hostile_locals(path, tracing):
    hostile_views.repr_calls.clear()
    tracing.disable()
    untraced, untraced_time = asyncio.run(fetch(path, "untraced"))
    tracing.enable()
    traced, traced_time = asyncio.run(fetch(path, f"hostile{path.strip('/')}"))

    assert traced == untraced
    assert hostile_views.repr_calls == []
    assert traced_time < untraced_time + 1.0
    recording = get_tracer().store.get(f"hostile{path.strip('/')}")
    assert recording is not None
    returned = next(e for e in recording.events if e["kind"] == "view.returned")
    assert returned["locals"]["raising"] == "<RaisingRepr>"
    assert returned["locals"]["text"] == "<HostileStr>"
    assert all(len(value) <= 200 for value in returned["locals"].values())


@pytest.mark.parametrize("path", ["/hostile-async/", "/hostile-sync/"])
def test_it_returns_the_same_response_when_the_tracer_itself_fails(path, tracing, monkeypatch):
    untraced, _ = asyncio.run(fetch(path, "before-failure"))
    errors_before = tracing.errors

    def broken_emit(self, kind, **fields):
        raise RuntimeError("tracer bug")

    monkeypatch.setattr(RequestTrace, "emit", broken_emit)
    traced, _ = asyncio.run(fetch(path, "failing"))

    assert traced == untraced
    assert tracing.errors > errors_before


def test_it_leaves_nothing_instrumented_when_disabled(tracing):
    original_run = tracing._original_handle_run
    assert sys.monitoring.get_tool(tracing._tool_id) == TOOL_NAME
    code = hostile_views.hostile_async.__code__
    assert sys.monitoring.get_local_events(tracing._tool_id, code) == LOCAL_EVENTS
    tool_id = tracing._tool_id

    tracing.disable()
    tracing.disable()  # idempotent

    assert sys.monitoring.get_tool(tool_id) is None
    assert asyncio.events.Handle._run is original_run
    assert tracing.instrumented == frozenset()
    hostile_views.repr_calls.clear()
    response, _ = asyncio.run(fetch("/hostile-async/", "while-off"))
    assert response["status"] == 200
    assert get_tracer().store.get("while-off") is None
    tracing.enable()
    tracing.enable()  # idempotent
    assert sys.monitoring.get_local_events(tracing._tool_id, code) == LOCAL_EVENTS
