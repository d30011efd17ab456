"""``manage.py trace SCENARIO``: record real requests to a scenario and print the trace."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from visualizer.lab.forms import MAX_LAB_REQUESTS, MAX_THREADS, LabForm
from visualizer.scenarios.catalog import SCENARIOS
from visualizer.scenarios.forms import PARAMETERS
from visualizer.scenarios.runs import RunFailed, record_run
from visualizer.scenarios.subject import ROLE_ENV
from visualizer.server_process import DaphneServer, GunicornServer
from visualizer.traces.steps import render_text


class Command(BaseCommand):
    help = (
        "Start the scenario views under Daphne on a free loopback port, send N concurrent "
        "requests to a scenario's real view, and print the execution table and variable tracker."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("scenario", help=f"one of: {', '.join(SCENARIOS)}")
        parser.add_argument(
            "--requests", default="1", help=f"concurrent requests (1-{MAX_LAB_REQUESTS})"
        )
        parser.add_argument("--json", action="store_true", help="print only the trace document")
        parser.add_argument("--delay-ms", help="I/O delay of the I/O scenarios")
        parser.add_argument("--work", help="CPU work size of the CPU scenarios")
        parser.add_argument("--size-kb", help="file size of async-file")
        parser.add_argument(
            "--server",
            choices=["asgi", "wsgi"],
            default="asgi",
            help="asgi: Daphne (default); wsgi: gunicorn, one worker process",
        )
        parser.add_argument(
            "--threads", default="1", help=f"threads of the WSGI worker (1-{MAX_THREADS})"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        scenario = SCENARIOS.get(options["scenario"])
        if scenario is None:
            raise CommandError(
                f"Unknown scenario {options['scenario']!r}. Choose one of: {', '.join(SCENARIOS)}",
                returncode=2,
            )
        # The lab's form checks the values, so they have the lab's limits and its messages.
        given = {
            name: options[name]
            for name in ("requests", "delay_ms", "work", "size_kb", "server", "threads")
            if options[name] is not None
        }
        try:
            count, params, _, threads, _ = LabForm(scenario, given).checked_lab()
        except ValueError as error:
            raise CommandError(str(error), returncode=2) from None
        unused = [n for n in PARAMETERS if n in given and n not in scenario.parameters]
        if unused:
            options_named = ", ".join("--" + name.replace("_", "-") for name in unused)
            raise CommandError(f"{scenario.slug} takes no {options_named}", returncode=2)
        env = {"TRACING_ENABLED": "true"}
        server = (
            GunicornServer(env, threads=threads)
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
