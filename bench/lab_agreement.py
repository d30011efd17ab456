"""Do the lab's timings agree with an independent HTTP client's?

Starts the app under Daphne, sends --requests concurrent requests to a scenario with its
own httpx client (timing each request itself, around the whole exchange), fetches the
recorded trace, and compares each request's duration in the trace (server: arrival to last
byte) with the client's measurement, and the lab's wall time with the client's.

    uv run python bench/lab_agreement.py [--scenario async-io] [--requests 20] [--delay-ms 300]

Target: agreement within 5 %.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "visualizer.settings")


async def send_all(base_url: str, path: str, count: int, delay_ms: int) -> dict[str, Any]:
    recording = f"agreement-{time.time_ns()}"
    timings: dict[str, float] = {}

    async def one(client: httpx.AsyncClient, ref: str) -> None:
        started = time.perf_counter()
        response = await client.get(
            path,
            params={"delay_ms": delay_ms},
            headers={"X-Trace-Recording": recording, "X-Trace-Client-Ref": ref},
        )
        timings[ref] = (time.perf_counter() - started) * 1000
        response.raise_for_status()

    limits = httpx.Limits(max_connections=None)
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=60) as client:
        wall_started = time.perf_counter()
        await asyncio.gather(*(one(client, f"c{i}") for i in range(count)))
        wall_ms = (time.perf_counter() - wall_started) * 1000
        document = (await client.get(f"/recordings/{recording}.json")).json()
    return {"document": document, "timings": timings, "wall_ms": wall_ms}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default="async-io")
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--delay-ms", type=int, default=300)
    arguments = parser.parse_args()

    import django

    django.setup()
    from visualizer.lab import lab_metrics
    from visualizer.scenarios import SCENARIOS
    from visualizer.server_process import DaphneServer

    scenario = SCENARIOS[arguments.scenario]
    data_dir = tempfile.mkdtemp(prefix="lab-agreement-")
    try:
        with DaphneServer(env={"TRACING_ENABLED": "true", "DATA_DIR": data_dir}) as server:
            run = (server.base_url, scenario.run_url, arguments.requests, arguments.delay_ms)
            asyncio.run(send_all(*run))  # warm-up: the server's first requests import code
            result = asyncio.run(send_all(*run))
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)

    document, timings = result["document"], result["timings"]
    differences = []
    for request in document["requests"]:
        client_ms = timings[request["client_ref"]]
        trace_ms = request["duration_ns"] / 1e6
        differences.append(abs(trace_ms - client_ms) / client_ms * 100)
    # The lab's wall time, from the trace alone (no client timings in this document).
    lab_wall = lab_metrics(document).wall_ms
    wall_difference = abs(lab_wall - result["wall_ms"]) / result["wall_ms"] * 100
    worst = max(differences)
    print(f"Python {platform.python_version()}, {os.cpu_count()} CPUs, Daphne on loopback")
    print(f"{arguments.requests} concurrent {scenario.slug} requests, {arguments.delay_ms} ms I/O")
    print(
        f"per request, trace vs client: mean difference {statistics.mean(differences):.2f} %, "
        f"max {worst:.2f} %"
    )
    print(
        f"wall time: lab {lab_wall:.1f} ms, client {result['wall_ms']:.1f} ms, "
        f"difference {wall_difference:.2f} %"
    )
    met = worst <= 5 and wall_difference <= 5
    print(f"target within 5 %: {'met' if met else 'NOT met'}")


if __name__ == "__main__":
    main()
