"""``manage.py trace SCENARIO``: record real requests to a scenario and print the trace."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from visualizer.scenarios.catalog import SCENARIOS
from visualizer.scenarios.runs import RunFailed, record_run
from visualizer.scenarios.scenario_views import MAX_CPU_WORK, MAX_DELAY_MS, MAX_FILE_KB
from visualizer.scenarios.subject import ROLE_ENV
from visualizer.server_process import DaphneServer, GunicornServer
from visualizer.traces.steps import render_text

MAX_REQUESTS = 200


class Command(BaseCommand):
    help = (
        "Start the scenario views under Daphne on a free loopback port, send N concurrent "
        "requests to a scenario's real view, and print the execution table and variable tracker."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("scenario", help=f"one of: {', '.join(SCENARIOS)}")
        parser.add_argument("--requests", type=int, default=1, help="concurrent requests (1-200)")
        parser.add_argument("--json", action="store_true", help="print only the trace document")
        parser.add_argument("--delay-ms", type=int, help="I/O delay of the I/O scenarios")
        parser.add_argument("--work", type=int, help="CPU work size of the CPU scenarios")
        parser.add_argument("--size-kb", type=int, help="file size of async-file")
        parser.add_argument(
            "--server",
            choices=["asgi", "wsgi"],
            default="asgi",
            help="asgi: Daphne (default); wsgi: gunicorn, one worker process",
        )
        parser.add_argument(
            "--threads", type=int, default=1, help="threads of the WSGI worker (1-64)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        scenario = SCENARIOS.get(options["scenario"])
        if scenario is None:
            raise CommandError(
                f"Unknown scenario {options['scenario']!r}. Choose one of: {', '.join(SCENARIOS)}",
                returncode=2,
            )
        count = options["requests"]
        if not 1 <= count <= MAX_REQUESTS:
            raise CommandError(f"--requests must be from 1 to {MAX_REQUESTS}", returncode=2)
        params = {}
        for name, limit in (
            ("delay_ms", MAX_DELAY_MS),
            ("work", MAX_CPU_WORK),
            ("size_kb", MAX_FILE_KB),
        ):
            if options[name] is None:
                continue
            if not 0 <= options[name] <= limit:
                option = "--" + name.replace("_", "-")
                raise CommandError(f"{option} must be from 0 to {limit}", returncode=2)
            params[name] = options[name]

        if not 1 <= options["threads"] <= 64:
            raise CommandError("--threads must be from 1 to 64", returncode=2)
        env = {"TRACING_ENABLED": "true"}
        server = (
            GunicornServer(env, threads=options["threads"])
            if options["server"] == "wsgi"
            # The subject process alone (no UI): the traced views and nothing else on its loop.
            else DaphneServer({**env, ROLE_ENV: "subject"})
        )
        with server:
            try:
                document = asyncio.run(
                    record_run(server.base_url, scenario, requests=count, params=params)
                )
            except RunFailed as error:
                raise CommandError(str(error)) from None
        if options["json"]:
            self.stdout.write(json.dumps(document, indent=2))
        else:
            self.stdout.write(render_text(document))
