"""Where the player reads a trace from: a document in memory (a live or just-finished run)
or a stored trace in the database. Both answer the same few questions, each at a cost that
does not grow with the trace's length (the database ones through indexes)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Protocol

from django.db.models import QuerySet

from tracer.django_integration import get_tracer
from tracer.events import EditedCode, Event, JSONObject, RequestSummary, TraceDocument
from tracer.picture import Picture
from visualizer.traces.models import Trace, TraceEvent, TraceRequest
from visualizer.traces.narration import CONTEXT_KINDS, TraceContext, context_of
from visualizer.traces.steps import run_start_ns


class TraceSource(Protocol):
    recording_id: str
    scenario_slug: str
    total: int

    def events_between(self, first: int, last: int) -> list[Event]:
        """Events with first <= seq <= last, in order."""

    def request_events(self, request_id: str, last: int) -> list[Event]:
        """One request's events with seq <= last, in order."""

    def received_ns(self, request_ids: set[str]) -> dict[str, int]:
        """When each of these requests arrived."""

    def first_received_ns(self) -> int | None: ...

    def events_of_kinds(self, kinds: tuple[str, ...]) -> list[Event]:
        """All events of these kinds, in order."""

    def requests(self) -> list[RequestSummary]:
        """The trace's requests, in order of arrival."""

    def first_request(self) -> str | None: ...

    def server(self) -> JSONObject:
        """The document's ``server`` object (interface, software, thread model)."""

    def document(self) -> TraceDocument:
        """The whole trace document."""


class DocumentSource:
    """A trace document held in memory."""

    def __init__(self, document: TraceDocument) -> None:
        self._document = document
        self.recording_id = document["id"]
        scenario = document.get("scenario")
        self.scenario_slug = (scenario.get("slug") if scenario else None) or ""
        self.events: list[Event] = document["events"]
        self.total = len(self.events)
        self._received = {r["id"]: r["received_ns"] for r in document["requests"]}

    def events_between(self, first: int, last: int) -> list[Event]:
        return self.events[max(first, 1) - 1 : max(last, 0)]

    def request_events(self, request_id: str, last: int) -> list[Event]:
        return [e for e in self.events[:last] if e["request"] == request_id]

    def received_ns(self, request_ids: set[str]) -> dict[str, int]:
        return {r: self._received[r] for r in request_ids if r in self._received}

    def first_received_ns(self) -> int | None:
        return min(self._received.values(), default=None)

    def first_request(self) -> str | None:
        return next(iter(self._received), None)

    def document(self) -> TraceDocument:
        return self._document

    def server(self) -> JSONObject:
        return dict(self._document.get("server") or {})

    def events_of_kinds(self, kinds: tuple[str, ...]) -> list[Event]:
        return [event for event in self.events if event["kind"] in kinds]

    def requests(self) -> list[RequestSummary]:
        return list(self._document["requests"])


class StoredSource:
    """A trace in the database."""

    def __init__(self, trace: Trace) -> None:
        self.trace = trace
        self.recording_id = trace.recording_id
        self.scenario_slug = trace.scenario_slug
        self.total = trace.event_count

    def _events(self) -> QuerySet[TraceEvent]:
        return TraceEvent.objects.filter(trace=self.trace).order_by("seq")

    def events_between(self, first: int, last: int) -> list[Event]:
        return list(
            self._events().filter(seq__gte=first, seq__lte=last).values_list("data", flat=True)
        )

    def request_events(self, request_id: str, last: int) -> list[Event]:
        rows = self._events().filter(request_id=request_id, seq__lte=last)
        return list(rows.values_list("data", flat=True))

    def received_ns(self, request_ids: set[str]) -> dict[str, int]:
        rows = TraceRequest.objects.filter(trace=self.trace, request_id__in=request_ids)
        return dict(rows.values_list("request_id", "received_ns"))

    def first_received_ns(self) -> int | None:
        first = TraceRequest.objects.filter(trace=self.trace).order_by("received_ns").first()
        return first.received_ns if first else None

    def first_request(self) -> str | None:
        first = TraceRequest.objects.filter(trace=self.trace).order_by("position").first()
        return first.request_id if first else None

    def document(self) -> TraceDocument:
        return self.trace.document()

    def server(self) -> JSONObject:
        return dict(self.trace.header.get("server") or {})

    def events_of_kinds(self, kinds: tuple[str, ...]) -> list[Event]:
        return list(self._events().filter(kind__in=kinds).values_list("data", flat=True))

    def requests(self) -> list[RequestSummary]:
        rows = TraceRequest.objects.filter(trace=self.trace).order_by("position")
        return list(rows.values_list("data", flat=True))


