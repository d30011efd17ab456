"""What the loop picture's state and the time breakdown cost on a 20,000-event trace.

Records a real async-io run (--requests concurrent requests) through Daphne, tiles it into
a document of --events events (new request ids, times shifted), then measures in this
process:

- reading the document once (tracer.picture.Picture) and asking for the state at every
  step (picture.state_at), as a player stepping through it would;
- reading it as a live stream would: Picture.update() after each new event;
- the breakdown of every request (tracer.breakdown.breakdowns).

Target: state_at p95 <= 2 ms a step (the replay bench's step render target is 30 ms). The
median round decides.

    uv run python bench/picture_cost.py [--rounds 3] [--events 20000] [--requests 50]
"""

from __future__ import annotations

import argparse
import asyncio
import os
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
from tracer.breakdown import breakdowns  # noqa: E402
from tracer.picture import Picture  # noqa: E402

TARGET_MS = 2.0


def one_round(document: dict[str, Any]) -> dict[str, float]:
    started = time.perf_counter()
    picture = Picture(document)
    read_ms = (time.perf_counter() - started) * 1000
    per_step = []
    for step in range(1, len(document["events"]) + 1):
        started = time.perf_counter()
        picture.state_at(step)
        per_step.append((time.perf_counter() - started) * 1000)
    growing: dict[str, Any] = {**document, "events": []}
    live = Picture(growing)
    started = time.perf_counter()
    for event in document["events"]:
        growing["events"].append(event)
        live.update(growing)
    live_ms = (time.perf_counter() - started) * 1000
    started = time.perf_counter()
    breakdowns(document)
    breakdown_ms = (time.perf_counter() - started) * 1000
    return {
        "read_ms": read_ms,
        "step_p50_ms": statistics.median(per_step),
        "step_p95_ms": statistics.quantiles(per_step, n=20)[18],
        "live_ms": live_ms,
        "breakdown_ms": breakdown_ms,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_rounds_argument(parser)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--requests", type=int, default=50)
    arguments = parser.parse_args()
    check_rounds(parser, arguments.rounds)

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "visualizer.settings")
    os.environ.setdefault("DATA_DIR", tempfile.mkdtemp(prefix="picture-cost-"))
    import django

    django.setup()
    from visualizer.scenarios.catalog import SCENARIOS
    from visualizer.scenarios.runs import record_run
    from visualizer.server_process import DaphneServer

    with DaphneServer(env={"DATA_DIR": tempfile.mkdtemp(), "TRACING_ENABLED": "true"}) as server:
        recorded = asyncio.run(
            record_run(
                server.base_url,
                SCENARIOS["async-io"],
                requests=arguments.requests,
                params={"delay_ms": 100},
            )
        )
    document = tile(recorded, arguments.events)
    print(machine())
    print(
        f"trace: {len(document['events'])} events, {len(document['requests'])} requests "
        f"({arguments.requests} at once, tiled from one real async-io run)"
    )
    rounds = []
    for number in range(1, arguments.rounds + 1):
        figures = one_round(document)
        rounds.append(figures)
        print(f"round {number}: " + ", ".join(f"{k} {v:.3f}" for k, v in figures.items()))
    if not median_against_target(
        "state_at p95", [r["step_p95_ms"] for r in rounds], TARGET_MS, " ms"
    ):
        sys.exit(1)


if __name__ == "__main__":
    main()
