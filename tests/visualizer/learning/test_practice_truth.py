"""The practice bank's facts, checked on real runs.

Every question names, in its ``checks`` (visualizer/learning/practice_bank/), the tests here
that run what it claims, each marked ``@truth_check``: real requests to the scenario views on Daphne
or gunicorn, or a small real program in this process. ``test_every_question_has_a_truth_check``
fails for a question with none, or one that names a test that is not a truth check. Thread
counts come from the operating system (/proc/<pid>/task, polled while the requests run).
The runs are shared between checks and kept short: a few requests of 100-300 ms.
"""

from __future__ import annotations

import asyncio
import inspect
import io
import itertools
import os
import sys
import tempfile
import threading
import time
import urllib.request
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import of_kind, record, without_short_stalls
from visualizer.learning.practice import QUESTIONS, get_question, load_bank
from visualizer.scenarios import scenario_views
from visualizer.scenarios.catalog import SCENARIOS
from visualizer.server_process import DaphneServer, GunicornServer

CHECKS: dict[str, Callable[..., Any]] = {}
SCENARIO_CHECKS: dict[str, list[str]] = {}


def truth_check(
    *, scenarios: tuple[str, ...] = ()
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Mark a test as a truth check, which a practice question can name in its ``checks``,
    and as checking the summary and summary card of these scenarios."""

    def mark(function: Callable[..., Any]) -> Callable[..., Any]:
        CHECKS[function.__name__] = function
        for slug in scenarios:
            assert slug in SCENARIOS, f"no scenario {slug!r}"
            SCENARIO_CHECKS.setdefault(slug, []).append(function.__name__)
        return function

    return mark


def right_answer(slug: str) -> str:
    question = get_question(slug)
    assert question is not None
    return next(choice.text for choice in question.choices if choice.correct)


def test_every_question_has_a_truth_check():
    # The bank loaded with the checks fails on a name that is not one of them.
    bank = load_bank(checks=CHECKS)
    missing = [question.slug for question in bank if not question.checks]
    assert missing == []


def test_every_truth_check_is_named_by_a_question_or_checks_a_scenario():
    named = {name for question in QUESTIONS for name in question.checks}
    checking_scenarios = {name for names in SCENARIO_CHECKS.values() for name in names}
    assert [name for name in CHECKS if name not in named | checking_scenarios] == []


def test_every_scenario_text_has_a_truth_check():
    assert [slug for slug in SCENARIOS if slug not in SCENARIO_CHECKS] == []


# -- measuring -----------------------------------------------------------------------------


def process_cpu(pid: int) -> float:
    """The CPU time a process has used, user and system, in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def os_threads(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/task"))


class ThreadPeak:
    """The most OS threads a process had while the block ran, over its count before."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.before = self.peak = 0
        self._stop = threading.Event()
        self._poller = threading.Thread(target=self._poll, name="thread-peak")

    def settled(self) -> int:
        """The count once it has not changed for 0.2 s (threads of earlier runs ending)."""
        count, since = os_threads(self.pid), time.monotonic()
        deadline = since + 5
        while time.monotonic() < deadline and time.monotonic() - since < 0.2:
            time.sleep(0.02)
            now = os_threads(self.pid)
            if now != count:
                count, since = now, time.monotonic()
        return count

    def _poll(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, os_threads(self.pid))
            time.sleep(0.002)

    def __enter__(self) -> ThreadPeak:
        self.before = self.peak = self.settled()
        self._poller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._poller.join()

    @property
    def added(self) -> int:
        return self.peak - self.before


@dataclass
class Run:
    trace: dict[str, Any]
    seconds: float
    threads_added: int
    threads_after: int  # added threads still there once the run is over and settled
    cpu_seconds: float  # the server process's CPU time (all its threads) during the run


class Runs:
    """Scenario runs on one server, each made once and shared between the checks."""

    def __init__(self, server: DaphneServer, pid: int) -> None:
        self.server, self.pid = server, pid
        self._runs: dict[tuple[Any, ...], Run] = {}

    def get(self, slug: str, requests: int = 1, **params: int) -> Run:
        key = (slug, requests, *sorted(params.items()))
        if key not in self._runs:
            with ThreadPeak(self.pid) as peak:
                started, cpu = time.monotonic(), process_cpu(self.pid)
                trace = record(self.server, slug, requests=requests, **params)
                seconds, cpu = time.monotonic() - started, process_cpu(self.pid) - cpu
            after = peak.settled() - peak.before
            self._runs[key] = Run(trace, seconds, peak.added, after, cpu)
        return self._runs[key]


def worker_pid(master: int) -> int:
    """gunicorn's single worker process, the master's child."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
        if children:
            return int(children[0])
        time.sleep(0.05)
    raise AssertionError("gunicorn started no worker")


@pytest.fixture(scope="module")
def asgi(traced_server: DaphneServer) -> Runs:
    assert traced_server.process is not None
    return Runs(traced_server, traced_server.process.pid)


@pytest.fixture(scope="module")
def wsgi_1x1(gunicorn_1x1: GunicornServer) -> Runs:
    assert gunicorn_1x1.process is not None
    return Runs(gunicorn_1x1, worker_pid(gunicorn_1x1.process.pid))


@pytest.fixture(scope="module")
def wsgi_1x3(server_data_dir: str) -> Iterator[Runs]:
    env = {"TRACING_ENABLED": "true", "DATA_DIR": server_data_dir}
    with GunicornServer(env, workers=1, threads=3) as server:
        assert server.process is not None
        yield Runs(server, worker_pid(server.process.pid))


def spans(trace: dict[str, Any]) -> list[tuple[int, int]]:
    """Each request's view, from its start to its return."""
    return [
        (
            of_kind(trace, "view.started", r["id"])[0]["t_ns"],
            of_kind(trace, "view.returned", r["id"])[0]["t_ns"],
        )
        for r in trace["requests"]
    ]


def one_at_a_time(trace: dict[str, Any]) -> bool:
    ordered = sorted(spans(trace))
    return all(end <= start for (_, end), (start, _) in itertools.pairwise(ordered))


def all_at_once(trace: dict[str, Any]) -> bool:
    """Every view had started before the first one returned."""
    views = spans(trace)
    return max(start for start, _ in views) < min(end for _, end in views)


def view_threads(trace: dict[str, Any]) -> list[str]:
    return [e["thread"] for e in of_kind(trace, "view.started")]


def runs_on(trace: dict[str, Any]) -> set[str]:
    return {e["runs_on"] for e in of_kind(trace, "view.type_checked")}


def request_seconds(trace: dict[str, Any]) -> list[float]:
    return [r["duration_ns"] / 1e9 for r in trace["requests"]]


MANY, DELAY_MS = 20, 300


# -- awaiting I/O under ASGI ---------------------------------------------------------------


@truth_check(scenarios=("async-io",))
def test_awaits_on_io_overlap_on_the_one_event_loop(asgi: Runs):
    assert "gives the event loop back" in right_answer("await-frees-the-loop")
    many = asgi.get("async-io", MANY, delay_ms=DELAY_MS)

    assert len(many.trace["requests"]) == MANY
    # One loop thread ran every view, and all 20 were waiting at once (told by the trace,
    # not by the wall clock, which a busy machine stretches).
    assert set(view_threads(many.trace)) == {"MainThread"}
    assert all_at_once(many.trace)
    # The await did not make the upstream answer sooner.
    assert all(e["duration_ns"] >= DELAY_MS * 1e6 for e in of_kind(many.trace, "await.resumed"))


@truth_check(scenarios=("async-io",))
def test_one_request_takes_the_upstream_delay_async_or_not(asgi: Runs):
    assert right_answer("one-request-is-not-faster") == "About 300 ms either way."
    (awaited,) = request_seconds(asgi.get("async-io", 1, delay_ms=DELAY_MS).trace)
    (blocked,) = request_seconds(asgi.get("sync-io", 1, delay_ms=DELAY_MS).trace)
    assert min(awaited, blocked) >= DELAY_MS / 1000
    assert max(awaited, blocked) < 2 * min(awaited, blocked)


@truth_check(scenarios=("sync-io",))
def test_a_sync_view_under_asgi_blocks_a_thread_of_its_own_per_request(asgi: Runs):
    many = asgi.get("sync-io", MANY, delay_ms=DELAY_MS)

    assert runs_on(many.trace) == {"worker_thread"}
    threads = view_threads(many.trace)
    assert len(set(threads)) == MANY and "MainThread" not in threads
    assert many.threads_added >= MANY
    # All 20 were blocked at once, each in its own thread.
    assert all_at_once(many.trace)
    # Each thread was blocked in the call, waiting (on a busy machine a quick call of the
    # view, JsonResponse say, can pass the slow-call threshold too: never on the loop).
    calls = of_kind(many.trace, "call.blocking")
    assert not [c for c in calls if c["on_event_loop"]]
    fetches = [c for c in calls if c["callable"] == "fetch_data_blocking"]
    assert len(fetches) == MANY
    assert all(c["cpu_ns"] * 2 < c["duration_ns"] for c in fetches)
    # The views never held the loop (on a busy machine the loop can still stall on its
    # own side, Django's handler or the GIL: never in the views' code).
    view_code = {"sync_io", "fetch_data_blocking"}
    assert [e for e in of_kind(many.trace, "loop.blocked") if e["function"] in view_code] == []


@truth_check(scenarios=("async-io", "sync-io"))
def test_an_async_request_under_daphne_holds_a_parked_thread_too(asgi: Runs):
    assert "Each request holds a thread either way" in right_answer("thread-per-sync-request")
    sync = asgi.get("sync-io", MANY, delay_ms=DELAY_MS)
    async_ = asgi.get("async-io", MANY, delay_ms=DELAY_MS)

    # The async views ran on the loop's thread, yet the process grew by a thread per
    # request, about as many as for the sync view; they went away with the requests.
    assert set(view_threads(async_.trace)) == {"MainThread"}
    assert async_.threads_added >= MANY
    assert async_.threads_added >= 0.8 * sync.threads_added
    assert async_.threads_after <= 2 and sync.threads_after <= 2


# Django's own ASGI handler, with no middleware at all, in this process.


async def probe_view(request: Any) -> Any:
    from django.http import HttpResponse

    await asyncio.sleep(0.2)
    return HttpResponse(threading.current_thread().name)


urlpatterns: list[Any] = []


@truth_check(scenarios=("async-io",))
def test_django_gives_each_asgi_request_a_thread_even_with_no_middleware(settings):
    from django.core.handlers.asgi import ASGIHandler
    from django.urls import path

    urlpatterns[:] = [path("probe/", probe_view)]
    settings.ROOT_URLCONF = __name__
    settings.MIDDLEWARE = []
    requests = 5

    async def one(handler: ASGIHandler) -> list[dict[str, Any]]:
        scope = {
            "type": "http",
            "method": "GET",
            "path": "/probe/",
            "query_string": b"",
            "headers": [],
            "server": ("testserver", 80),
            "asgi": {"version": "3.0"},
        }
        sent: list[dict[str, Any]] = []

        messages = [{"type": "http.request", "body": b"", "more_body": False}]

        async def receive() -> dict[str, Any]:
            if messages:
                return messages.pop()
            await asyncio.Event().wait()  # the client never disconnects
            raise AssertionError("unreachable")

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        await handler(scope, receive, send)
        return sent

    async def main() -> tuple[list[list[dict[str, Any]]], str]:
        handler = ASGIHandler()
        answers = await asyncio.gather(*(one(handler) for _ in range(requests)))
        return list(answers), threading.current_thread().name

    with ThreadPeak(os.getpid()) as peak:
        answers, loop_thread = asyncio.run(main())
    bodies = [
        m["body"].decode() for sent in answers for m in sent if m["type"] == "http.response.body"
    ]
    assert bodies == [loop_thread] * requests  # the view ran on the loop's thread
    assert peak.added >= requests


# -- WSGI ------------------------------------------------------------------------------------

WSGI_REQUESTS, WSGI_DELAY_MS = 6, 200


@truth_check(scenarios=("sync-io",))
def test_gunicorn_1x1_serves_sync_requests_one_after_another(wsgi_1x1: Runs, wsgi_1x3: Runs):
    run = wsgi_1x1.get("sync-io", WSGI_REQUESTS, delay_ms=WSGI_DELAY_MS)

    assert run.trace["server"]["interface"] == "wsgi"
    assert len(run.trace["requests"]) == WSGI_REQUESTS  # none refused
    assert one_at_a_time(run.trace)
    assert run.seconds >= 0.9 * WSGI_REQUESTS * WSGI_DELAY_MS / 1000
    # More threads let more requests run at once.
    wider = wsgi_1x3.get("sync-io", 3, delay_ms=WSGI_DELAY_MS)
    assert all_at_once(wider.trace)


@truth_check(scenarios=("async-io",))
def test_an_async_view_under_wsgi_1x1_gives_no_concurrency(wsgi_1x1: Runs):
    run = wsgi_1x1.get("async-io", WSGI_REQUESTS, delay_ms=WSGI_DELAY_MS)

    assert len(run.trace["requests"]) == WSGI_REQUESTS
    assert runs_on(run.trace) == {"request_thread_new_event_loop"}
    assert one_at_a_time(run.trace)
    assert run.seconds >= 0.9 * WSGI_REQUESTS * WSGI_DELAY_MS / 1000
    assert all(r["status"] == 200 for r in run.trace["requests"])


# -- computing -------------------------------------------------------------------------------

CPU_REQUESTS, WORK = 3, 60_000


@truth_check(scenarios=("async-cpu",))
def test_an_async_view_that_computes_holds_the_loop(asgi: Runs):
    run = asgi.get("async-cpu", CPU_REQUESTS, work=WORK)

    # No await in the view, yet Django runs it on the loop, and the requests take turns.
    assert "await" not in inspect.getsource(scenario_views.async_cpu)
    assert runs_on(run.trace) == {"event_loop"}
    assert set(view_threads(run.trace)) == {"MainThread"}
    assert one_at_a_time(run.trace)
    stalls = [e for e in of_kind(run.trace, "loop.blocked") if e["held_by"] == "count_primes"]
    assert len(stalls) >= CPU_REQUESTS - 1


@truth_check()
def test_gathered_computations_on_one_loop_run_one_after_another():
    ran: list[tuple[float, float]] = []

    async def part() -> None:
        started = time.monotonic()
        scenario_views.count_primes(30_000)
        ran.append((started, time.monotonic()))

    async def main() -> None:
        await asyncio.gather(part(), part(), part())

    asyncio.run(main())
    ordered = sorted(ran)
    assert all(end <= start for (_, end), (start, _) in itertools.pairwise(ordered))


def probe_latency(server: DaphneServer, after: float) -> float:
    """How long a request to the async-io view (no delay) takes, sent ``after`` s from now."""
    time.sleep(after)
    started = time.monotonic()
    url = f"{server.base_url}/run/async-io/?delay_ms=0"
    with urllib.request.urlopen(url, timeout=30) as response:
        response.read()
    return time.monotonic() - started


@truth_check(scenarios=("async-offload",))
def test_offloaded_computing_frees_the_loop_but_is_not_faster(asgi: Runs):
    on_loop = asgi.get("async-cpu", CPU_REQUESTS, work=WORK)
    latency: list[float] = []
    prober = threading.Thread(target=lambda: latency.append(probe_latency(asgi.server, 0.03)))
    prober.start()
    offloaded = asgi.get("async-offload", CPU_REQUESTS, work=WORK)
    prober.join()

    suspended = of_kind(offloaded.trace, "await.suspended")
    assert {e["awaiting"] for e in suspended} == {"asyncio.to_thread(count_primes, limit)"}
    assert [
        e for e in of_kind(offloaded.trace, "loop.blocked") if e["held_by"] == "count_primes"
    ] == []
    # Another request was served while the threads computed.
    assert latency[0] < offloaded.seconds / 2
    # With the GIL, the three threads took turns: the process never used much more than
    # one core's time, so together they took about as long as in turn.
    assert sys._is_gil_enabled()
    assert offloaded.cpu_seconds < 1.25 * offloaded.seconds
    # The work itself cost about the same CPU time on the loop and in threads (the
    # process's CPU clock counts in ticks: two ticks of slack).
    tick = 1 / os.sysconf("SC_CLK_TCK")
    assert offloaded.cpu_seconds + 2 * tick > 0.5 * on_loop.cpu_seconds


# -- blocking calls in async views -----------------------------------------------------------


@truth_check(scenarios=("async-sleep",))
def test_time_sleep_in_an_async_view_stalls_every_request(asgi: Runs):
    run = asgi.get("async-sleep", 2, delay_ms=200)
    # A busy machine can add short stalls and slow calls (JsonResponse waiting for the GIL).
    trace = without_short_stalls(run.trace, 200)

    sleeps = of_kind(trace, "call.blocking")
    assert [e["callable"] for e in sleeps] == ["time.sleep"] * 2
    assert all(e["on_event_loop"] for e in sleeps)  # Django did not move it off the loop
    assert {e["held_by"] for e in of_kind(trace, "loop.blocked")} == {"time.sleep"}
    assert one_at_a_time(run.trace)
    assert all(r["status"] == 200 for r in run.trace["requests"])


def loop_ticks(coroutine: Callable[[], Any]) -> tuple[int, float, Any]:
    """Run ``coroutine`` next to a ticker on a new loop: how many times the ticker ran
    while the coroutine did, the coroutine's time, and its result."""

    async def main() -> tuple[int, float, Any]:
        ticks: list[float] = []

        async def tick() -> None:
            while True:
                await asyncio.sleep(0.002)
                ticks.append(time.monotonic())

        ticker = asyncio.create_task(tick())
        await asyncio.sleep(0.02)
        started = time.monotonic()
        result = await coroutine()
        ended = time.monotonic()
        ticker.cancel()
        during = [t for t in ticks if started < t < ended]
        return len(during), ended - started, result

    return asyncio.run(main())


@truth_check()
def test_a_blocking_http_client_in_a_coroutine_holds_the_loop():
    async def blocking() -> Any:
        return scenario_views.fetch_data_blocking(200)  # urllib.request.urlopen

    async def awaiting() -> Any:
        return await asyncio.to_thread(scenario_views.fetch_data_blocking, 200)

    ticks, took, data = loop_ticks(blocking)
    assert data["waited_ms"] == 200 and took >= 0.2
    assert ticks == 0  # nothing else ran on the loop meanwhile
    ticks, took, data = loop_ticks(awaiting)
    assert took >= 0.2 and ticks >= 5  # offloaded, the loop kept ticking


@truth_check()
def test_the_sleeps_of_python_behave_as_the_question_says():
    async def two(sleep: Callable[[], Any]) -> float:
        started = time.monotonic()
        await asyncio.gather(sleep(), sleep())
        return time.monotonic() - started

    async def awaited() -> None:
        await asyncio.sleep(0.2)

    async def blocked() -> None:
        time.sleep(0.2)

    assert asyncio.run(two(awaited)) < 0.4  # both paused at once
    assert asyncio.run(two(blocked)) >= 0.4  # the loop slept with each

    async def not_awaited() -> float:
        started = time.monotonic()
        asyncio.sleep(1)
        return time.monotonic() - started

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert asyncio.run(not_awaited()) < 0.5
        import gc

        gc.collect()
    assert any("was never awaited" in str(w.message) for w in caught)

    async def await_time_sleep() -> None:
        await time.sleep(0.2)  # type: ignore[func-returns-value]

    started = time.monotonic()
    with pytest.raises(TypeError):
        asyncio.run(await_time_sleep())
    assert time.monotonic() - started >= 0.2


# -- files -----------------------------------------------------------------------------------


@truth_check(scenarios=("async-file",))
def test_a_file_read_in_an_async_view_blocks_the_loop_for_its_whole_time(asgi: Runs):
    run = asgi.get("async-file", 3)

    reads = [e for e in of_kind(run.trace, "call.blocking") if e["callable"] == "read_file"]
    assert len(reads) == 3 and all(read["on_event_loop"] for read in reads)
    assert one_at_a_time(run.trace)
    assert "read_file" in {e["held_by"] for e in of_kind(run.trace, "loop.blocked")}


@truth_check(scenarios=("async-file",))
def test_a_file_read_offloaded_to_a_thread_leaves_the_loop_free():
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "big.bin"
        with path.open("wb") as file:
            file.write(os.urandom(32 * 1024 * 1024))
            file.flush()
            os.fsync(file.fileno())

        async def offloaded() -> int:
            scenario_views.forget_cached_pages(path)
            return await asyncio.to_thread(scenario_views.read_file, path, 32 * 1024)

        async def on_loop() -> int:
            scenario_views.forget_cached_pages(path)
            return scenario_views.read_file(path, 32 * 1024)

        ticks, _, got = loop_ticks(on_loop)
        assert got == 32 * 1024 * 1024 and ticks == 0
        ticks, _, got = loop_ticks(offloaded)
        assert got == 32 * 1024 * 1024 and ticks >= 2

    # Python's own file objects offer nothing to await.
    for kind in (io.FileIO, io.BufferedReader, io.TextIOWrapper):
        assert not [name for name in dir(kind) if inspect.iscoroutinefunction(getattr(kind, name))]

    async def await_bytes() -> None:
        await b"bytes"  # type: ignore[misc]

    with pytest.raises(TypeError):
        asyncio.run(await_bytes())


# -- the ORM ---------------------------------------------------------------------------------


@truth_check(scenarios=("async-orm-sync",))
def test_the_sync_orm_in_an_async_view_raises(asgi: Runs):
    run = asgi.get("async-orm-sync", 1)

    returned = of_kind(run.trace, "view.returned")[0]
    assert returned["locals"]["problem"].startswith("'SynchronousOnlyOperation:")
    assert run.trace["requests"][0]["status"] == 500


@truth_check(scenarios=("async-orm",))
def test_the_async_orm_methods_are_awaited_and_free_the_loop(asgi: Runs):
    from django.db.models import QuerySet

    run = asgi.get("async-orm", 1)

    awaited = [e["awaiting"] for e in of_kind(run.trace, "await.suspended")]
    assert awaited == ["Reading.objects.acount()", 'Reading.objects.order_by("-id").afirst()']
    assert run.trace["requests"][0]["status"] == 200
    assert inspect.iscoroutinefunction(QuerySet.acount)
    assert not inspect.iscoroutinefunction(QuerySet.count)

    async def nested() -> None:
        coroutine = asyncio.sleep(0)
        try:
            asyncio.run(coroutine)
        finally:
            coroutine.close()

    with pytest.raises(RuntimeError, match="cannot be called from a running event loop"):
        asyncio.run(nested())


@pytest.mark.django_db(transaction=True)
@truth_check(scenarios=("async-orm",))
def test_acount_runs_the_sync_query_in_a_worker_thread(monkeypatch):
    """Django 6.1's acount() is sync_to_async of count(): the sync query runs off the
    loop's thread (whatever the database)."""
    from django.db.models import QuerySet

    from visualizer.scenarios.models import Reading

    count, threads = QuerySet.count, []

    def watched(queryset: QuerySet[Any]) -> int:
        threads.append(threading.get_ident())
        return count(queryset)

    monkeypatch.setattr(QuerySet, "count", watched)

    async def main() -> tuple[int, int]:
        return await Reading.objects.acount(), threading.get_ident()

    total, loop_thread = asyncio.run(main())
    assert total == Reading.objects.count()
    assert len(threads) == 2 and threads[0] != loop_thread


# -- Python itself ---------------------------------------------------------------------------


@truth_check()
def test_only_async_def_makes_a_coroutine_function_that_runs_on_the_loop(asgi: Runs):
    namespace: dict[str, Any] = {}
    exec(compile("async def my_view(request):\n    return None\n", "<q>", "exec"), namespace)
    assert inspect.iscoroutinefunction(namespace["my_view"])
    for wrong in ("def async my_view(request):\n    pass\n",
                  "def my_view(request):\n    await something()\n"):  # fmt: skip
        with pytest.raises(SyntaxError):
            compile(wrong, "<q>", "exec")
    assert runs_on(asgi.get("async-io", 1, delay_ms=DELAY_MS).trace) == {"event_loop"}
    assert runs_on(asgi.get("sync-io", 1, delay_ms=DELAY_MS).trace) == {"worker_thread"}


@truth_check(scenarios=("async-gather", "async-sequential"))
def test_gather_ends_with_the_slowest_call_and_a_sequence_takes_the_sum(asgi: Runs):
    async def call(seconds: float) -> float:
        await asyncio.sleep(seconds)
        return seconds

    async def together() -> list[float]:
        return list(await asyncio.gather(call(0.3), call(0.2), call(0.1)))

    async def in_turn() -> list[float]:
        return [await call(0.3), await call(0.2), await call(0.1)]

    # Together: at least the slowest call, less than the sum. In turn: the sum.
    for program, low, high in ((together, 0.3, 0.6), (in_turn, 0.6, 60)):
        started = time.monotonic()
        assert asyncio.run(program()) == [0.3, 0.2, 0.1]
        assert low <= time.monotonic() - started < high, program.__name__
    gathered = asgi.get("async-gather", 1, delay_ms=200).trace
    (resumed,) = of_kind(gathered, "await.resumed")
    assert 0.2e9 <= resumed["duration_ns"] < 3 * 0.2e9
    # Three awaits in a row take their sum, and the loop serves other requests meanwhile.
    in_a_row = asgi.get("async-sequential", 3, delay_ms=100).trace
    assert all(seconds >= 0.3 for seconds in request_seconds(in_a_row))
    assert all_at_once(in_a_row)
