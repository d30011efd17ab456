"""Every text shown about a trace follows the trace's mode: WSGI runs are never told in the
words of an event loop, a GIL wait is not a missing await, a slow call is computing or
waiting as its trace says, and old traces still read."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import of_kind, record
from tests.fixtures import VERSION_1_EXAMPLES
from tracer import events as kinds
from visualizer.lab.predictions import reveal
from visualizer.learning.quiz import quiz_for
from visualizer.learning.transcript import build_transcript
from visualizer.scenarios.catalog import get_scenario
from visualizer.server_process import GunicornServer
from visualizer.traces.moments import key_moments
from visualizer.traces.narration import (
    cause_of,
    cells,
    context_of,
    context_of_document,
    culprit_words,
    narration,
    request_list,
)
from visualizer.traces.player import player_state
from visualizer.traces.sources import DocumentSource
from visualizer.traces.steps import steps_from_trace

EXAMPLES = VERSION_1_EXAMPLES


@pytest.fixture(scope="module")
def wsgi_1x1(server_data_dir: str) -> Iterator[GunicornServer]:
    env = {"TRACING_ENABLED": "true", "DATA_DIR": server_data_dir}
    with GunicornServer(env, workers=1, threads=1) as server:
        yield server


def all_texts(document: dict[str, Any]) -> dict[str, list[str]]:
    """Every text the product shows about this trace, by where it is shown."""
    source = DocumentSource(document)
    scenario = get_scenario(source.scenario_slug)
    table, narrations, flow = [], [], set()
    for step in steps_from_trace(document):
        table += [step.action, step.awaited, step.blocking]
    for index in range(1, source.total + 1):
        state = player_state(scenario, source, index)
        narrations.append(state.narration)
        flow |= {node.label for node in state.flow if node.state in ("current", "visited")}
    moments = key_moments(document["events"], document["requests"], context_of_document(document))
    _, questions = quiz_for(source)
    return {
        "table": table,
        "narration": narrations,
        "flow": sorted(flow),
        "moments": [f"{m.title}. {m.explanation}" for m in moments],
        "reveal": reveal(document, None, None).reasons,
        "transcript": [build_transcript(source).markdown()],
        "quiz": [f"{q.prompt} {q.explanation}" for q in questions],
    }


def containing(texts: dict[str, list[str]], pattern: str) -> dict[str, list[str]]:
    found = {
        where: [t for t in shown if re.search(pattern, t, flags=re.IGNORECASE)]
        for where, shown in texts.items()
    }
    return {where: shown for where, shown in found.items() if shown}


def served_second(document: dict[str, Any]) -> tuple[str, str]:
    first, second = sorted(document["requests"], key=lambda r: r["received_ns"])[:2]
    return first["id"], second["id"]


@pytest.mark.parametrize("slug", ["sync-io", "async-io"])
def test_it_tells_a_wsgi_run_without_an_event_loop_and_names_the_queue(wsgi_1x1, slug):
    document = record(wsgi_1x1, slug, requests=3, delay_ms=100)
    assert document["server"]["interface"] == "wsgi"
    texts = all_texts(document)

    assert containing(texts, r"event loop") == {}
    assert containing(texts, r"other requests (went|go) on") == {}
    first, second = served_second(document)
    received = next(
        s
        for s in steps_from_trace(document)
        if s.kind == kinds.REQUEST_RECEIVED and s.request == second
    )
    assert received.blocking.startswith("Waited ") and f"request {first} was done" in (
        received.blocking
    )
    assert any(f"took it only once request {first} was done" in t for t in texts["narration"])
    assert any("for the server to take it" in t for t in texts["moments"])
    assert any("waited to be taken" in t for t in texts["reveal"])
    assert "1 thread" in " ".join(texts["reveal"])


def test_an_async_view_under_wsgi_runs_through_async_to_sync_on_a_private_loop(wsgi_1x1):
    document = record(wsgi_1x1, "async-io", requests=1, delay_ms=20)
    (check,) = of_kind(document, kinds.VIEW_TYPE_CHECKED)
    context = context_of_document(document)
    action, _, _ = cells(check, context)
    told = narration(check, context)

    for text in (action, told):
        assert "async_to_sync" in text and "private loop" in text
        assert "event loop" not in text
    moment = next(
        m
        for m in key_moments(document["events"], document["requests"], context)
        if m.step == check["seq"]
    )
    assert "async_to_sync" in moment.explanation and "private loop" in moment.explanation


def test_an_async_view_under_asgi_is_never_said_to_need_no_thread(traced_server):
    document = record(traced_server, "async-io", requests=2, delay_ms=50)
    texts = all_texts(document)

    assert containing(texts, r"no thread is needed|needs no thread") == {}
    assert any("event loop" in t for t in texts["narration"])


def slow_texts_of(document: dict[str, Any]) -> list[str]:
    """The table cells and narration of the trace's slow calls and stalls, and the key
    moments, reveal and quiz (which speak of them)."""
    context = context_of_document(document)
    shown = []
    for event in document["events"]:
        if event["kind"] in (kinds.CALL_BLOCKING, kinds.LOOP_BLOCKED):
            shown += [*cells(event, context), narration(event, context)]
    texts = all_texts(document)
    return shown + texts["moments"] + texts["reveal"] + texts["quiz"]


def test_a_slow_set_up_of_an_awaited_call_is_never_told_as_a_missing_await(offload_trace):
    document = copy.deepcopy(offload_trace)

    assert not [t for t in slow_texts_of(document) if "no await" in t.lower()]
    assert not [t for t in all_texts(document)["narration"] if "no await" in t.lower()]


def test_a_gil_cause_set_on_a_real_offload_trace_is_told_as_a_gil_wait(offload_trace):
    # Whether the tracer finds a GIL wait depends on the machine (see the offload tests);
    # the words are checked on a real trace whose slow events are all marked as GIL waits.
    document = copy.deepcopy(offload_trace)
    slow = [e for e in document["events"] if e["kind"] in (kinds.CALL_BLOCKING, kinds.LOOP_BLOCKED)]
    computing = next(r["id"] for r in document["requests"] if r["id"] != slow[0]["request"])
    for event in slow:
        event.update(cause="gil", gil_request=computing, gil_thread="asyncio_0")
    context = context_of_document(document)

    for event in slow:
        texts = [*cells(event, context), narration(event, context)]
        assert any("GIL" in t for t in texts), texts
        assert f"request {computing}'s code computed" in narration(event, context)
        assert not [t for t in texts if "no await" in t.lower()]
    assert not [t for t in slow_texts_of(document) if "no await" in t.lower()]
    # The reveal speaks of loop stalls only (20 ms and more), not of every slow call (10 ms
    # and more): a set-up slow enough to stall the loop is told there as a GIL wait.
    reveal_text = " ".join(all_texts(document)["reveal"])
    if of_kind(document, kinds.LOOP_BLOCKED):
        assert "GIL" in reveal_text, reveal_text
    else:
        assert "blocked" not in reveal_text, reveal_text


def test_a_slow_read_is_told_as_computing_or_waiting_as_its_trace_says(traced_server):
    document = record(traced_server, "async-file", requests=1, size_kb=40 * 1024)
    calls = of_kind(document, kinds.CALL_BLOCKING)
    assert calls, "reading 40 MiB should take longer than the blocking threshold"
    context = context_of_document(document)

    # Words of each cause. On a busy machine a read can also wait for the GIL (another
    # thread computed) or for a core: the text then says that instead.
    words = {"computing": "computing", "waiting": "waiting", "gil": "GIL", "preempted": "core"}
    for call in calls:
        said = cause_of(call)
        other = "waiting" if said == "computing" else "computing"
        action, _, _ = cells(call, context)
        told = narration(call, context)
        assert said is not None and words[said] in action and words[said] in told
        if said in ("computing", "waiting"):
            assert other not in action and other not in told
        assert "disk" not in told

        flipped = {**call, "cause": other, "waiting": other == "waiting"}
        assert other in narration(flipped, context) and said not in narration(flipped, context)


def blocked_the_loop(document: dict[str, Any]) -> bool:
    """Whether the view stalled the loop, or called something slow on it without await."""
    awaited = {
        (e["request"], e["line"]) for e in document["events"] if e["kind"].startswith("await.")
    }
    return any(e["held_by"] for e in of_kind(document, kinds.LOOP_BLOCKED)) or any(
        e["on_event_loop"] and (e["request"], e["line"]) not in awaited
        for e in of_kind(document, kinds.CALL_BLOCKING)
    )


def test_an_async_view_that_blocks_the_loop_shows_the_blocking_node(traced_server):
    cpu = record(traced_server, "async-cpu", requests=1, work=30_000)
    io = record(traced_server, "async-io", requests=1, delay_ms=20)

    assert blocked_the_loop(cpu)
    assert "blocks the loop: everyone waits" in all_texts(cpu)["flow"]
    # On a busy machine even async-io's set-up can stall the loop now and then: the node
    # shows exactly when the trace says so.
    io_flow = all_texts(io)["flow"]
    assert ("blocks the loop: everyone waits" in io_flow) == blocked_the_loop(io)


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.json")), ids=lambda p: p.stem)
def test_every_text_of_a_version_1_example_renders(path):
    document = json.loads(path.read_bytes())
    assert document["version"] == 1
    texts = all_texts(document)

    for where in ("table", "narration", "moments", "transcript", "flow"):
        assert texts[where], where
    assert containing(texts, r"Recorded event") == {}
    # An old trace has no cause: a slow call is computing or waiting, never a GIL wait.
    assert containing(texts, r"GIL") == {}


def test_a_stall_without_a_culprit_says_only_that_the_tracer_does_not_follow_it():
    stall = {"held_by": None, "line": None}
    assert culprit_words(stall) == "code the tracer does not follow"
    assert culprit_words({**stall, "culprit": "json.dumps"}) == "json.dumps, outside the views"


def test_the_cause_of_an_old_trace_comes_from_its_waiting_flag_and_never_is_the_gil():
    call = {"kind": kinds.CALL_BLOCKING, "waiting": True}
    assert cause_of(call) == "waiting"
    assert cause_of({**call, "waiting": False}) == "computing"
    assert cause_of({**call, "cause": "gil"}) == "gil"
    assert cause_of({"kind": kinds.LOOP_BLOCKED}) is None


def test_a_request_queued_only_when_it_waited_for_another_to_finish():
    requests = [
        {"id": "r1", "received_ns": 1_000, "finished_ns": 300_000_000, "client_sent_ns": 500},
        {
            "id": "r2",
            "received_ns": 301_000_000,
            "finished_ns": 600_000_000,
            "client_sent_ns": 600,
        },
        {"id": "r3", "received_ns": 2_000_000, "finished_ns": 290_000_000, "client_sent_ns": 700},
    ]
    context = context_of({"interface": "wsgi", "workers": 1, "threads": 1}, requests)

    waited, ahead = context.queued_behind("r2")
    assert ahead == ["r1", "r3"] and waited == 301_000_000 - 600
    assert context.queued_behind("r1") == (0, []) and context.queued_behind("r3") == (0, [])
    assert context.server_threads == "1 thread"
    # No client timings: the trace cannot tell, so nothing is said.
    bare = context_of({"interface": "wsgi"}, [{**r, "client_sent_ns": None} for r in requests])
    assert bare.queued_behind("r2") == (0, []) and bare.server_threads == ""


def test_django_s_own_hop_under_asgi_says_the_request_holds_a_thread():
    hop = {
        "seq": 3,
        "t_ns": 10_000_000,
        "kind": kinds.THREAD_HOP,
        "request": "r1",
        "task": "Task-1",
        "thread": "ThreadPoolExecutor-0_0",
        "file": None,
        "function": None,
        "line": None,
        "locals": {},
        "adapter": "sync_to_async",
        "purpose": "request_started",
        "target": "django.core.signals.request_started",
        "from_thread": "MainThread",
        "to_thread": "ThreadPoolExecutor-0_0",
        "started_ns": 9_000_000,
        "duration_ns": 1_000_000,
        "cpu_ns": 900_000,
        "thread_new": True,
    }
    asgi = context_of({"interface": "asgi"}, [], [hop])
    told = narration(hop, asgi)

    assert "request_started" in told and "holds a thread" in told and "new" in told
    action, _, blocking = cells(hop, asgi)
    assert "ThreadPoolExecutor-0_0" in action and "event loop was free" in blocking
    assert "holds a thread" not in narration(hop, context_of({"interface": "wsgi"}, []))


def test_lists_of_requests_are_cut():
    assert request_list([f"r{i}" for i in range(1, 9)]) == "Requests r1, r2, r3, r4, r5 and 3 more"
    assert request_list(["r2"]) == "Request r2"


def test_an_async_view_s_type_check_tells_of_the_request_s_thread_only_when_hops_show_it():
    document = json.loads((EXAMPLES / "async-io-1-request.json").read_bytes())
    (check,) = [e for e in document["events"] if e["kind"] == kinds.VIEW_TYPE_CHECKED]
    plain = narration(check, context_of_document(document))
    assert "event loop" in plain and "thread" not in plain

    hop = {
        **check,
        "kind": kinds.THREAD_HOP,
        "adapter": "sync_to_async",
        "purpose": "request_started",
        "to_thread": "ThreadPoolExecutor-0_0",
    }
    with_hop = narration(check, context_of(document["server"], document["requests"], [hop]))
    assert "a thread the request holds until it ends" in with_hop


def test_a_busy_machines_delay_of_the_loop_is_told_as_such_and_is_no_lesson():
    """A stall the tracer saw as preempted (set here on a copy of a real trace: a busy
    machine cannot be ordered up) is told as the machine's, and is neither a key moment,
    nor time the loop was blocked, nor a step of the concept flow."""
    from visualizer.lab.metrics import lab_metrics
    from visualizer.traces.narration import flow_node

    document = json.loads((EXAMPLES / "async-io-4-requests.json").read_bytes())
    resumed = of_kind(document, "await.resumed")[0]
    stall = {
        **resumed,
        "kind": kinds.LOOP_BLOCKED,
        "seq": len(document["events"]) + 1,
        "duration_ns": 25_000_000,
        "started_ns": resumed["t_ns"] - 25_000_000,
        "held_by": "async_io",
        "threshold_ns": 20_000_000,
        "cause": "preempted",
        "cpu_ns": 1_000_000,
    }
    for name in ("awaiting", "off_loop_ns", "suspensions"):
        stall.pop(name)
    document["events"].append(stall)
    context = context_of_document(document)

    action, _, blocking = cells(stall, context)
    told = narration(stall, context)
    assert "waited for a CPU core" in action and "no code here held the loop" in blocking
    assert "the machine was busy with other work" in told and "1.0 ms" in told
    assert stall["seq"] not in [
        m.step for m in key_moments(document["events"], document["requests"])
    ]
    assert lab_metrics(document).loop_blocked_ms == 0
    assert flow_node(stall, context) is None


def test_a_hop_of_other_code_keeps_its_name_as_written():
    context = context_of({"interface": "asgi"}, [])
    hop = {
        "kind": kinds.THREAD_HOP,
        "request": "r1",
        "thread": "asyncio_0",
        "purpose": "other",
        "adapter": "to_thread",
        "target": "visualizer.scenarios.scenario_views.count_primes",
        "from_thread": "MainThread",
        "to_thread": "asyncio_0",
        "started_ns": 0,
        "duration_ns": 5_000_000,
        "cpu_ns": 5_000_000,
        "thread_new": True,
        "t_ns": 5_000_000,
    }
    action = cells(hop, context)[0]
    assert action.startswith("visualizer.scenarios.scenario_views.count_primes ran in asyncio_0")
    django = cells({**hop, "purpose": "response_close"}, context)[0]
    assert django.startswith("Closing the response ran in asyncio_0")
