"""``manage.py trace_url /path/ --requests N``: trace a project's own view from the command line."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from async_visualizer.client import record_requests
from async_visualizer.conf import get_config
from async_visualizer.report import report_text

MAX_REQUESTS = 200
BODY_METHODS = ("POST", "PUT", "PATCH")


class Command(BaseCommand):
    help = (
        "Send N concurrent requests to a path of this project through its ASGI application, "
        "in this process on a real event loop, and print the execution table and where the "
        "time went. Nothing leaves the machine."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", help="the path to request, e.g. /orders/?page=2")
        parser.add_argument(
            "--requests", type=int, default=1, help=f"concurrent requests (1-{MAX_REQUESTS})"
        )
        parser.add_argument(
            "--method", default="GET", choices=["GET", "HEAD", "DELETE", "POST", "PUT", "PATCH"]
        )
        parser.add_argument(
            "--data", help="the request body, sent with each request (POST, PUT or PATCH)"
        )
        parser.add_argument(
            "--content-type",
            help="the body's Content-Type (default application/json with --data)",
        )
        parser.add_argument("--host", default="localhost", help="the Host header to send")
        parser.add_argument("--export", metavar="FILE", help="also write the trace document")

    def handle(self, *args: Any, **options: Any) -> None:
        path: str = options["path"]
        if not path.startswith("/"):
            raise CommandError(f"the path must start with '/': {path!r}", returncode=2)
        count: int = options["requests"]
        if not 1 <= count <= MAX_REQUESTS:
            raise CommandError(f"--requests must be from 1 to {MAX_REQUESTS}", returncode=2)
        if not get_config()["ENABLED"]:
            raise CommandError(
                'tracing is off: set ASYNC_VISUALIZER["ENABLED"] = True to trace', returncode=2
            )
        export = Path(options["export"]) if options["export"] else None
        if export is not None and not export.parent.is_dir():
            raise CommandError(f"--export: no folder {export.parent}", returncode=2)
        method: str = options["method"]
        data: str | None = options["data"]
        if data is not None and method not in BODY_METHODS:
            raise CommandError(f"--data needs --method {', '.join(BODY_METHODS)}", returncode=2)
        if options["content_type"] is not None and data is None:
            raise CommandError("--content-type needs --data", returncode=2)
        content_type: str = options["content_type"] or "application/json"
        if not content_type.isascii() or not content_type.isprintable():
            raise CommandError("--content-type: printable ASCII only", returncode=2)
        body = os.fsencode(data) if data is not None else b""
        statuses, document = record_requests(
            path, count, method, options["host"], body, content_type if data is not None else None
        )
        if document is None:
            raise CommandError(
                f"{path} answered {', '.join(map(str, sorted(set(statuses))))} but its view is "
                'not traced: name it in ASYNC_VISUALIZER["VIEWS"] or decorate it with @trace'
            )
        self.stdout.write(report_text(document))
        if export is not None:
            export.write_text(json.dumps(document, indent=2))
            self.stdout.write(f"\nTrace written to {export}")
