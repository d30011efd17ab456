"""The concept flow follows a request's own events."""

from __future__ import annotations

import json

from tests.fixtures import VERSION_1_EXAMPLES
from visualizer.traces.narration import context_of_document
from visualizer.traces.player import flow_at
from visualizer.traces.steps import step_rows

EXAMPLES = VERSION_1_EXAMPLES


def current_node(document: dict, seq: int) -> str | None:
    events = document["events"]
    received = {r["id"]: r["received_ns"] for r in document["requests"]}
    (step,) = step_rows([events[seq - 1]], received)
    history = [e for e in events[:seq] if e["request"] == step.request]
    flow = flow_at(step, history, context_of_document(document))
    return next((node.id for node in flow if node.state == "current"), None)


def test_a_stall_is_the_view_blocking_the_loop_only_if_the_view_caused_it():
    cpu = json.loads((EXAMPLES / "async-cpu-4-requests.json").read_bytes())
    stall = next(e for e in cpu["events"] if e["kind"] == "loop.blocked")
    assert stall["held_by"]
    assert current_node(cpu, stall["seq"]) == "loop-blocked"

    # The same stall caused by code outside the views (seen on a fresh server during a
    # sync view's request) moves no request along the flow.
    stall["held_by"] = None
    assert current_node(cpu, stall["seq"]) is None

    sync = json.loads((EXAMPLES / "sync-io-4-requests.json").read_bytes())
    handoff = next(e for e in sync["events"] if e["kind"] == "thread.handoff")
    assert current_node(sync, handoff["seq"]) == "thread"


def test_a_call_that_blocks_the_loop_is_not_the_good_case_of_running_on_it():
    cpu = json.loads((EXAMPLES / "async-cpu-4-requests.json").read_bytes())
    call = next(e for e in cpu["events"] if e["kind"] == "call.blocking")
    assert call["on_event_loop"]
    assert current_node(cpu, call["seq"]) == "loop-blocked"

    io = json.loads((EXAMPLES / "async-io-4-requests.json").read_bytes())
    started = next(e for e in io["events"] if e["kind"] == "view.started")
    assert current_node(io, started["seq"]) == "loop"
