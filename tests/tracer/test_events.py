"""The event types of tracer/events.py: each constructor builds its kind, the documents made
of them pass the importer's checks (derived from the same types), and the docs list every
field the types declare."""

from __future__ import annotations

import copy
import re
import time
from pathlib import Path
from typing import NotRequired, TypedDict, get_type_hints

import pytest

from tracer import events
from tracer.recorder import RecordingStore
from tracer.validation import TraceRejected, shape_of, validate_trace

DOCS = Path(__file__).resolve().parents[2] / "docs" / "trace-format.md"


def one_of_each(origin: events.Origin, t_ns: int) -> list[events.Event]:
    stack = [events.stack_frame("views.py", "count_primes", 12)]
    return [
        events.request_received(origin, t_ns, method="GET", path="/run/", query="n=1"),
        events.view_type_checked(
            origin,
            t_ns,
            view="views.run",
            is_async=False,
            handler="async",
            runs_on="worker_thread",
            adapter="sync_to_async(thread_sensitive=True)",
        ),
        events.thread_handoff(
            origin, t_ns, from_thread="MainThread", to_thread="worker", waited_ns=5
        ),
        events.view_started(origin, t_ns),
        events.await_suspended(origin, t_ns, awaiting="fetch()"),
        events.await_resumed(
            origin, t_ns, awaiting="fetch()", duration_ns=9, off_loop_ns=8, suspensions=2
        ),
        events.call_blocking(
            origin,
            t_ns,
            callable="time.sleep",
            duration_ns=20,
            cpu_ns=1,
            waiting=True,
            on_event_loop=True,
            cause=events.CAUSE_WAITING,
            gil_thread=None,
            gil_request=None,
        ),
        events.loop_blocked(
            origin,
            t_ns,
            duration_ns=30,
            started_ns=t_ns - 30,
            held_by="count_primes",
            threshold_ns=20,
            culprit="views.count_primes",
            cause=events.CAUSE_COMPUTING,
            gil_thread=None,
            gil_request=None,
            cpu_ns=29,
            stack=stack,
        ),
        events.view_returned(origin, t_ns, returned="<JsonResponse status=200>"),
        events.response_started(origin, t_ns, status=200),
        events.response_finished(origin, t_ns, status=200, bytes=42, duration_ns=50),
        events.thread_hop(
            origin,
            t_ns,
            adapter=events.ADAPTER_SYNC_TO_ASYNC,
            purpose=events.HOP_DATABASE,
            target="django.db.models.query.QuerySet.count",
            from_thread="MainThread",
            to_thread="worker",
            started_ns=t_ns - 10,
            duration_ns=9,
            cpu_ns=3,
            thread_new=True,
            called_ns=t_ns - 12,
        ),
        events.await_raised(
            origin,
            t_ns,
            awaiting="fetch()",
            duration_ns=9,
            off_loop_ns=8,
            suspensions=1,
            exception="TimeoutError",
        ),
    ]


def recorded_document() -> events.TraceDocument:
    recording = RecordingStore().get_or_create("typed")
    recording.scenario = {"slug": "async-io", "title": "Async view awaiting I/O"}
    request = recording.new_request("GET", "/run/?n=1", time.monotonic_ns())
    for event in one_of_each(request.origin(), time.monotonic_ns()):
        request.emit(event)
    return recording.document()


def test_it_has_one_constructor_for_each_kind():
    built = one_of_each(events.origin("r1", None, "MainThread"), 1000)
    assert tuple(event["kind"] for event in built) == events.KINDS


@pytest.mark.parametrize("kind", events.KINDS)
def test_each_constructor_fills_exactly_the_fields_of_its_kind(kind):
    origin = events.origin("r1", "Task-1", "MainThread", ("views.py", "run", 3))
    origin["locals"] = {"delay": "5"}
    event = next(e for e in one_of_each(origin, 7) if e["kind"] == kind)
    assert {name: event[name] for name in origin} == origin
    shape = shape_of(events.KIND_TYPES[kind])
    assert set(shape.required) <= set(event) <= set(shape.required) | set(shape.optional)
    # Written in the order of the format: seq, t_ns, kind, then where it happened.
    assert list(event)[:10] == [
        "seq", "t_ns", "kind", "request", "task", "thread", "file", "function", "line", "locals",
    ]  # fmt: skip


