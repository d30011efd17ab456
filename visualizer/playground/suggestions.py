"""Suggested edits: for each scenario, the one or two changes to its code that carry its
lesson (``time.sleep`` to ``await asyncio.sleep``, the CPU work into ``asyncio.to_thread``,
...), each made to the code the editor starts from (visualizer/playground/editable.py).

An edit is a list of replacements, each of a text found exactly once in that code; the
tests hold every edit to apply, to pass the playground's checks, and to change the real
trace as its lesson says (tests/visualizer/playground/test_suggestions.py).
"""

from __future__ import annotations

import functools
import inspect
from dataclasses import dataclass

from visualizer.playground.editable import starting_code
from visualizer.scenarios import scenario_views
from visualizer.scenarios.catalog import SCENARIOS, Scenario


class SuggestionDoesNotApply(ValueError):
    """A replacement's text is not found exactly once in the code it is made to."""


@dataclass(frozen=True)
class Suggestion:
    slug: str  # unique within its scenario, used in ?suggestion=
    title: str  # what the change is, on its button
    look_for: str  # what the new run's trace shows, said beside it
    replacements: tuple[tuple[str, str], ...]

    @property
    def loaded_text(self) -> str:
        """What the panel says once the edit's code is in the editor."""
        return f"The code below has the suggested edit: {self.title}. Run it: {self.look_for}"

    def apply(self, code: str) -> str:
        for old, new in self.replacements:
            found = code.count(old)
            if found != 1:
                raise SuggestionDoesNotApply(
                    f"suggestion {self.slug!r}: {old!r} is in the code {found} times, not once"
                )
            code = code.replace(old, new)
        return code


def _source(function: object) -> str:
    return inspect.getsource(function)  # type: ignore[arg-type]


# Lines written once and used both ways, where one scenario's lesson is the other's code.
PRIMES_ON_LOOP = "primes = count_primes(limit)"
PRIMES_IN_THREAD = "primes = await asyncio.to_thread(count_primes, limit)"
CALLS_GATHERED = """    first, second, third = await asyncio.gather(
        fetch_data(delay_ms), fetch_data(delay_ms), fetch_data(delay_ms)
    )
"""
CALLS_IN_TURN = """    first = await fetch_data(delay_ms)
    second = await fetch_data(delay_ms)
    third = await fetch_data(delay_ms)
"""


def _views_import(*names: str) -> str:
    """The starting code's import of names from the scenario views' module."""
    return f"from {scenario_views.__name__} import {', '.join(names)}\n"


