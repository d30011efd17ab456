"""The time strip on real recorded runs: its lanes, where it marks the current step, which
step each position of it opens, one axis for two runs side by side, and escaping."""

from __future__ import annotations

import html
import json
import re
from typing import Any

import pytest
from django.test import Client

from visualizer.traces.library import EXAMPLES_DIR, import_trace
from visualizer.traces.time_strip import (
    LANES_SHOWN,
    MAX_SEGMENTS,
    POSITIONS,
    Lane,
    Lanes,
    Span,
    lanes_of,
    marked,
    step_at,
    step_times,
    time_strip,
)

HOSTILE = '<script>alert("x")</script>'


def example(name: str) -> dict[str, Any]:
    return json.loads((EXAMPLES_DIR / f"{name}.json").read_bytes())


def run_start(document: dict[str, Any]) -> int:
    return min(r.get("client_sent_ns") or r["received_ns"] for r in document["requests"])


def test_it_has_a_lane_per_request_the_loop_and_each_thread_the_views_ran_in():
    document = example("sync-io-4-requests")
    lanes = lanes_of(document)
    assert lanes is not None

    by_kind = {
        kind: [lane for lane in lanes.lanes if lane.kind == kind]
        for kind in ("request", "loop", "thread")
    }
    assert [lane.label.split()[0] for lane in by_kind["request"]] == [
        r["id"] for r in document["requests"]
    ]
    assert [lane.label for lane in by_kind["loop"]] == ["event loop"]
    view_threads = {e["thread"] for e in document["events"] if e["kind"] == "view.started"}
    assert {lane.label.removeprefix("thread ") for lane in by_kind["thread"]} >= view_threads
    # Each sync view waits to be served, runs in its thread, and is blocked in the call.
    for lane in by_kind["request"]:
        assert [span.phase for span in lane.spans] == ["waiting", "thread", "blocked"]
    # The strip lasts from the first request sent to the last answer in (or what is drawn).
    last = max(r.get("client_done_ns") or r["finished_ns"] for r in document["requests"])
    drawn = max(span.end_ns for lane in lanes.lanes for span in lane.spans)
    assert lanes.length_ns == max(last, drawn) - run_start(document)


def test_the_loop_lane_shows_the_stalls_of_async_cpu_and_no_loop_is_drawn_under_wsgi(
    wsgi_sync_io_run,
):
    cpu = lanes_of(example("async-cpu-4-requests"))
    assert cpu is not None
    (loop,) = [lane for lane in cpu.lanes if lane.kind == "loop"]
    stalls = [e for e in example("async-cpu-4-requests")["events"] if e["kind"] == "loop.blocked"]
    assert sum(span.phase == "stall" for span in loop.spans) == len(stalls) > 0

    wsgi = lanes_of(wsgi_sync_io_run)
    assert wsgi is not None
    assert not [lane for lane in wsgi.lanes if lane.kind == "loop"]
    assert sum(lane.kind == "request" for lane in wsgi.lanes) == len(wsgi_sync_io_run["requests"])
    # One thread served them in turn: each waited to be served at least as long as the
    # requests served before it took to run.
    waited = {
        lane.label.split()[0]: sum(
            span.end_ns - span.start_ns for span in lane.spans if span.phase == "waiting"
        )
        for lane in wsgi.lanes
        if lane.kind == "request"
    }
    served = sorted(wsgi_sync_io_run["requests"], key=lambda r: r["received_ns"])
    for place, request in enumerate(served):
        ran_before = sum(r["finished_ns"] - r["received_ns"] for r in served[:place])
        assert waited[request["id"]] >= ran_before


def test_the_marker_stands_at_the_current_steps_instant():
    document = example("async-cpu-4-requests")
    lanes = lanes_of(document)
    assert lanes is not None
    stall = next(e for e in document["events"] if e["kind"] == "loop.blocked")

    strip = time_strip(lanes, times=step_times(document["events"]), at_ns=stall["t_ns"])

    expected = (stall["t_ns"] - run_start(document)) / lanes.length_ns * 100
    assert strip.marker == pytest.approx(expected)
    assert 0 < strip.marker < 100
    position = strip.positions[strip.current_position]
    assert position.left <= strip.marker <= position.left + position.width
    assert f"This step is at {strip.marker_at} since the run began." in strip.sentences


@pytest.mark.parametrize(
    "name", ["async-io-4-requests", "sync-io-4-requests", "async-cpu-4-requests"]
)
def test_each_position_opens_the_latest_step_at_or_before_its_time(name):
    document = example(name)
    lanes = lanes_of(document)
    assert lanes is not None
    strip = time_strip(lanes, times=step_times(document["events"]))

    assert len(strip.positions) == POSITIONS
    for index, position in enumerate(strip.positions):
        middle = lanes.origin_ns + (index + 0.5) * lanes.length_ns / POSITIONS
        before = [e for e in document["events"] if e["t_ns"] <= middle]
        latest = max(before, key=lambda e: (e["t_ns"], e["seq"]))["seq"] if before else 1
        assert position.step == latest, index
    # Moving along the strip reaches steps of the whole run, not one moment.
    assert len({position.step for position in strip.positions}) >= 4


def test_the_step_at_a_time_before_the_first_step_is_the_first():
    times = step_times(example("async-io-4-requests")["events"])
    assert step_at(times, times[0][0] - 1) == times[0][1]
    assert step_at(times, times[-1][0] + 10**9) == times[-1][1]


