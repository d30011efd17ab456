"""How a 100,000-event trace imports and replays.

Records a real async-io run (4 concurrent requests) through Daphne, tiles its requests into
a document of --events events (new request ids, times shifted, sequence renumbered), then
measures, in this process against the configured database (SQLite in a temporary folder,
or DATABASE_URL):

- the import: validation plus storage, as the upload and the import_trace command do it;
- the server time to render the player page at --steps random steps (Django's test client,
  the whole request), with the number of SQL queries per step.

Targets: import <= 5 s; step render p95 <= 30 ms, with queries per step not growing with
the trace's length. Each of --rounds rounds imports the document afresh and renders its
steps; the median round decides.

    uv run python bench/replay_scale.py [--rounds 3] [--events 100000] [--steps 200]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import (  # noqa: E402
    add_rounds_argument,
    check_rounds,
    machine,
    median_against_target,
    tile,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_rounds_argument(parser)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--steps", type=int, default=200, help="steps rendered a round")
    arguments = parser.parse_args()
    check_rounds(parser, arguments.rounds)

    data_dir = tempfile.mkdtemp(prefix="replay-scale-")
    os.environ["DATA_DIR"] = data_dir
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "visualizer.settings")
    os.environ["TRACE_IMPORT_MAX_BYTES"] = str(1024**3)
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from visualizer.scenarios.catalog import SCENARIOS
    from visualizer.scenarios.runs import record_run
    from visualizer.server_process import DaphneServer
    from visualizer.traces.library import import_trace
    from visualizer.traces.models import Trace

    call_command("migrate", "--noinput", verbosity=0)
    with DaphneServer(env={"DATA_DIR": tempfile.mkdtemp(), "TRACING_ENABLED": "true"}) as server:
        recorded = asyncio.run(
            record_run(server.base_url, SCENARIOS["async-io"], requests=4, params={"delay_ms": 20})
        )
    document = {**tile(recorded, arguments.events), "id": "scale-bench"}
    raw = json.dumps(document).encode()
    print(machine())
    print(
        f"database {connection.vendor}; trace: {len(document['events'])} events, "
        f"{len(document['requests'])} requests, {len(raw) / 1024 / 1024:.1f} MB of JSON"
    )
    imports, p95s = [], []
    for round_number in range(1, arguments.rounds + 1):
        Trace.objects.filter(recording_id=document["id"]).delete()
        started = time.perf_counter()
        trace = import_trace(raw)
        import_seconds = time.perf_counter() - started
        first_ms, timings, queries = render_steps(trace, arguments.steps, round_number)
        p95 = statistics.quantiles(timings, n=100)[94]
        imports.append(import_seconds)
        p95s.append(p95)
        print(
            f"round {round_number}: import (validate + store) {import_seconds:.2f} s; first "
            f"render (key moments, summary figures) {first_ms:.0f} ms; {len(timings)} random "
            f"steps: p50 {statistics.median(timings):.1f} ms, p95 {p95:.1f} ms, max "
            f"{max(timings):.1f} ms; SQL queries a step: min {min(queries)}, max {max(queries)}"
        )
        Trace.objects.filter(pk=trace.pk).delete()
    median_against_target("import", imports, 5, " s")
    median_against_target("step render p95", p95s, 30, " ms")


def render_steps(trace: Any, count: int, seed: int) -> tuple[float, list[float], list[int]]:
    """Render the player at ``count`` random steps of ``trace`` (Django's test client, the
    whole request): the first render's time, each step's time and SQL query count."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client(HTTP_HOST="127.0.0.1")  # a host the settings allow
    url = f"/scenarios/async-io/?recording={trace.recording_id}&step="
    rng = random.Random(seed)
    steps = [rng.randint(1, trace.event_count) for _ in range(count)]
    # The first render also finds the trace's key moments and summary figures (kept for
    # the steps after it), and warms templates and imports.
    started = time.perf_counter()
    client.get(url + "1")
    first_ms = (time.perf_counter() - started) * 1000
    timings, queries = [], []
    for step in steps:
        with CaptureQueriesContext(connection) as captured:
            started = time.perf_counter()
            response = client.get(url + str(step))
            timings.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, response.status_code
        queries.append(len(captured))
    return first_ms, timings, queries


if __name__ == "__main__":
    main()
