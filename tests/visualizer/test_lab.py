"""The concurrency lab: figures and timeline from traces, and real runs through the page."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import pytest

from visualizer.lab import lab_metrics, reveal, timeline

EXAMPLES = Path(__file__).resolve().parents[2] / "visualizer" / "examples"


def example(name: str) -> dict:
    return json.loads((EXAMPLES / f"{name}.json").read_bytes())


def test_it_computes_the_figures_from_the_trace():
    document = example("sync-io-4-requests")
    metrics = lab_metrics(document)

    durations = sorted(r["duration_ns"] / 1e6 for r in document["requests"])
    assert metrics.requests == 4
    assert metrics.max_ms == durations[-1]
    assert metrics.threads_used == 4
    assert metrics.peak_concurrency == 4
    assert metrics.loop_blocked_ms == 0


def test_it_adds_up_the_loop_stalls_and_sees_one_request_at_a_time():
    document = example("async-cpu-4-requests")
    metrics = lab_metrics(document)

    stalls = [e["duration_ns"] for e in document["events"] if e["kind"] == "loop.blocked"]
    assert metrics.loop_blocked_ms == pytest.approx(sum(stalls) / 1e6)
    assert metrics.threads_used == 1
    # Run one after another: the last request waited for the three before it.
    fastest = min(r["duration_ns"] for r in document["requests"]) / 1e6
    assert metrics.max_ms >= 3 * fastest * 0.9


def test_the_timeline_has_a_lane_per_request_the_loop_and_each_thread():
    document = example("sync-io-4-requests")
    lanes, length_ms = timeline(document)

    labels = [lane.label for lane in lanes]
    assert labels[:4] == [f"r{i} GET /run/sync-io/?delay_ms=300" for i in range(1, 5)]
    assert labels[4] == "event loop"
    assert len([label for label in labels if label.startswith("thread ")]) == 4
    first = lanes[0].segments
    assert [s.phase for s in first] == ["waiting", "thread", "blocked"]
    assert all(0 <= s.left <= 100 and s.left + s.width <= 100.2 for s in first)
    assert length_ms > 300


def post_lab_run(app_server, **fields: str) -> tuple[str, str]:
    """Submit the lab form as a browser would; the results page and the recording id."""
    with httpx.Client(base_url=app_server.base_url, timeout=90) as client:
        page = client.get("/lab/")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
        form = {"csrfmiddlewaretoken": token, "scenario": "sync-io", "threads": "1", **fields}
        response = client.post("/lab/run/", data=form, headers={"Referer": str(page.url)})
        assert response.status_code == 302, response.text
        results = client.get(response.headers["location"])
    assert results.status_code == 200
    recording = re.search(r"recording=([A-Za-z0-9_-]+)", response.headers["location"])[1]
    return results.text, recording


@pytest.mark.parametrize(("server", "expected"), [("asgi", "daphne"), ("wsgi", "gunicorn")])
def test_a_lab_run_through_the_page(traced_server, server, expected):
    text, recording = post_lab_run(
        traced_server,
        requests="6",
        delay_ms="100",
        server=server,
        predict_overlap="together",
        predict_wall_ms="100",
    )

    assert expected in text
    assert text.count('<li class="lane">') >= 6 + 1
    stored = httpx.get(f"{traced_server.base_url}/traces/{recording}/export.json").json()
    assert all(r["client_done_ns"] >= r["finished_ns"] for r in stored["requests"])
    assert all(0 < r["tracer_ns"] < r["duration_ns"] for r in stored["requests"])
    assert "Time in the tracer itself" in text and "not recorded" not in text
    assert "You expected 100 ms" in text
    assert "You expected them to run all at the same time" in text


def test_the_reveal_comes_from_the_trace():
    threads = reveal(example("sync-io-4-requests"), "one-by-one", 1200)
    assert threads.overlap == "together"
    assert threads.overlap_right is False
    assert any("4 threads" in reason for reason in threads.reasons)
    assert threads.wall_error_percent == pytest.approx(
        (1200 - threads.wall_ms) / threads.wall_ms * 100
    )

    cpu = reveal(example("async-cpu-4-requests"), "one-by-one", None)
    assert cpu.overlap == "one-by-one" and cpu.overlap_right is True
    assert any("blocked 4 times" in r and "count_primes" in r for r in cpu.reasons)

    awaits = reveal(example("async-io-4-requests"), None, None)
    assert awaits.overlap == "together"
    assert any("await fetch_data(delay_ms)" in reason for reason in awaits.reasons)


def test_a_changed_trace_changes_the_reveal():
    document = example("async-io-4-requests")
    document["events"] = [e for e in document["events"] if e["kind"] != "await.resumed"]
    assert not any("await" in reason for reason in reveal(document, None, None).reasons)


def test_a_wsgi_run_on_two_workers_is_merged_into_one_trace(traced_server):
    from tracer.validation import validate_trace

    _, recording = post_lab_run(
        traced_server, requests="6", delay_ms="200", server="wsgi", workers="2"
    )
    document = httpx.get(f"{traced_server.base_url}/traces/{recording}/export.json").json()

    validate_trace(document)
    assert document["server"]["processes"] == 2
    assert len(document["requests"]) == 6
    workers = {r["id"].split("-")[0] for r in document["requests"]}
    assert len(workers) == 2
    assert [e["seq"] for e in document["events"]] == list(range(1, len(document["events"]) + 1))
    # Two workers of one thread: six 200 ms requests take about three rounds.
    assert lab_metrics(document).wall_ms >= 3 * 200 * 0.9
    assert f"{recording}-w" not in httpx.get(f"{traced_server.base_url}/traces/").text