def test_a_recording_of_every_kind_passes_the_importer():
    document = recorded_document()
    assert [event["seq"] for event in document["events"]] == list(range(1, 14))
    assert validate_trace(copy.deepcopy(document)) == document


def test_a_loop_blocked_event_leaves_out_what_was_not_measured():
    event = events.loop_blocked(
        events.origin(None, None, "MainThread", ("views.py", "run", 3)),
        100,
        duration_ns=30,
        started_ns=70,
        held_by=None,
        threshold_ns=20,
        culprit=None,
        cause=None,
        gil_thread=None,
        gil_request=None,
    )
    assert "cpu_ns" not in event and "stack" not in event
    assert (event["file"], event["function"], event["line"]) == ("views.py", "run", 3)


def test_the_importer_knows_optional_fields_from_the_types():
    document = recorded_document()
    blocking = next(e for e in document["events"] if e["kind"] == events.CALL_BLOCKING)
    # cause is NotRequired (version 1 had none); callable is required.
    del blocking["cause"]
    validate_trace(document)
    del blocking["callable"]
    with pytest.raises(TraceRejected) as rejected:
        validate_trace(document)
    assert (rejected.value.where, rejected.value.message) == ("events[6].callable", "is missing")


@pytest.mark.parametrize(
    ("kind", "field", "value", "message"),
    [
        (
            events.THREAD_HOP,
            "purpose",
            "lunch",
            "must be one of request_started, view, response_close, database, other, got 'lunch'",
        ),
        (
            events.THREAD_HOP,
            "adapter",
            "teleport",
            "must be one of sync_to_async, async_to_sync, to_thread, got 'teleport'",
        ),
        (
            events.LOOP_BLOCKED,
            "cause",
            "boredom",
            "must be one of computing, waiting, gil, preempted, got 'boredom'",
        ),
        (events.LOOP_BLOCKED, "cause", 3, "must be a string or null, got integer"),
        (events.CALL_BLOCKING, "cause", None, "must be a string, got null"),
        (events.LOOP_BLOCKED, "stack", [{"file": "f", "function": "g"}], "is missing"),
        (events.THREAD_HOP, "thread_new", "yes", "must be true or false, got string"),
        (events.AWAIT_RAISED, "exception", None, "must be a string, got null"),
    ],
)
def test_the_importer_checks_each_field_as_its_type_says(kind, field, value, message):
    document = recorded_document()
    index, event = next((i, e) for i, e in enumerate(document["events"]) if e["kind"] == kind)
    event[field] = value
    with pytest.raises(TraceRejected) as rejected:
        validate_trace(document)
    assert rejected.value.message == message
    assert rejected.value.where.startswith(f"events[{index}].{field}")


def test_the_derivation_refuses_a_type_it_has_no_check_for():
    class Odd(TypedDict):
        ratio: NotRequired[float]

    with pytest.raises(TypeError, match=r"Odd\.ratio: no check for <class 'float'>"):
        shape_of(Odd)


def _own_fields(kind: str) -> set[str]:
    common = set(get_type_hints(events.Origin)) | {"seq", "t_ns", "kind"}
    return set(get_type_hints(events.KIND_TYPES[kind])) - common


@pytest.mark.parametrize("kind", events.KINDS)
def test_the_format_docs_list_every_field_of_each_kind(kind):
    rows = [line for line in DOCS.read_text().splitlines() if line.startswith(f"| `{kind}` ")]
    assert len(rows) == 1
    named = set(re.findall(r"`([a-z_]+)`", rows[0].split("|")[3]))
    assert _own_fields(kind) <= named