def per_trace[Result](
    compute: Callable[[TraceSource], Result],
) -> Callable[[TraceSource], Result]:
    """Remember what ``compute`` found for the traces seen lately, by recording and number
    of events: a stored trace never changes, and a growing one has a new length."""
    recent: dict[tuple[str, int], Result] = {}

    def cached(source: TraceSource) -> Result:
        key = (source.recording_id, source.total)
        if key not in recent:
            if len(recent) >= 64:
                del recent[next(iter(recent))]
            recent[key] = compute(source)
        return recent[key]

    return cached


def edited_code_of(source: TraceSource) -> EditedCode | None:
    """The code that ran, if the trace is a run of an edited view (the playground)."""
    if isinstance(source, DocumentSource):
        return source.document().get("code")
    if isinstance(source, StoredSource):
        code: EditedCode | None = source.trace.header.get("code")
        return code
    return None


@per_trace
def run_start_of(source: TraceSource) -> int | None:
    """When the recording's run began (steps.run_start_ns), read once per trace."""
    return run_start_ns(source.requests())


@per_trace
def trace_context(source: TraceSource) -> TraceContext:
    """What the trace's texts depend on, read once per trace (and length)."""
    return context_of(source.server(), source.requests(), source.events_of_kinds(CONTEXT_KINDS))


class _Pictures:
    """The Picture of each trace seen lately, read once: a stored trace never changes, and
    a growing (live) document is read on from where its Picture stopped, so a step costs a
    ``state_at``, not a read of the whole trace. One lock: Picture.update is not safe to
    run beside a state_at of the same Picture."""

    def __init__(self, size: int = 16) -> None:
        self.size = size
        self._lock = threading.Lock()
        self._recent: dict[tuple[str, str], Picture] = {}

    def read[Result](self, source: TraceSource, read: Callable[[Picture], Result]) -> Result:
        """``read(picture)`` of the source's Picture (made or read on first)."""
        # A stored trace by its row: one deleted and imported again under its id is another.
        key = (
            source.recording_id,
            str(source.trace.pk) if isinstance(source, StoredSource) else "",
        )
        with self._lock:  # pages and the live stream render on several threads
            picture = self._recent.pop(key, None)
            if picture is not None and not _same_trace(picture, source):
                picture = None
            if picture is not None and len(picture.events) < source.total:
                picture.update(source.document())
            # A live page renders a step of the recording as it was then, while the Picture
            # may have read on: what came later only tells it more of that moment.
            if picture is None:
                picture = Picture(source.document())
            self._recent[key] = picture
            if len(self._recent) > self.size:
                del self._recent[next(iter(self._recent))]
            return read(picture)


def _same_trace(picture: Picture, source: TraceSource) -> bool:
    """Whether ``picture`` read this trace (or the start of it, if it is growing)."""
    if not isinstance(source, DocumentSource):
        return len(picture.events) == source.total  # a stored trace stored again: reread
    # A recording's documents share its event objects; another document with the same id
    # (an import, a test) does not.
    common = min(len(picture.events), source.total)
    return common > 0 and picture.events[common - 1] is source.events[common - 1]


pictures = _Pictures()


def find_source(recording_id: str) -> TraceSource | None:
    """A recording: the stored one, unless this server's memory holds more of it (a run
    still going on). The stored one may have more than the tracer saw, such as the
    client's timings of a lab run."""
    trace = Trace.objects.filter(recording_id=recording_id).first()
    recording = get_tracer().store.get(recording_id)
    if recording is not None and (trace is None or len(recording.events) > trace.event_count):
        return DocumentSource(recording.document())
    return StoredSource(trace) if trace is not None else None
