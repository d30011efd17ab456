"""``manage.py import_trace FILE``: validate and store a trace document; print its id."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from tracer.validation import TraceRejected
from visualizer.traces.library import STORED, import_document


class Command(BaseCommand):
    help = (
        "Import a trace document (JSON). Prints the stored trace's id (the one already "
        "stored if the library holds the same trace)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path)
        parser.add_argument("--name", default="", help="name shown in the library")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            raw = options["file"].read_bytes()
        except OSError as error:
            raise CommandError(f"Cannot read {options['file']}: {error.strerror}") from None
        try:
            imported = import_document(raw, name=options["name"])
        except TraceRejected as rejection:
            raise CommandError(f"{options['file']} was not imported: {rejection}") from None
        if imported.outcome != STORED:
            self.stderr.write(imported.message)
        self.stdout.write(imported.trace.recording_id)
