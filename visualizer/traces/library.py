"""Storing, importing and exporting trace documents, for the library page and commands."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet

from tracer.chrome_trace import to_chrome_trace
from tracer.events import TraceDocument
from tracer.validation import parse_trace
from visualizer.traces.models import Trace
from visualizer.traces.sources import find_source

EXAMPLES_DIR = Path(__file__).resolve().parent / "examples"
# The library lists this many traces, newest first; so do the forms that pick one.
LISTED = 500


def listed_traces() -> QuerySet[Trace]:
    """The stored traces the library lists, newest first. The parts WSGI workers store of
    a lab run going on are left out: they become its one trace at its end."""
    return Trace.objects.exclude(status=Trace.Status.RECORDING, recording_id__regex=r"-w\d+$")


def compare_choices() -> QuerySet[Trace]:
    """The recordings a compare form offers (only what an option shows is read)."""
    return listed_traces().only("recording_id", "name")[:LISTED]


@dataclass(frozen=True)
class Imported:
    """What an import did: stored the document, found it stored already, or stored it
    under a new id because the library holds a different trace with its id."""

    trace: Trace
    outcome: str  # STORED, ALREADY or RENAMED
    document_id: str  # the id the document came with

    @property
    def message(self) -> str:
        if self.outcome == ALREADY:
            return f"{self.document_id} is already in the library; nothing was changed."
        if self.outcome == RENAMED:
            return (
                f"The library already holds a different trace with the id {self.document_id}, "
                f"so this one was stored as {self.trace.recording_id}."
            )
        return f"Stored as {self.trace.recording_id}."


STORED, ALREADY, RENAMED = "stored", "already", "renamed"


def import_document(raw: bytes, *, source: str = Trace.Source.IMPORTED, name: str = "") -> Imported:
    """Validate and store an uploaded document. Importing one the library already holds
    (same id, same requests and events) changes nothing; one whose id is taken by another
    trace is stored under a new id. Raises TraceRejected, storing nothing."""
    document = parse_trace(raw, max_bytes=settings.TRACE_IMPORT_MAX_BYTES)
    document_id = document["id"]
    with transaction.atomic():
        existing = Trace.objects.filter(recording_id=document_id).first()
        if existing is None:
            return Imported(Trace.store(document, source=source, name=name), STORED, document_id)
        if _same_recording(existing.document(), document):
            return Imported(existing, ALREADY, document_id)
        document["id"] = _free_id(document_id)
        return Imported(Trace.store(document, source=source, name=name), RENAMED, document_id)


def import_trace(raw: bytes, *, source: str = Trace.Source.IMPORTED, name: str = "") -> Trace:
    """import_document, for callers that need only the stored trace."""
    return import_document(raw, source=source, name=name).trace


def _same_recording(stored: TraceDocument, document: TraceDocument) -> bool:
    # The version may differ (a version-1 export read as version 2); the rest may not.
    keys = ("requests", "events", "scenario", "server", "recorded_at")
    return all(stored.get(key) == document.get(key) for key in keys)


def _free_id(taken: str) -> str:
    while True:
        candidate = f"{taken[:55]}-{uuid.uuid4().hex[:8]}"
        if not Trace.objects.filter(recording_id=candidate).exists():
            return candidate


def trace_document(recording_id: str) -> TraceDocument | None:
    """A recording's whole document, from wherever find_source finds it."""
    source = find_source(recording_id)
    return source.document() if source is not None else None


EXPORT_FORMATS = {"trace": "", "chrome": ".chrome"}


def export(document: TraceDocument, export_format: str) -> str:
    """The document as JSON text, either as is ("trace") or for Perfetto ("chrome")."""
    if export_format == "chrome":
        return json.dumps(to_chrome_trace(document))
    return json.dumps(document)


def load_examples() -> list[Trace]:
    """Store the bundled example traces that are not stored yet, and replace stored ones
    that were recorded again since (their line numbers follow the current source)."""
    stored = []
    for path in sorted(EXAMPLES_DIR.glob("*.json")):
        raw = path.read_bytes()
        document = json.loads(raw)
        existing = Trace.objects.filter(recording_id=document["id"]).first()
        if existing is None:
            stored.append(import_trace(raw, source=Trace.Source.EXAMPLE, name=_example_name(path)))
        elif (
            existing.source == Trace.Source.EXAMPLE
            and existing.header.get("recorded_at") != document["recorded_at"]
        ):
            stored.append(Trace.store(parse_trace(raw), source=Trace.Source.EXAMPLE))
    return stored


def _example_name(path: Path) -> str:
    return "Example: " + path.stem.replace("-", " ").replace("  ", " ")
