"""Storing, importing and exporting trace documents, for the library page and commands."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction

from tracer.chrome_trace import to_chrome_trace
from tracer.validation import TraceRejected, parse_trace
from visualizer.models import Trace
from visualizer.sources import find_source

EXAMPLES_DIR = Path(__file__).resolve().parent / "examples"


def import_trace(raw: bytes, *, source: str = Trace.Source.IMPORTED, name: str = "") -> Trace:
    """Validate and store an uploaded document. Raises TraceRejected, storing nothing."""
    document = parse_trace(raw, max_bytes=settings.TRACE_IMPORT_MAX_BYTES)
    with transaction.atomic():
        if Trace.objects.filter(recording_id=document["id"]).exists():
            raise TraceRejected(
                f"a trace with this id ({document['id']}) is already stored; delete it first "
                "or change the document's id",
                "id",
            )
        return Trace.store(document, source=source, name=name)


def trace_document(recording_id: str) -> dict[str, Any] | None:
    """A recording's whole document, from wherever find_source finds it."""
    source = find_source(recording_id)
    return source.document() if source is not None else None


EXPORT_FORMATS = {"trace": "", "chrome": ".chrome"}


def export(document: dict[str, Any], export_format: str) -> str:
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
