"""The watchdog names what held the event loop from the loop thread's stack, tells waiting
for the GIL from computing and waiting, and awaits that end with an exception are
recorded. Each test runs an event loop in this process with an Instrumentation on."""

from __future__ import annotations

import asyncio
import gc
import inspect
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.tracer import stall_views
from tracer import instrumentation as instrumentation_module
from tracer import procfs
from tracer.instrumentation import Instrumentation, register_view
from tracer.recorder import RecordingStore, RequestTrace, current_request
from tracer.validation import validate_trace
from tracer.watchdog import THREAD_NAME, SyscallReader, classify

for _view in stall_views.VIEWS:
    register_view(_view)


@pytest.fixture
def tracing() -> Iterator[Instrumentation]:
    # The app's own instrumentation may be on (another test enabled it): step it aside.
    other = instrumentation_module._active
    if other is not None:
        other.disable()
    instrumentation = Instrumentation()
    instrumentation.enable()
    yield instrumentation
    instrumentation.disable()
    if other is not None:
        other.enable()


Call = tuple[Callable[..., Any], tuple[Any, ...], float]


def run(tracing: Instrumentation, *calls: Call) -> tuple[dict[str, Any], list[Any], dict]:
    """Run each (view, args, start delay) as one traced request on one event loop; return
    the recording, the views' results, and each request's frame bookkeeping as it was when
    its view ended (before the request finished)."""
    recording = RecordingStore().get_or_create("watchdog-test")
    left: dict[str, dict[int, Any]] = {}

    async def one(view: Callable[..., Any], args: tuple[Any, ...], delay: float) -> Any:
        if delay:
            await asyncio.sleep(delay)
        request = recording.new_request("GET", f"/{view.__name__}/", time.monotonic_ns())
        current_request.set(request)
        tracing.request_started(request)
        try:
            return await view(*args)
        finally:
            left[request.id] = dict(request.frames)
            tracing.request_finished(request)

    async def main() -> list[Any]:
        return await asyncio.gather(*(one(*call) for call in calls), return_exceptions=True)

    results = asyncio.run(main())
    document = validate_trace(recording.document())
    return document, results, left


