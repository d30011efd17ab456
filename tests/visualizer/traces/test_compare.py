"""Two recordings side by side, aligned by phase, with their differences in words."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from tracer.breakdown import breakdowns
from visualizer.traces.compare import compare, phases_of
from visualizer.traces.library import EXAMPLES_DIR, load_examples

pytestmark = pytest.mark.django_db


def example(name: str) -> dict:
    return json.loads((EXAMPLES_DIR / f"{name}.json").read_bytes())


def test_each_phase_is_read_from_the_requests_own_steps():
    document = example("async-io-1-request")
    request = document["requests"][0]
    phases = phases_of(request["id"], request["received_ns"], document["events"])
    by_kind = {e["kind"]: e["t_ns"] for e in reversed(document["events"])}
    assert phases.at_ms["received"] == 0
    assert (
        phases.at_ms["first pause"] == (by_kind["await.suspended"] - request["received_ns"]) / 1e6
    )
    assert phases.at_ms["response"] == request["duration_ns"] / 1e6

    sync = example("sync-io-1-request")  # a plain def view pauses in its blocking call
    request = sync["requests"][0]
    blocking = next(e for e in sync["events"] if e["kind"] == "call.blocking")
    phases = phases_of(request["id"], request["received_ns"], sync["events"])
    assert phases.at_ms["resumed"] == (blocking["t_ns"] - request["received_ns"]) / 1e6


def test_the_differences_name_the_requests_and_times_of_each():
    a, b = example("async-cpu-4-requests"), example("async-io-4-requests")
    comparison = compare(a, b)
    slowest = max(r["duration_ns"] for r in a["requests"])
    assert comparison.differences[0].startswith("The slowest request took ")
    assert f"{slowest / 1e6:.0f} ms in A" in comparison.differences[0]
    # Every other line names a part and the request that spent longest in it, on each side.
    longest_a = {b.request: b for b in breakdowns(a)}
    for line in comparison.differences[1:]:
        assert " in A, " in line and line.endswith("in B (the longest of each).")
        assert line.split(" in A, ")[0].split(": ")[-1].split(" ")[0] in longest_a


def test_the_compare_page_works_without_javascript_and_escapes_names():
    load_examples()
    from visualizer.traces.models import Trace

    Trace.objects.filter(recording_id="example-sync-io-4-requests").update(
        name="<script>alert(1)</script>"
    )
    page = Client().get("/traces/compare/").content.decode()
    assert '<select name="a" required>' in page and "&lt;script&gt;alert(1)" in page
    assert "<script>alert(1)" not in page

    url = "/traces/compare/?a=example-sync-io-4-requests&b=example-async-io-4-requests"
    answer = Client().get(url)
    html = answer.content.decode()
    assert answer.status_code == 200
    assert "What differs" in html and "The slowest request took" in html
    assert html.count("Phases, in ms since each request arrived") == 2
    assert '<option value="example-sync-io-4-requests" selected>' in html

    missing = Client().get("/traces/compare/?a=example-sync-io-4-requests&b=nope")
    assert (
        missing.status_code == 404 and "No recording &#x27;nope&#x27;" in missing.content.decode()
    )
