"""Where each request's time went, for the page: tracer.breakdown's parts as stacked bars on
one time axis, and the verdict card, a sentence or two said from the breakdown with the
change to try next. Every figure comes from the trace; where it cannot tell, it says so.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from django.urls import reverse

from tracer import events as kinds
from tracer.breakdown import PART_LABELS, PARTS, Breakdown, Part, breakdowns
from visualizer.lab.runs import setup_of
from visualizer.traces.narration import QUEUE_WAIT_NS, ms, plural

# Bars are listed for this many requests; the verdict reads them all.
BARS_SHOWN = 20
# Widths are in hundredths of a percent, so that a bar's add up to exactly 100 %.
WHOLE = 10_000


@dataclass(frozen=True)
class Segment:
    part: Part
    label: str
    duration: str
    width: int  # hundredths of a percent of its bar

    @property
    def percent(self) -> str:
        return f"{self.width / 100:.2f}%"


@dataclass(frozen=True)
class Bar:
    request: str
    duration: str
    arrived: str  # since the run began
    length: int  # hundredths of a percent of the longest request's time
    segments: list[Segment]
    served_after: str | None  # from the client sending it to Django having it, when long

    @property
    def length_percent(self) -> str:
        return f"{self.length / 100:.2f}%"

    @property
    def sentence(self) -> str:
        parts = ", ".join(f"{s.label} {s.duration}" for s in self.segments)
        queued = (
            f"; before that it waited {self.served_after} to be served" if self.served_after else ""
        )
        return f"{self.request} (arrived at {self.arrived}) took {self.duration}: {parts}{queued}."


@dataclass(frozen=True)
class Verdict:
    sentences: list[str]
    next_text: str
    next_url: str


@dataclass(frozen=True)
class TimeWent:
    bars: list[Bar]
    more: int  # requests without a bar here
    legend: list[tuple[Part, str]]  # the parts that occur, in bar order
    verdict: Verdict | None


def time_went(document: Mapping[str, Any], *, axis_ns: int = 0) -> TimeWent:
    """The bars and the verdict of a trace document (its finished requests). The longest
    request fills the width, or ``axis_ns`` if longer (bars of two traces on one axis)."""
    found = breakdowns(document)
    requests = {r["id"]: r for r in document["requests"]}
    times = [
        t for r in document["requests"] for t in (r.get("client_sent_ns"), r.get("received_ns"))
    ]
    start = min((t for t in times if type(t) is int), default=0)
    longest = max([axis_ns, *(b.duration_ns for b in found)])
    asgi = is_asgi(document)
    bars = [_bar(b, requests[b.request], start, longest, asgi) for b in found[:BARS_SHOWN]]
    occurring = {part for b in found for part in PARTS if b.parts[part]}
    return TimeWent(
        bars=bars,
        more=max(0, len(found) - BARS_SHOWN),
        legend=[(part, _label(part, asgi)) for part in PARTS if part in occurring],
        verdict=verdict(document, found) if found else None,
    )


def is_asgi(document: Mapping[str, Any]) -> bool:
    return bool((document.get("server") or {}).get("interface", "asgi") == "asgi")


def wsgi_words(text: str, asgi: bool) -> str:
    """Under WSGI no event loop serves the requests: an async view runs on a private loop
    of its own (async_to_sync's, in the request's thread), which is what the words say."""
    if asgi:
        return text
    return text.replace("the event loop", "its private loop").replace("event loop", "loop")


def _label(part: Part, asgi: bool) -> str:
    return wsgi_words(PART_LABELS[part], asgi)


def _bar(
    breakdown: Breakdown, request: Mapping[str, Any], start: int, longest: int, asgi: bool
) -> Bar:
    shown = [(part, ns) for part, ns in breakdown.parts.items() if ns > 0]
    widths = _shares([ns for _, ns in shown], WHOLE)
    served = breakdown.waiting_to_be_served_ns
    return Bar(
        request=breakdown.request,
        duration=ms(breakdown.duration_ns),
        arrived=ms(request["received_ns"] - start),
        length=_shares([breakdown.duration_ns, longest - breakdown.duration_ns], WHOLE)[0]
        if longest
        else WHOLE,
        segments=[
            Segment(part, _label(part, asgi), ms(ns), width)
            for (part, ns), width in zip(shown, widths, strict=True)
        ],
        served_after=ms(served) if served is not None and served > QUEUE_WAIT_NS else None,
    )


def _shares(values: list[int], whole: int) -> list[int]:
    """``values`` as whole shares of ``whole`` that add up to it (largest remainder)."""
    total = sum(values)
    if not total:
        return [0] * len(values)
    exact = [value * whole / total for value in values]
    shares = [int(share) for share in exact]
    by_remainder = sorted(range(len(values)), key=lambda i: exact[i] - shares[i], reverse=True)
    for index in by_remainder[: whole - sum(shares)]:
        shares[index] += 1
    return shares


# -- the verdict --------------------------------------------------------------------------

# Where the time went, in words that follow "r2 spent 300 ms of its 1.2 s".
_SPENT: dict[Part, str] = {
    "on_loop": "running on the event loop: while a task runs there, no other task can",
    "blocked_on_loop": "blocked in a call on the event loop, holding it: no other task could "
    "run meanwhile",
    "loop_wait": "ready to go on but waiting for the event loop, which was running other code",
    "awaiting_io": "suspended at an await, waiting for I/O, a timer or another task: the event "
    "loop was free to run other tasks meanwhile",
    "awaiting": "at an await: waiting for I/O, or ready and waiting for the loop (this trace "
    "cannot tell which)",
    "on_loop_or_waiting": "in Django's code on the event loop or waiting for it (this trace "
    "does not have the loop's steps, so it cannot tell which)",
    "thread_wait": "waiting for a worker thread to start its code",
    "in_thread": "running in a thread",
    "blocked_in_thread": "blocked in a thread, waiting (network, disk, a sleep or a lock): the "
    "wait held that thread",
    "gil_wait": "waiting for the GIL while another thread computed",
    "core_wait": "ready to run but waiting for a CPU core (the machine was busy)",
}
_HOLDS_LOOP: frozenset[Part] = frozenset({"on_loop", "blocked_on_loop", "loop_wait"})
# A scenario whose loop is held, and the one that does the same without holding it.
_UNBLOCKED = {
    "async-cpu": "async-offload",
    "async-sleep": "async-io",
    "async-orm-sync": "async-orm",
}


def verdict(document: Mapping[str, Any], found: list[Breakdown]) -> Verdict:
    """One or two sentences on where the time went: the slowest request's largest part,
    then the queue (WSGI), or another request's wait for the loop, or how long they all
    took together."""
    asgi = is_asgi(document)
    slowest = max(found, key=lambda b: b.duration_ns)
    main = max(PARTS, key=lambda part: slowest.parts[part])
    sentences = [_spent(document, slowest, main, found, asgi)]
    served = _longest_queue(found)
    waited = max(found, key=lambda b: b.parts["loop_wait"])
    # A fifth of a request's time ready but not run: the loop was held, whatever else.
    loop_held = waited.parts["loop_wait"] * 5 > waited.duration_ns
    if not asgi and served is not None:
        sentences.append(
            f"{served.request} waited {ms(served.waiting_to_be_served_ns or 0)} before the server "
            f"took it{_threads_for(document)}."
        )
    elif main != "loop_wait" and loop_held:
        sentences.append(_spent(document, waited, "loop_wait", found, asgi))
    elif len(found) > 1:
        answered = {b.request for b in found}
        summaries = [r for r in document["requests"] if r["id"] in answered]
        first = min(r["received_ns"] for r in summaries)
        last = max(r["finished_ns"] for r in summaries)
        which = "All" if len(found) == len(document["requests"]) else "The"
        sentences.append(
            f"{which} {len(found)} requests were answered {ms(last - first)} after "
            "the first of them arrived."
        )
    text, url = _next_change(
        document,
        "loop_wait" if loop_held else main,
        asgi,
        queued=not asgi and served is not None,
    )
    return Verdict(sentences, text, url)


def _spent(
    document: Mapping[str, Any],
    breakdown: Breakdown,
    part: Part,
    found: list[Breakdown],
    asgi: bool,
) -> str:
    return (
        f"{_whose(breakdown, found)} spent {ms(breakdown.parts[part])} of its "
        f"{ms(breakdown.duration_ns)} {wsgi_words(_SPENT[part], asgi)}"
        f"{_aside(document, breakdown, part, asgi)}."
    )


def _whose(breakdown: Breakdown, found: list[Breakdown]) -> str:
    return breakdown.request if len(found) > 1 else f"The request ({breakdown.request})"


def _aside(document: Mapping[str, Any], worst: Breakdown, main: Part, asgi: bool) -> str:
    if main == "loop_wait":
        return _while(document, worst)
    if main == "blocked_in_thread" and asgi:
        return ", not the event loop"
    return ""


def _while(document: Mapping[str, Any], waiting: Breakdown) -> str:
    """Whose stall held the loop longest while ``waiting`` was in the server."""
    summary = next(r for r in document["requests"] if r["id"] == waiting.request)
    start, end = summary["received_ns"], summary["finished_ns"]
    best, overlap = None, 0
    for event in document["events"]:
        if event["kind"] != kinds.LOOP_BLOCKED or event["request"] == waiting.request:
            continue
        covered = min(end, event["t_ns"]) - max(start, event["started_ns"])
        if covered > overlap:
            best, overlap = event, covered
    if best is None:
        return ""
    who = best["request"] or "code outside the traced requests"
    held_by = f" ran {best['held_by']}" if best["held_by"] else " held it"
    return f"; meanwhile {who}{held_by} on the loop for {ms(overlap)}"


def _longest_queue(found: list[Breakdown]) -> Breakdown | None:
    queued = [b for b in found if (b.waiting_to_be_served_ns or 0) > QUEUE_WAIT_NS]
    return max(queued, key=lambda b: b.waiting_to_be_served_ns or 0, default=None)


def _threads_for(document: Mapping[str, Any]) -> str:
    server = document.get("server") or {}
    workers, threads = server.get("workers"), server.get("threads")
    if type(workers) is not int or type(threads) is not int:
        return ""
    return (
        f": the server had {plural(workers, 'worker')} \N{MULTIPLICATION SIGN} "
        f"{plural(threads, 'thread')} for {plural(len(document['requests']), 'request')}"
    )


def _next_change(
    document: Mapping[str, Any], main: Part, asgi: bool, *, queued: bool
) -> tuple[str, str]:
    """The lab set up for the run that shows the other side of this one."""
    setup = setup_of(document)
    slug, requests = setup["scenario"], int(setup["requests"] or 1)
    changes: dict[str, str]
    if queued:
        threads = max(requests, 2)
        changes = {"server": "wsgi", "workers": "1", "threads": str(threads)}
        text = f"Run it again with {threads} threads, enough for every request"
    elif main in _HOLDS_LOOP and slug in _UNBLOCKED:
        changes = {"scenario": _UNBLOCKED[slug], "requests": str(max(requests, 4))}
        text = "Run the view that does the same without holding the event loop"
    elif requests == 1:
        changes = {"requests": "4"}
        text = "Send 4 requests at once and see what the others do meanwhile"
    elif main in ("awaiting_io", "awaiting") and asgi:
        changes = {"scenario": "sync-io", "server": "wsgi", "workers": "1", "threads": "1"}
        text = "Compare: a sync view on a WSGI server with one thread"
    elif main == "blocked_in_thread":
        changes = {"scenario": "async-io", "server": "asgi"}
        text = "Compare: the same wait in an async view, awaited on the event loop"
    else:
        changes = {"server": "wsgi" if asgi else "asgi"}
        text = f"Compare: the same requests on {'WSGI' if asgi else 'ASGI'}"
    query = urlencode({key: value for key, value in {**setup, **changes}.items() if value})
    return text, f"{reverse('lab')}?{query}"
