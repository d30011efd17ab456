"""``manage.py serve``: apply migrations, then serve the app with Daphne and print its URL."""

from __future__ import annotations

from typing import Any

from daphne.cli import CommandLineInterface
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser


class Command(BaseCommand):
    help = "Apply migrations and serve the visualizer with Daphne (HTTP and WebSockets)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)

    def handle(self, *args: Any, **options: Any) -> None:
        call_command("migrate", interactive=False, verbosity=0)
        host, port = options["host"], options["port"]
        shown = f"[{host}]" if ":" in host else host
        self.stdout.write(f"Serving on http://{shown}:{port}/ (Ctrl+C to stop)")
        self.stdout.flush()
        CommandLineInterface().run(
            ["-b", host, "-p", str(port), "--proxy-headers", "visualizer.asgi:application"]
        )
