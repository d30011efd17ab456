"""``manage.py record_examples``: record the bundled example traces from the real scenarios.

Each example is a real run through a real Daphne server, never written by hand. The files
go to visualizer/traces/examples/ and are stored on first start (after migrations).
"""

from __future__ import annotations

import asyncio
import json
import tempfile
from typing import Any

from django.core.management.base import BaseCommand

from visualizer.scenarios.catalog import SCENARIOS
from visualizer.scenarios.runs import record_run
from visualizer.scenarios.subject import ROLE_ENV
from visualizer.server_process import DaphneServer
from visualizer.traces.library import EXAMPLES_DIR

# (file name, scenario, concurrent requests, parameters)
EXAMPLES = (
    ("async-io-1-request", "async-io", 1, {"delay_ms": 300}),
    ("async-io-4-requests", "async-io", 4, {"delay_ms": 300}),
    ("sync-io-1-request", "sync-io", 1, {"delay_ms": 300}),
    ("sync-io-4-requests", "sync-io", 4, {"delay_ms": 300}),
    ("async-cpu-1-request", "async-cpu", 1, {"work": 100_000}),
    ("async-cpu-4-requests", "async-cpu", 4, {"work": 60_000}),
)


class Command(BaseCommand):
    help = "Record the bundled example traces from real runs of the scenarios."

    def handle(self, *args: Any, **options: Any) -> None:
        EXAMPLES_DIR.mkdir(exist_ok=True)
        with (
            tempfile.TemporaryDirectory() as data_dir,
            # The subject process alone: the traced views and nothing else on its loop.
            DaphneServer(
                env={"TRACING_ENABLED": "true", "DATA_DIR": data_dir, ROLE_ENV: "subject"}
            ) as server,
        ):
            for name, slug, requests, params in EXAMPLES:
                document = asyncio.run(
                    record_run(server.base_url, SCENARIOS[slug], requests=requests, params=params)
                )
                document["id"] = f"example-{name}"
                path = EXAMPLES_DIR / f"{name}.json"
                path.write_text(json.dumps(document, indent=1) + "\n")
                self.stdout.write(f"{path.name}: {len(document['events'])} steps")
