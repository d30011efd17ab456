"""Stored traces: every recorded run, every imported document, the bundled examples."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import timedelta
from typing import Any, cast

from django.db import connection, models, transaction
from django.utils import timezone

from tracer import events as trace_events
from tracer.events import Event, TraceDocument
from visualizer import lifeline


class Trace(models.Model):
    """One trace document. Its events and requests are rows of their own, so that any
    step can be read without loading the whole trace."""

    class Source(models.TextChoices):
        RECORDED = "recorded", "Recorded here"
        IMPORTED = "imported", "Imported"
        EXAMPLE = "example", "Bundled example"

    class Status(models.TextChoices):
        """Whether the run a trace comes from has ended (visualizer/traces/run_state.py)."""

        RECORDING = "recording", "Recording"
        COMPLETE = "complete", "Complete"
        # The server stopped (or the run failed) before the run ended: the trace is cut off.
        INTERRUPTED = "interrupted", "Interrupted"

    recording_id = models.CharField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    scenario_slug = models.CharField(max_length=64, blank=True, db_index=True)
    source = models.CharField(max_length=16, choices=Source.choices)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    # The document's own fields, except its requests and events.
    header = models.JSONField()
    event_count = models.PositiveIntegerField(default=0)
    request_count = models.PositiveIntegerField(default=0)
    # Set when someone names the trace in the library: a named recording is never pruned.
    named = models.BooleanField(default=False)
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.COMPLETE, db_index=True
    )
    # lifeline.identity() of the process that stored the trace first (for a run: the one
    # that started it): a trace still recording whose recorder has ended was cut off.
    recorder = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.name

    @property
    def scenario_title(self) -> str:
        scenario = self.header.get("scenario") or {}
        return str(scenario.get("title") or self.scenario_slug or "Unknown view")

    @property
    def current_status(self) -> str:
        """The status, where a trace still recording whose recorder has ended (a server
        killed before start-up marked it) counts as interrupted."""
        if self.status == self.Status.RECORDING and lifeline.is_running(self.recorder) is False:
            return self.Status.INTERRUPTED
        return self.status

    @property
    def interrupted(self) -> bool:
        return self.current_status == self.Status.INTERRUPTED

    def document(self) -> TraceDocument:
        """The trace document, as it was recorded or imported."""
        document = dict(self.header)
        document["requests"] = [r.data for r in self.requests.order_by("position")]
        document["events"] = list(self.events.order_by("seq").values_list("data", flat=True))
        # What was stored was a document recorded here or one the importer checked.
        return cast(TraceDocument, document)

    def rename(self, name: str) -> None:
        self.name, self.named = name, True
        self.save(update_fields=["name", "named"])

    @classmethod
    def prune(cls, *, keep: int, max_age: timedelta) -> int:
        """Delete automatic recordings (recorded here and never named) beyond the newest
        ``keep`` or older than ``max_age``; bundled examples, imported and named traces
        stay. Returns how many were deleted."""
        automatic = cls.objects.filter(source=cls.Source.RECORDED, named=False).exclude(
            status=cls.Status.RECORDING
        )
        newest = automatic.order_by("-created_at", "-id")
        surplus = list(newest.values_list("pk", flat=True)[keep:])
        too_old = automatic.filter(created_at__lt=timezone.now() - max_age)
        surplus += [pk for pk in too_old.values_list("pk", flat=True) if pk not in surplus]
        deleted = 0
        for start in range(0, len(surplus), 500):
            batch = surplus[start : start + 500]
            cls.objects.filter(pk__in=batch).delete()
            deleted += len(batch)
        return deleted

    @classmethod
    def store(
        cls, document: TraceDocument, *, source: str, name: str = "", status: str | None = None
    ) -> Trace:
        """Save a (validated) document, replacing an earlier save of the same recording
        (the trace of another kind with its id, left as it is, if there is one)."""
        stored = cls.store_many([document], source=source, name=name, status=status)
        return stored[0] if stored else cls.objects.get(recording_id=document["id"])

    @classmethod
    @transaction.atomic
    def store_many(
        cls,
        documents: list[TraceDocument],
        *,
        source: str,
        name: str = "",
        status: str | None = None,
    ) -> list[Trace]:
        """Save several documents with a handful of queries in all (the archiver saves
        many small recordings at once). A recording saved before keeps its name, source,
        recorder and place in the library; of one that has grown since, only its new events
        and its new or changed requests are written (a long run is saved many times while it
        goes on), anything else replaces it whole. Without a ``status``, a recording
        is still recording while one of its requests has not finished (see status_of)."""
        ids = [document["id"] for document in documents]
        existing: dict[str, Trace] = {
            t.recording_id: t for t in Trace.objects.filter(recording_id__in=ids)
        }
        # A save replaces only an earlier save of the same kind (a recording grown since):
        # an example or an imported trace changes only by rename or delete in the library.
        documents = [
            d for d in documents if d["id"] not in existing or existing[d["id"]].source == source
        ]
        kept = {d["id"] for d in documents}
        existing = {recording_id: t for recording_id, t in existing.items() if recording_id in kept}
        traces: list[Trace] = []
        fresh: list[Trace] = []
        # Of the traces saved before, those whose recording has grown since (the same
        # recording, more of it): only what is new of them is written. Any other (an
        # example recorded again) is replaced whole.
        grown: dict[str, int] = {}
        recorder = lifeline.identity()
        for document in documents:
            fields = _trace_fields(document, source=source, name=name)
            fields["status"] = status or status_of(document, source)
            trace: Trace | None = existing.get(document["id"])
            if trace is None:
                trace = Trace(recording_id=document["id"], recorder=recorder, **fields)
                fresh.append(trace)
            else:
                if _grown_from(trace, document):
                    grown[trace.recording_id] = trace.event_count
                # A default name counts the requests (a run is stored at its start, empty):
                # it follows them. A name someone gave stays.
                if not name and trace.name == _default_name(trace.header, trace.request_count):
                    trace.name = fields["name"]
                for field in UPDATED_FIELDS:
                    setattr(trace, field, fields[field])
            traces.append(trace)
        Trace.objects.bulk_create(fresh)
        if existing:
            Trace.objects.bulk_update(existing.values(), [*UPDATED_FIELDS, "name"])
            replaced = [t for t in existing.values() if t.recording_id not in grown]
            TraceEvent.objects.filter(trace__in=replaced).delete()
            TraceRequest.objects.filter(trace__in=replaced).delete()
        _save_requests(
            [(trace, document) for trace, document in zip(traces, documents, strict=True)],
            grown={t.pk for t in existing.values() if t.recording_id in grown},
        )
        _insert_events(
            (trace.pk, event)
            for trace, document in zip(traces, documents, strict=True)
            for event in document["events"][grown.get(trace.recording_id, 0) :]
        )
        return traces


def _grown_from(trace: Trace, document: TraceDocument) -> bool:
    """Whether ``document`` is the recording saved as ``trace``, with as many events or
    more: the recorder only ever adds events, numbered in order (seq 1, 2, …)."""
    events, saved = document["events"], trace.event_count
    return (
        trace.header.get("recorded_at") == document.get("recorded_at")
        and len(events) >= saved
        and (saved == 0 or events[saved - 1]["seq"] == saved)
    )


def _save_requests(saved: list[tuple[Trace, TraceDocument]], grown: set[int]) -> None:
    """Write each trace's requests: all of a new or replaced trace's; of a grown one,
    those it did not have and those that changed since (one that has finished)."""
    stored: dict[tuple[int, int], TraceRequest] = {
        (r.trace_id, r.position): r for r in TraceRequest.objects.filter(trace_id__in=grown)
    }
    added: list[tuple[Any, ...]] = []
    changed: list[TraceRequest] = []
    for trace, document in saved:
        for position, request in enumerate(document["requests"]):
            row = stored.get((trace.pk, position)) if trace.pk in grown else None
            if row is None:
                added.append(
                    (trace.pk, position, request["id"], request["received_ns"], json.dumps(request))
                )
            elif row.data != request:
                row.data = request
                changed.append(row)
    _insert_rows(TraceRequest, ("trace_id", "position", "request_id", "received_ns", "data"), added)
    TraceRequest.objects.bulk_update(changed, ["data"], batch_size=2000)


# What a later save of a recording changes (a recording grown since).
UPDATED_FIELDS = ["header", "event_count", "request_count", "status"]


def status_of(document: TraceDocument, source: str) -> str:
    """A recording made here is still recording while one of its requests has not
    finished; an imported trace or an example is complete, as it came."""
    if source == Trace.Source.RECORDED and any(
        request.get("finished_ns") is None for request in document["requests"]
    ):
        return Trace.Status.RECORDING
    return Trace.Status.COMPLETE


def _trace_fields(document: TraceDocument, *, source: str, name: str) -> dict[str, Any]:
    scenario = document.get("scenario")
    return {
        "name": name or _default_name(document, len(document["requests"])),
        "scenario_slug": (scenario.get("slug") if scenario else None) or "",
        "source": source,
        "header": {k: v for k, v in document.items() if k not in ("requests", "events")},
        "event_count": len(document["events"]),
        "request_count": len(document["requests"]),
    }


def _insert_events(events: Iterable[tuple[int, Event]]) -> None:
    """Insert (trace id, event) pairs."""
    rows = ((pk, e["seq"], e["kind"], e["request"] or "", json.dumps(e)) for pk, e in events)
    _insert_rows(TraceEvent, ("trace_id", "seq", "kind", "request_id", "data"), rows)


def _insert_rows(
    model: type[models.Model], columns: tuple[str, ...], rows: Iterable[tuple[Any, ...]]
) -> None:
    """Insert rows of ``model`` (values in the order of ``columns``, JSON fields encoded)
    without the ORM's per-object work: with bulk_create a 100,000-event import took 5.6 s
    on SQLite, and its 10,000 requests half a second; this takes a fraction of that (see
    bench/replay_scale.py). Postgres gets COPY, the fastest way in."""
    table = connection.ops.quote_name(model._meta.db_table)
    names = f"({', '.join(columns)})"
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            with cursor.cursor.copy(f"COPY {table} {names} FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            return
        sql = f"INSERT INTO {table} {names} VALUES ({', '.join(['%s'] * len(columns))})"
        batch: list[tuple[Any, ...]] = []
        for row in rows:
            batch.append(row)
            if len(batch) == 5000:
                cursor.executemany(sql, batch)
                batch = []
        if batch:
            cursor.executemany(sql, batch)


def _default_name(header: Mapping[str, Any], count: int) -> str:
    """A trace's name unless someone gives it one: its scenario and request count."""
    scenario = header.get("scenario")
    title = (scenario.get("title") if scenario else None) or "Trace"
    return f"{title}, {count} request{'s' if count != 1 else ''}"


class TraceRequest(models.Model):
    trace = models.ForeignKey(Trace, on_delete=models.CASCADE, related_name="requests")
    position = models.PositiveIntegerField()
    request_id = models.CharField(max_length=64)
    received_ns = models.BigIntegerField()
    data = models.JSONField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["trace", "request_id"], name="unique_request_id"),
        ]
        indexes = [
            models.Index(fields=["trace", "position"]),
            models.Index(fields=["trace", "received_ns"]),
        ]

    def __str__(self) -> str:
        return self.request_id


class TraceEvent(models.Model):
    trace = models.ForeignKey(Trace, on_delete=models.CASCADE, related_name="events")
    seq = models.PositiveIntegerField()
    kind = models.CharField(max_length=32, choices=[(k, k) for k in trace_events.KINDS])
    request_id = models.CharField(max_length=64, blank=True)  # "" for no request
    data = models.JSONField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["trace", "seq"], name="unique_event_seq"),
        ]
        # Reading one request's events up to a step costs what that request has, not
        # what the whole trace has.
        indexes = [models.Index(fields=["trace", "request_id", "seq"])]

    def __str__(self) -> str:
        return f"{self.seq} {self.kind}"