def test_two_runs_side_by_side_share_one_axis():
    short, long = lanes_of(example("async-io-4-requests")), lanes_of(example("async-cpu-1-request"))
    assert short is not None and long is not None
    if short.length_ns > long.length_ns:
        short, long = long, short
    axis = long.length_ns

    alone = time_strip(short)
    shared, longer = time_strip(short, axis_ns=axis), time_strip(long, axis_ns=axis)

    assert shared.ticks == longer.ticks
    assert shared.ticks != alone.ticks
    # On the shared axis the shorter run takes its share of the width, in the same places.
    scale = short.length_ns / axis
    assert scale < 0.9
    for lane_alone, lane_shared in zip(alone.lanes, shared.lanes, strict=True):
        for seg_alone, seg_shared in zip(lane_alone.segments, lane_shared.segments, strict=True):
            assert seg_shared.left == pytest.approx(seg_alone.left * scale)


def test_a_lane_of_many_spans_is_drawn_in_stretches_of_its_main_phase_and_told_exactly():
    # 3,000 spans: 1 ms running, 2 ms suspended, ..., then one 3 s stall at the end.
    spans = []
    for index in range(1500):
        start = index * 3_000_000
        spans += [
            Span("loop", start, start + 1_000_000),
            Span("suspended", start + 1_000_000, start + 3_000_000),
        ]
    spans.append(Span("stall", 4_500_000_000, 7_500_000_000))
    lanes = Lanes(0, 7_500_000_000, [Lane("event loop", spans, "loop")])

    (lane,) = time_strip(lanes).lanes

    assert len(lane.segments) <= MAX_SEGMENTS
    assert [segment.phase for segment in lane.segments] == ["suspended", "stall"]
    suspended, stall = lane.segments
    assert suspended.left == 0 and stall.left + stall.width == pytest.approx(100)
    assert stall.left == pytest.approx(60, abs=100 / MAX_SEGMENTS)
    assert stall.duration_ns == pytest.approx(3_000_000_000, abs=1000)
    assert suspended.label == "mostly suspended on an await: 3000 ms of 4500 ms"
    # The words count every span, not the stretches drawn.
    assert lane.sentence == (
        "event loop: running on the event loop 1500 times, 1500 ms in all, suspended on an "
        "await 1500 times, 3000 ms in all, event loop stalled 3000 ms."
    )


def test_only_the_first_threads_lanes_are_drawn_and_the_rest_counted():
    threads = [Lane(f"thread t{n}", [Span("thread", n, n + 10)], "thread") for n in range(30)]
    strip = time_strip(Lanes(0, 100, threads))
    assert [lane.label for lane in strip.lanes] == [f"thread t{n}" for n in range(LANES_SHOWN)]
    assert strip.hidden_threads == 30 - LANES_SHOWN
    assert f"{30 - LANES_SHOWN} more threads not drawn." in strip.sentences


def test_marking_a_drawn_strip_is_drawing_it_with_the_marker():
    document = example("async-cpu-4-requests")
    lanes = lanes_of(document)
    assert lanes is not None
    times = step_times(document["events"])
    for event in document["events"][::5]:
        at = event["t_ns"]
        assert marked(time_strip(lanes, times=times), lanes, at) == time_strip(
            lanes, times=times, at_ns=at
        )


def test_ticks_are_round_times_from_zero():
    document = example("sync-io-4-requests")
    lanes = lanes_of(document)
    assert lanes is not None
    strip = time_strip(lanes)
    assert strip.ticks[0].label == "0 ms" and strip.ticks[0].left == 0
    assert all(re.fullmatch(r"\d+(\.\d+)? m?s", tick.label) for tick in strip.ticks)
    assert [t.left for t in strip.ticks] == sorted(t.left for t in strip.ticks)
    assert 3 <= len(strip.ticks) <= 7


@pytest.mark.django_db
def test_the_page_draws_the_strip_with_a_link_per_position_that_works_without_javascript():
    trace = import_trace((EXAMPLES_DIR / "async-cpu-4-requests.json").read_bytes())
    client = Client()
    page = client.get(f"/traces/{trace.recording_id}/?step=5", follow=True).content.decode()

    strip = re.search(r'<figure class="time-strip" id="time-strip">(.*?)</figure>', page, re.S)
    assert strip, "the player draws the time strip"
    links = re.findall(r'<a href="([^"]+)" data-strip-step="(\d+)"', strip[1])
    assert len(links) == POSITIONS
    # With JavaScript, one handler opens them all (player.js): no link of its own for htmx.
    assert "data-player-links" in strip[1] and "hx-get" not in strip[1]
    assert 'aria-hidden="true"' in strip[1] and "data-strip-text" in strip[1]
    # The current position is marked, and is the one Tab reaches.
    assert len(re.findall(r'aria-current="true" tabindex="0"', strip[1])) == 1
    href, step = links[-1]
    opened = client.get(html.unescape(href), follow=True).content.decode()
    assert f'data-step="{step}"' in opened


@pytest.mark.django_db
def test_text_from_a_trace_is_escaped_in_the_strip():
    document = example("sync-io-1-request")
    document["id"] = "hostile-strip"
    document["requests"][0]["url"] = HOSTILE
    for event in document["events"]:
        if event.get("to_thread"):
            event["to_thread"] = HOSTILE
    trace = import_trace(json.dumps(document).encode())

    page = Client().get(f"/traces/{trace.recording_id}/?step=3", follow=True).content.decode()

    strip = re.search(r'<figure class="time-strip" id="time-strip">(.*?)</figure>', page, re.S)
    assert strip
    assert HOSTILE not in strip[1]
    assert html.escape(HOSTILE) in strip[1]
