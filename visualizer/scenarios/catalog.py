"""The scenarios: which real view each one runs, what it teaches, and its source code."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.urls import reverse

from tracer.instrumentation import register_view
from visualizer.scenarios import scenario_views as views


@dataclass(frozen=True)
class Scenario:
    slug: str
    title: str
    summary: str
    view: Callable[..., Any]
    # Functions the view calls, shown below it.
    helpers: tuple[Callable[..., Any], ...]
    # Query parameters the view reads, and their meaning.
    parameters: tuple[str, ...]
    # The summary card: the few sentences a student should keep.
    keep: tuple[str, ...] = ()

    @property
    def run_url(self) -> str:
        """Where the real view answers."""
        return reverse(f"run-{self.slug}")

    def source(self) -> str:
        """The real source of the view and its helpers, as the server runs it."""
        return "\n\n".join(inspect.getsource(function) for function in (self.view, *self.helpers))

    def source_start_line(self) -> int:
        return inspect.getsourcelines(self.view)[1]


SCENARIOS: dict[str, Scenario] = {
    scenario.slug: scenario
    for scenario in (
        Scenario(
            slug="async-io",
            title="Async view awaiting I/O",
            summary="An async def view awaits a slow network call; under ASGI the event loop "
            "serves other requests meanwhile.",
            view=views.async_io,
            helpers=(views.fetch_data,),
            parameters=("delay_ms",),
            keep=(
                "Under ASGI an await on an async client (here httpx.AsyncClient) gives the "
                "event loop back, so many waiting requests finish in about the time of one; a "
                "single request is no faster.",
                "Under Daphne each request still holds a thread of its own (Django runs its "
                "request-start and response-close code there), parked, not blocked.",
                "Under WSGI the view runs on a private event loop in the request's thread: the "
                "await frees nothing for other requests.",
            ),
        ),
        Scenario(
            slug="sync-io",
            title="Sync view blocking on I/O",
            summary="A plain def view makes the same call with a blocking client; Django "
            "runs it in a worker thread that waits.",
            view=views.sync_io,
            helpers=(views.fetch_data_blocking,),
            parameters=("delay_ms",),
            keep=(
                "Under ASGI, Django runs a plain def view in a worker thread, one per request, so "
                "the server keeps serving.",
                "That thread is blocked in the call for the whole wait; an async view's request "
                "holds a thread too, parked, so the thread count is about the same.",
                "Under a WSGI server, the number of workers times threads caps how many such "
                "requests run at once.",
            ),
        ),
        Scenario(
            slug="async-cpu",
            title="Async view doing CPU work",
            summary="An async def view computes without awaiting; under ASGI nothing else runs "
            "on the event loop until it finishes.",
            view=views.async_cpu,
            helpers=(views.count_primes,),
            parameters=("work",),
            keep=(
                "async def does not make computing faster: code that never awaits keeps the event "
                "loop to itself.",
                "Under ASGI, while it computes, every other request on the loop waits; the trace "
                "records a loop stall.",
                "Move heavy computing off the loop (a thread, a process, a task queue).",
            ),
        ),
        Scenario(
            slug="async-offload",
            title="Async view offloading CPU work to a thread",
            summary="The same computation handed to asyncio.to_thread: the view awaits it and "
            "the event loop is free (though with the GIL only one thread computes at a time).",
            view=views.async_offload,
            helpers=(views.count_primes,),
            parameters=("work",),
            keep=(
                "await asyncio.to_thread(...) runs blocking work in a thread and frees the loop "
                "while it runs.",
                "Other requests are served meanwhile, but with the GIL pure-Python computing "
                "takes turns with the loop, so the work does not finish sooner.",
            ),
        ),
        Scenario(
            slug="async-gather",
            title="Three I/O calls at once with asyncio.gather",
            summary="Three awaits run concurrently: the view waits about as long as one call.",
            view=views.async_gather,
            helpers=(views.fetch_data,),
            parameters=("delay_ms",),
            keep=(
                "asyncio.gather starts independent awaits together: the view waits about as long "
                "as the slowest one.",
                "Concurrency inside one request needs gather (or tasks); writing await three times"
                " does not give it.",
            ),
        ),
        Scenario(
            slug="async-sequential",
            title="The same three I/O calls one after another",
            summary="Each await waits for the one before: three calls take three times as long.",
            view=views.async_sequential,
            helpers=(views.fetch_data,),
            parameters=("delay_ms",),
            keep=(
                "Each await finishes before the next line starts: three calls in a row take their "
                "sum.",
                "The loop is still free for other requests during each wait; only this request is "
                "slower.",
            ),
        ),
        Scenario(
            slug="async-orm-sync",
            title="Async view calling the ORM synchronously",
            summary="Django refuses: a blocking query on the event loop raises "
            "SynchronousOnlyOperation.",
            view=views.async_orm_sync,
            helpers=(),
            parameters=(),
            keep=(
                "Django refuses a synchronous ORM query inside an async view "
                "(SynchronousOnlyOperation) rather than let it block the loop.",
                "Use the async methods (acount, aget, afirst, async for) or wrap the code in "
                "sync_to_async.",
            ),
        ),
        Scenario(
            slug="async-orm",
            title="Async view using the async ORM",
            summary="acount() and afirst() are awaited; Django runs each query, the sync ORM "
            "call, in a worker thread behind the await.",
            view=views.async_orm,
            helpers=(),
            parameters=(),
            keep=(
                "The async ORM methods are awaited like any I/O, so the view does not block "
                "the loop.",
                "In Django 6.1 they are sync_to_async of the sync query, with every database: "
                "the loop is free while a thread waits for the database.",
            ),
        ),
        Scenario(
            slug="async-file",
            title="Async view reading a file",
            summary="Python has no asynchronous file reads: open() and read() block the event "
            "loop for as long as they take.",
            view=views.async_file,
            helpers=(views.read_file,),
            parameters=("size_kb",),
            keep=(
                "Reading a file with open() and read() blocks, even inside async def: under "
                "ASGI the loop's thread is stuck in the read, waiting for the disk or copying "
                "from memory (the trace says which), and every other request waits with it.",
                "For large files, hand the read to asyncio.to_thread.",
            ),
        ),
        Scenario(
            slug="async-sleep",
            title="time.sleep inside an async view",
            summary="A blocking sleep is not an await: the whole event loop sleeps with it.",
            view=views.async_sleep,
            helpers=(),
            parameters=("delay_ms",),
            keep=(
                "time.sleep in an async view stops the whole event loop; await asyncio.sleep "
                "pauses only this view.",
                "Any blocking call inside async def (requests.get, time.sleep, a sync driver) does"
                " the same.",
            ),
        ),
    )
}


def get_scenario(slug: str) -> Scenario | None:
    return SCENARIOS.get(slug)


def register_scenario_views() -> None:
    """Mark every scenario view for tracing (instrumented once tracing is enabled)."""
    for scenario in SCENARIOS.values():
        register_view(scenario.view, slug=scenario.slug, title=scenario.title)
