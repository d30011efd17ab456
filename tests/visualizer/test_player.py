"""The concept flow follows a request's own events."""

from __future__ import annotations

import json
from pathlib import Path

from visualizer.player import flow_at
from visualizer.steps import step_rows

EXAMPLES = Path(__file__).resolve().parents[2] / "visualizer" / "examples"


def current_node(document: dict, seq: int) -> str | None:
    events = document["events"]
    received = {r["id"]: r["received_ns"] for r in document["requests"]}
    (step,) = step_rows([events[seq - 1]], received)
    history = [e for e in events[:seq] if e["request"] == step.request]
    return next((node.id for node in flow_at(step, history) if node.state == "current"), None)


def test_a_stall_is_the_views_running_on_the_loop_only_if_the_view_caused_it():
    cpu = json.loads((EXAMPLES / "async-cpu-4-requests.json").read_bytes())
    stall = next(e for e in cpu["events"] if e["kind"] == "loop.blocked")
    assert stall["held_by"]
    assert current_node(cpu, stall["seq"]) == "loop"

    # The same stall caused by code outside the views (seen on a fresh server during a
    # sync view's request) moves no request along the flow.
    stall["held_by"] = None
    assert current_node(cpu, stall["seq"]) is None

    sync = json.loads((EXAMPLES / "sync-io-4-requests.json").read_bytes())
    handoff = next(e for e in sync["events"] if e["kind"] == "thread.handoff")
    assert current_node(sync, handoff["seq"]) == "thread"