SUGGESTIONS: dict[str, tuple[Suggestion, ...]] = {
    "async-io": (
        Suggestion(
            "blocking-client",
            "Call the blocking client (urllib) from the async view",
            "The wait no longer frees the loop: a loop stall the length of the upstream "
            "call, and the requests answered one after another.",
            (
                ("data = await fetch_data(delay_ms)", "data = fetch_data_blocking(delay_ms)"),
                (
                    _views_import("io_delay", "upstream_client"),
                    _views_import("fetch_data_blocking", "io_delay", "upstream_client"),
                ),
            ),
        ),
    ),
    "sync-io": (
        Suggestion(
            "async-client",
            "Make it an async view that awaits the async client (httpx.AsyncClient)",
            "The view runs on the event loop, not in a worker thread, and pauses at its "
            "await while the call is out.",
            (
                ("def sync_io(", "async def sync_io("),
                ("data = fetch_data_blocking(delay_ms)", "data = await fetch_data(delay_ms)"),
                (_source(scenario_views.fetch_data_blocking), _source(scenario_views.fetch_data)),
                (_views_import("io_delay"), _views_import("io_delay", "upstream_client")),
            ),
        ),
    ),
    "async-cpu": (
        Suggestion(
            "to-thread",
            "Move the computing into asyncio.to_thread",
            "count_primes runs in a worker thread and the view pauses at its await: the "
            "loop thread no longer computes it (with the GIL, it may still wait its turn).",
            ((PRIMES_ON_LOOP, PRIMES_IN_THREAD),),
        ),
    ),
    "async-offload": (
        Suggestion(
            "on-the-loop",
            "Compute on the event loop instead (drop asyncio.to_thread)",
            "No await any more: count_primes runs on the loop's thread, which stalls "
            "while it computes.",
            ((PRIMES_IN_THREAD, PRIMES_ON_LOOP),),
        ),
    ),
    "async-gather": (
        Suggestion(
            "in-turn",
            "Await the three calls one after another",
            "The view pauses three times, once per call, instead of once for all three.",
            ((CALLS_GATHERED, CALLS_IN_TURN),),
        ),
    ),
    "async-sequential": (
        Suggestion(
            "gather",
            "Start the three calls together with asyncio.gather",
            "The view pauses once, while all three calls are out at the same time.",
            ((CALLS_IN_TURN, CALLS_GATHERED),),
        ),
    ),
    "async-orm-sync": (
        Suggestion(
            "acount",
            "Await the async ORM method acount()",
            "Django runs the query in a worker thread behind the await: no "
            "SynchronousOnlyOperation, a 200 answer.",
            (("readings = Reading.objects.count()", "readings = await Reading.objects.acount()"),),
        ),
        Suggestion(
            "sync-to-async",
            "Wrap the sync query in sync_to_async",
            "The same query, run in a worker thread behind the await: a 200 answer.",
            (
                (
                    "readings = Reading.objects.count()",
                    "readings = await sync_to_async(Reading.objects.count)()",
                ),
                ("import asyncio\n", "import asyncio\nfrom asgiref.sync import sync_to_async\n"),
            ),
        ),
    ),
    "async-orm": (
        Suggestion(
            "sync-query",
            "Call the sync ORM method count() instead",
            "Django refuses the blocking query on the event loop: SynchronousOnlyOperation "
            "at that line, a 500 answer.",
            (("readings = await Reading.objects.acount()", "readings = Reading.objects.count()"),),
        ),
    ),
    "async-file": (
        Suggestion(
            "to-thread",
            "Read the file in asyncio.to_thread",
            "read_file runs in a worker thread and the view pauses at its await; the loop "
            "thread no longer reads.",
            (
                (
                    "read = read_file(sample_file(), size_kb)",
                    "read = await asyncio.to_thread(read_file, sample_file(), size_kb)",
                ),
            ),
        ),
    ),
    "async-sleep": (
        Suggestion(
            "asyncio-sleep",
            "Replace time.sleep with await asyncio.sleep",
            "No loop stall: the view pauses at its await and the requests sleep at the same time.",
            (("time.sleep(delay_ms / 1000)", "await asyncio.sleep(delay_ms / 1000)"),),
        ),
    ),
}


def suggestions_for(scenario: Scenario) -> tuple[Suggestion, ...]:
    return SUGGESTIONS.get(scenario.slug, ())


def get_suggestion(scenario: Scenario, slug: str) -> Suggestion | None:
    return next((s for s in suggestions_for(scenario) if s.slug == slug), None)


@functools.cache
def suggested_code(scenario: Scenario, slug: str) -> str:
    """The scenario's starting code with the suggestion made. KeyError for an unknown one."""
    suggestion = get_suggestion(scenario, slug)
    if suggestion is None:
        raise KeyError(slug)
    return suggestion.apply(starting_code(scenario))


def suggestion_problem(scenario_slug: str, slug: str) -> str | None:
    """Why ``scenario_slug``/``slug`` names no suggested edit (None: it does), in words."""
    scenario = SCENARIOS.get(scenario_slug)
    if scenario is None:
        return f"no scenario {scenario_slug!r} (known: {', '.join(SCENARIOS)})"
    if get_suggestion(scenario, slug) is None:
        known = ", ".join(s.slug for s in suggestions_for(scenario)) or "none"
        return f"no suggested edit {slug[:40]!r} for {scenario_slug} (its edits: {known})"
    return None
