"""``manage.py import_trace FILE``: validate and store a trace document; print its id."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from tracer.validation import TraceRejected
from visualizer.library import import_trace


class Command(BaseCommand):
    help = "Import a trace document (JSON). Prints the stored trace's id."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path)
        parser.add_argument("--name", default="", help="name shown in the library")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            raw = options["file"].read_bytes()
        except OSError as error:
            raise CommandError(f"Cannot read {options['file']}: {error.strerror}") from None
        try:
            trace = import_trace(raw, name=options["name"])
        except TraceRejected as rejection:
            raise CommandError(f"{options['file']} was not imported: {rejection}") from None
        self.stdout.write(trace.recording_id)
