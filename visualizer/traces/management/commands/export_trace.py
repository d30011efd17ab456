"""``manage.py export_trace ID [--format trace|chrome]``: print a stored trace as JSON."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from visualizer.traces.library import EXPORT_FORMATS, export, trace_document


class Command(BaseCommand):
    help = "Print a stored trace as its trace document or as Chrome Trace Event JSON."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("recording_id", help="the trace's id (see the trace library)")
        parser.add_argument("--format", choices=sorted(EXPORT_FORMATS), default="trace")
        parser.add_argument("--output", "-o", help="write to this file instead of stdout")

    def handle(self, *args: Any, **options: Any) -> None:
        document = trace_document(options["recording_id"])
        if document is None:
            raise CommandError(f"No trace with id {options['recording_id']!r} is stored.")
        text = export(document, options["format"])
        if options["output"]:
            with open(options["output"], "w", encoding="utf-8") as output:
                output.write(text)
        else:
            self.stdout.write(text)