def of_kind(document: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [e for e in document["events"] if e["kind"] == kind]


def line_of(function: Callable[..., Any], text: str) -> int:
    lines, first = inspect.getsourcelines(function)
    return first + next(i for i, line in enumerate(lines) if text in line)


def longest_stall(document: dict[str, Any]) -> dict[str, Any]:
    stalls = of_kind(document, "loop.blocked")
    assert stalls, "no loop.blocked event"
    return max(stalls, key=lambda e: e["duration_ns"])


def test_a_stall_in_the_views_own_loop_names_the_views_line(tracing):
    document, results, _ = run(tracing, (stall_views.busy_view, (100,), 0))

    assert results == ["done"]
    stall = longest_stall(document)
    # No call of the view held the loop for long: its own loop did.
    assert all(
        call["duration_ns"] < stall["duration_ns"] // 2
        for call in of_kind(document, "call.blocking")
    )
    spin = line_of(stall_views.busy_view, "while time.monotonic()")
    assert stall["function"] == "busy_view"
    assert stall["line"] in (spin, spin + 1)
    assert stall["held_by"] == "busy_view"
    assert stall["culprit"] == "tests.tracer.stall_views.busy_view"
    assert stall["stack"][-1]["function"] == "busy_view"
    tracer_dir = os.path.dirname(instrumentation_module.__file__)
    assert not any(frame["file"].startswith(tracer_dir) for frame in stall["stack"])
    # On a busy machine the loop thread may get well under a whole core, but its time
    # was spent computing or waiting for a core.
    assert stall["cause"] == "computing"
    assert stall["cpu_ns"] > 0


def test_a_blocking_call_of_the_view_names_the_callable_at_the_views_line(tracing):
    document, results, _ = run(tracing, (stall_views.sleeping_view, (100,), 0))

    assert results == [100]
    stall = longest_stall(document)
    assert stall["function"] == "sleeping_view"
    assert stall["line"] == line_of(stall_views.sleeping_view, "time.sleep(ms / 1000)")
    assert stall["held_by"] == "time.sleep"
    assert stall["culprit"] == "time.sleep"
    assert stall["stack"][-1]["function"] == "sleeping_view"
    assert stall["cause"] == "waiting"
    # The stalled callback was a step of the request's task.
    assert stall["task"] == of_kind(document, "view.started")[0]["task"]
    (call,) = of_kind(document, "call.blocking")
    assert call["cause"] == "waiting"
    assert call["gil_thread"] is None


def spin_in_the_server(ms: int) -> None:
    deadline = time.monotonic() + ms / 1000
    while time.monotonic() < deadline:
        pass


async def view_then_server_work(ms: int) -> int:
    # As under Daphne: the view's last step runs on into the server's code (writing the
    # response, its access log) in the same loop callback.
    slept = await stall_views.sleeping_view(ms)
    spin_in_the_server(50)
    return slept


def test_a_measured_call_beats_samples_that_saw_only_the_servers_code_after_the_view(
    tracing, monkeypatch
):
    # The watchdog samples only after the view's call ended, as it may on a busy machine.
    tracing.watchdog.sample_after_ns = 75_000_000
    seen: list[Any] = []

    def spy(samples, long_ns):
        seen.extend(samples)
        return instrumentation_module.pick.__wrapped__(samples, long_ns)

    spy.__wrapped__ = instrumentation_module.pick  # type: ignore[attr-defined]
    monkeypatch.setattr(instrumentation_module, "pick", spy)
    document, results, _ = run(tracing, (view_then_server_work, (60,), 0))

    assert results == [60]
    assert seen and all(sample.location is None for sample in seen), seen
    assert seen[-1].holder.endswith("spin_in_the_server")
    stall = longest_stall(document)
    assert stall["held_by"] == "time.sleep"
    assert stall["function"] == "sleeping_view"
    assert stall["line"] == line_of(stall_views.sleeping_view, "time.sleep(ms / 1000)")
    # The stack seen was the server's, not the holder's: it is not shown as its evidence.
    assert stall.get("stack") is None


def test_a_blocking_call_in_an_awaited_helper_names_the_helpers_line(tracing):
    document, results, _ = run(tracing, (stall_views.helper_view, (100,), 0))

    assert results == [100]
    stall = longest_stall(document)
    assert stall["function"] == "sleepy_helper"
    assert stall["line"] == line_of(stall_views.sleepy_helper, "time.sleep(ms / 1000)")
    assert stall["held_by"] == "sleepy_helper"
    assert [frame["function"] for frame in stall["stack"][-2:]] == ["helper_view", "sleepy_helper"]
    assert stall["cause"] == "waiting"
    assert stall["cpu_ns"] < stall["duration_ns"] // 2


def test_waiting_for_the_gil_while_other_threads_compute_is_neither_computing_nor_waiting(
    tracing,
):
    # Alone, forty time.sleep(0) take well under a millisecond: no stall to speak of.
    alone, _, _ = run(tracing, (stall_views.gil_hungry_view, (40,), 0))
    assert all(e["cause"] != "gil" for e in of_kind(alone, "loop.blocked"))

    # With two threads computing, each time.sleep(0) waits for one of them to let go of
    # the GIL: the loop thread is slow but hardly uses the CPU. On a busy machine a stall
    # can instead be a wait for a core or in the sleep itself (also true), so up to three runs are
    # recorded until one shows a GIL wait; no run may call the stall anything else.
    work = 3_000_000
    gil_waits = []
    # The test process's collector is paused meanwhile: late in a long test session a
    # collection of its whole heap can land on the loop thread inside the to_thread call,
    # which is then rightly "computing"; that is not what this test is about.
    gc.collect()
    gc.disable()
    try:
        for _ in range(3):
            document, results, _ = run(
                tracing,
                (stall_views.offload_view, (work,), 0),
                (stall_views.offload_view, (work,), 0),
                (stall_views.gil_hungry_view, (40,), 0.05),
            )
            assert results[2] == 40
            hungry = next(r["id"] for r in document["requests"] if r["url"] == "/gil_hungry_view/")
            offloaded = {r["id"] for r in document["requests"]} - {hungry}
            mine = [e for e in of_kind(document, "loop.blocked") if e["request"] == hungry]
            for stall in mine:
                # time.sleep(0) is a system call: a stall sampled in it is rightly "waiting".
                assert stall["cause"] in ("gil", "preempted", "waiting"), stall
                if stall["cause"] == "gil":
                    assert stall["cpu_ns"] < stall["duration_ns"] // 2
                    assert stall["gil_thread"].startswith("asyncio_")
                    # None when the watchdog had not yet seen what that thread works for: the
                    # page then names the thread only.
                    assert stall["gil_request"] in offloaded | {None}, stall
                    if stall["gil_request"] is not None:
                        gil_waits.append(stall)
            for call in of_kind(document, "call.blocking"):
                assert call["cause"] != "computing", (
                    f"{call['callable']} at line {call['line']}: {call['duration_ns']} ns, "
                    f"{call['cpu_ns']} ns of CPU on {call['thread']}"
                )
            if gil_waits:
                break
    finally:
        gc.enable()
    assert gil_waits, "no GIL wait naming the request that held the GIL, in three runs"


def test_a_sleep_while_other_threads_compute_is_waiting_not_the_gil(tracing):
    # The loop thread sleeps (in clock_nanosleep, not on the GIL's futex) while two
    # threads compute: its slowness is the sleep's.
    work = 3_000_000
    document, results, _ = run(
        tracing,
        (stall_views.offload_view, (work,), 0),
        (stall_views.offload_view, (work,), 0),
        (stall_views.sleeping_view, (300,), 0.05),
    )
    assert results[2] == 300
    sleeper = next(r["id"] for r in document["requests"] if r["url"] == "/sleeping_view/")
    (sleep,) = [e for e in of_kind(document, "call.blocking") if e["request"] == sleeper]
    assert sleep["callable"] == "time.sleep"
    assert sleep["cause"] == "waiting", sleep
    stalls = [e for e in of_kind(document, "loop.blocked") if e["request"] == sleeper]
    assert stalls and all(e["cause"] == "waiting" for e in stalls), stalls


def test_the_syscall_reader_tells_a_futex_wait_from_a_sleep():
    reader = SyscallReader()
    assert reader.futex is not None  # the machines this runs on: x86_64 and aarch64
    lock = threading.Lock()
    lock.acquire()
    waiting = threading.Thread(target=lock.acquire)
    sleeping = threading.Thread(target=time.sleep, args=(1,))
    waiting.start()
    sleeping.start()
    try:
        deadline = time.monotonic() + 5
        seen: tuple[bool | None, bool | None] = (None, None)
        while seen != (True, False) and time.monotonic() < deadline:
            seen = (reader.in_futex(waiting.native_id), reader.in_futex(sleeping.native_id))
            time.sleep(0.01)
        assert seen == (True, False)
    finally:
        lock.release()
        waiting.join()
        sleeping.join()
        reader.close()


def test_an_await_that_times_out_is_recorded_as_raised(tracing):
    document, results, _ = run(tracing, (stall_views.timeout_view, (), 0))

    assert results == ["timed out"]
    assert of_kind(document, "await.resumed") == []
    (raised,) = of_kind(document, "await.raised")
    assert raised["exception"] == "TimeoutError"
    assert raised["awaiting"] == "asyncio.wait_for(asyncio.sleep(1), 0.05)"
    assert raised["line"] == line_of(stall_views.timeout_view, "await asyncio.wait_for")
    assert raised["duration_ns"] >= 25_000_000
    assert raised["suspensions"] >= 1
    assert of_kind(document, "view.returned")[0]["returned"] == "'timed out'"


def test_a_failing_to_thread_is_recorded_as_raised(tracing):
    document, results, _ = run(tracing, (stall_views.failing_offload_view, (), 0))

    assert results == ["failed"]
    assert of_kind(document, "await.resumed") == []
    (raised,) = of_kind(document, "await.raised")
    assert raised["exception"] == "ValueError"
    assert raised["awaiting"] == "asyncio.to_thread(fail)"


def test_an_unhandled_failure_leaves_no_frame_state_behind(tracing):
    document, results, left = run(tracing, (stall_views.unhandled_failure_view, (), 0))

    assert isinstance(results[0], ValueError)
    (raised,) = of_kind(document, "await.raised")
    assert raised["exception"] == "ValueError"
    assert of_kind(document, "view.returned") == []
    # Forgotten when the frame unwound, not only when the request finished.
    assert left == {document["requests"][0]["id"]: {}}


def test_an_awaited_helper_that_raises_after_resuming_is_recorded_as_raised(tracing):
    document, results, _ = run(tracing, (stall_views.resumed_then_raised_view, (), 0))

    assert results == ["caught"]
    assert of_kind(document, "await.resumed") == []
    (raised,) = of_kind(document, "await.raised")
    assert raised["exception"] == "KeyError"


def test_an_await_that_completes_is_resumed_not_raised(tracing):
    # Awaiting a future raises StopIteration inside the view's frame to hand over its result.
    document, results, _ = run(tracing, (stall_views.gather_view, (), 0))

    assert results == [[None, None]]
    assert of_kind(document, "await.raised") == []
    (resumed,) = of_kind(document, "await.resumed")
    assert resumed["locals"]["done"] == "[None, None]"


def test_the_watchdog_sleeps_while_no_request_is_in_flight(tracing):
    watchdog = tracing.watchdog
    assert THREAD_NAME in [thread.name for thread in threading.enumerate()]
    time.sleep(0.05)
    assert watchdog.ticks == 0

    run(tracing, (stall_views.helper_view, (50,), 0))
    after_request = watchdog.ticks
    assert after_request > 0
    time.sleep(0.1)
    assert watchdog.ticks <= after_request + 1

    tracing.disable()
    assert THREAD_NAME not in [thread.name for thread in threading.enumerate()]
    tracing.enable()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
# The watchdog itself makes the process multi-threaded; the child only reads and exits.
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_a_forked_process_gets_its_own_watchdog(tracing):
    def watchdog_runs() -> bool:
        time.sleep(0.05)
        alive = THREAD_NAME in [thread.name for thread in threading.enumerate()]
        return alive and tracing.watchdog.running

    assert in_a_child(watchdog_runs)


def in_a_child(check: Callable[[], bool]) -> bool:
    """``check()`` run in a forked child process (which then leaves at once)."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.write(write, b"yes" if check() else b"no")
        finally:
            os._exit(0)
    os.close(write)
    answer = os.read(read, 8)
    os.close(read)
    os.waitpid(pid, 0)
    return answer == b"yes"


def test_disable_stops_the_process_wide_exception_events(tracing):
    tool_id = tracing._tool_id
    assert sys.monitoring.get_events(tool_id) != 0
    tracing.disable()
    assert sys.monitoring.get_tool(tool_id) is None
    # A view raising while tracing is off is not seen.
    document, results, _ = run(tracing, (stall_views.failing_offload_view, (), 0))
    assert results == ["failed"]
    assert of_kind(document, "await.raised") == []
    tracing.enable()


@pytest.mark.parametrize(
    ("duration", "cpu", "others", "gil", "expected"),
    [
        (100, 90, {1: (5, 0)}, True, ("computing", None)),
        (100, 10, {1: (80, 0), 2: (10, 0)}, True, ("gil", 1)),
        (100, 10, {1: (80, 0), 2: (10, 0)}, False, ("waiting", None)),
        (100, 10, {1: (5, 0)}, True, ("waiting", None)),
        (100, 10, None, True, ("waiting", None)),
    ],
)
def test_the_cause_of_a_slow_span(duration, cpu, others, gil, expected):
    assert classify(duration, cpu, others, duration, gil=gil) == expected


def test_a_thread_that_waited_for_a_core_was_computing_unless_the_gil_was_busy():
    # A busy machine: 30 ms on a core and 40 ms waiting for one, of 100 ms.
    assert classify(100, 30, {1: (5, 0)}, 100, gil=True, ready_ns=40) == ("computing", None)
    assert classify(100, 5, {1: (5, 0)}, 100, gil=True, ready_ns=10) == ("waiting", None)
    # Off the CPU 30 ms of 100: whoever held the GIL, it did not make this span slow.
    assert classify(100, 30, {1: (80, 0)}, 100, gil=True, ready_ns=40) == ("computing", None)
    # Off the CPU 85 ms while another thread computed, itself kept from a core half the time.
    assert classify(100, 5, {1: (30, 40)}, 100, gil=True, ready_ns=10) == ("gil", 1)


def test_other_threads_waiting_for_a_core_are_not_holding_the_gil():
    # The others were ready to run but hardly ran (a busy machine): nothing of this
    # process computed, so the trace cannot say the GIL kept this thread.
    assert classify(100, 2, {1: (2, 80)}, 100, gil=True) == ("waiting", None)
    assert classify(100, 2, {1: (2, 40), 2: (3, 40)}, 100, gil=True) == ("waiting", None)


def test_a_thread_ready_to_run_for_most_of_the_span_was_preempted_by_a_busy_machine():
    # Computing next to nothing, it waited for a core: no code of this process held it.
    assert classify(100, 2, {1: (30, 0)}, 100, gil=True, ready_ns=60) == ("preempted", None)
    assert classify(100, 2, {1: (80, 0)}, 100, gil=True, ready_ns=60) == ("preempted", None)
    assert classify(100, 2, None, 100, gil=True, ready_ns=50) == ("preempted", None)
    assert classify(100, 2, None, 100, gil=True, ready_ns=40) == ("waiting", None)
    # Its own computing, stretched by the busy machine, is still computing.
    assert classify(100, 20, None, 100, gil=True, ready_ns=70) == ("computing", None)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_a_forked_processs_main_thread_is_read_under_its_own_id():
    # Gunicorn's workers serve on the thread that forked: the tracer must read its /proc
    # files, not the parent's (threading keeps the parent's id, CPython gh-132542).
    def read_under_its_own_id() -> bool:
        native = procfs.native_ids()[threading.get_ident()]
        readable = os.path.exists(f"/proc/self/task/{native}/syscall")
        return native == threading.get_native_id() and readable

    assert in_a_child(read_under_its_own_id)


def test_a_request_on_a_thread_pool_thread_is_found_from_its_stack(tracing):
    recording = RecordingStore().get_or_create("who")
    seen: list[Any] = []

    async def main() -> None:
        request = recording.new_request("GET", "/", time.monotonic_ns())
        current_request.set(request)
        started = threading.Event()
        release = threading.Event()
        workers: list[int] = []

        def work() -> None:
            workers.append(threading.get_ident())
            started.set()
            release.wait(5)

        job = asyncio.create_task(asyncio.to_thread(work))
        await asyncio.to_thread(started.wait, 5)
        seen.append((request, tracing._request_on(workers[0])))
        release.set()
        await job

    asyncio.run(main())
    request, found = seen[0]
    assert isinstance(found, RequestTrace)
    assert found is request
