"""Chrome Trace Event export: required fields, tracks, and slices where they belong."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.fixtures import VERSION_1_EXAMPLES
from tracer.chrome_trace import to_chrome_trace

EXAMPLES = VERSION_1_EXAMPLES


def load(name: str) -> dict[str, Any]:
    return json.loads((EXAMPLES / f"{name}.json").read_bytes())


def track_names(chrome: dict[str, Any]) -> dict[int, str]:
    return {
        e["tid"]: e["args"]["name"]
        for e in chrome["traceEvents"]
        if e["ph"] == "M" and e["name"] == "thread_name"
    }


@pytest.mark.parametrize(
    "name", ["async-io-4-requests", "sync-io-4-requests", "async-cpu-4-requests"]
)
def test_every_event_has_the_fields_the_format_requires(name):
    chrome = to_chrome_trace(load(name))

    json.dumps(chrome)
    assert chrome["displayTimeUnit"] == "ms"
    for event in chrome["traceEvents"]:
        assert isinstance(event["name"], str)
        assert isinstance(event["pid"], int) and isinstance(event["tid"], int)
        assert event["ph"] in {"M", "X", "i"}
        if event["ph"] == "M":
            assert "name" in event["args"] or "sort_index" in event["args"]
            continue
        assert isinstance(event["ts"], (int, float)) and event["ts"] >= 0
        if event["ph"] == "X":
            assert event["dur"] >= 0
        else:
            assert event["s"] == "t"


def test_it_has_a_track_per_request_and_thread_plus_the_event_loop():
    document = load("sync-io-4-requests")
    names = track_names(to_chrome_trace(document))

    assert names[1] == "event loop (MainThread)"
    workers = {e["thread"] for e in document["events"]} - {"MainThread"}
    assert len(workers) == 4
    for worker in workers:
        assert f"thread {worker}" in names.values()
    for request in document["requests"]:
        assert any(n.startswith(f"request {request['id']} (GET ") for n in names.values())


def slices(chrome: dict[str, Any], prefix: str) -> list[dict[str, Any]]:
    return [e for e in chrome["traceEvents"] if e["ph"] == "X" and e["name"].startswith(prefix)]


def test_awaits_are_slices_on_their_request_tracks():
    document = load("async-io-4-requests")
    chrome = to_chrome_trace(document)
    names = track_names(chrome)

    awaits = slices(chrome, "await fetch_data(delay_ms)")
    assert len(awaits) == 4
    resumed = [e for e in document["events"] if e["kind"] == "await.resumed"]
    origin = min(r["received_ns"] for r in document["requests"])
    for event in resumed:
        match = [a for a in awaits if names[a["tid"]].startswith(f"request {event['request']} ")]
        assert len(match) == 1
        assert match[0]["dur"] == pytest.approx(event["duration_ns"] / 1000)
        assert match[0]["ts"] == pytest.approx(
            (event["t_ns"] - event["duration_ns"] - origin) / 1000
        )


def test_blocking_calls_sit_on_their_worker_threads():
    document = load("sync-io-4-requests")
    chrome = to_chrome_trace(document)
    names = track_names(chrome)

    calls = slices(chrome, "fetch_data_blocking()")
    assert {names[c["tid"]] for c in calls} == {
        f"thread {e['thread']}" for e in document["events"] if e["kind"] == "call.blocking"
    }
    assert all(c["dur"] >= 300_000 for c in calls)  # 300 ms of I/O each, in microseconds


def test_loop_stalls_sit_on_the_event_loop_track():
    document = load("async-cpu-4-requests")
    chrome = to_chrome_trace(document)

    stalls = slices(chrome, "loop blocked by count_primes()")
    recorded = [e for e in document["events"] if e["kind"] == "loop.blocked"]
    assert len(stalls) == len(recorded) == 4
    assert {s["tid"] for s in stalls} == {1}
    assert sorted(s["dur"] for s in stalls) == sorted(e["duration_ns"] / 1000 for e in recorded)
