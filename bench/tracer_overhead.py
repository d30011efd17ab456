"""Measure the tracer's latency overhead on a real async view served by Daphne.

Two Daphne servers run side by side, one with TRACING_ENABLED=false and one with
TRACING_ENABLED=true. After a short warm-up, requests to the ``async-io`` scenario (an
``async def`` view awaiting a slow upstream call of ``--delay-ms`` ms) are sent one at a
time, alternating off, on, off, on, ..., so both servers see the same machine conditions.
Each request's full round trip is timed with ``time.perf_counter_ns``, and the script
prints the median and p95 latency per server and the on/off ratios. The target is a
median ratio of at most 1.05; the script reports it and always exits 0.

Run it from the repository root:

    uv run python bench/tracer_overhead.py [--requests 1000] [--delay-ms 5]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from visualizer.server_process import DaphneServer

WARM_UP_REQUESTS = 20
TIME_LIMIT_S = 300.0
TARGET_MEDIAN_RATIO = 1.05


def timed_get(client: httpx.Client, path: str) -> float:
    """One request's full round-trip time in ms; exits with an error unless it is a 200."""
    start = time.perf_counter_ns()
    response = client.get(path)
    elapsed_ms = (time.perf_counter_ns() - start) / 1e6
    if response.status_code != 200:
        sys.exit(f"error: {client.base_url}{path} answered {response.status_code}")
    return elapsed_ms


def p95(samples: list[float]) -> float:
    # statistics.quantiles with n=100 and the default "exclusive" method; [94] is the 95th.
    return statistics.quantiles(samples, n=100)[94]


def run(requests: int, path: str, data_dir: str) -> tuple[dict[str, list[float]], bool]:
    """Alternate requests between the two servers; return latencies and whether time ran out."""
    latencies: dict[str, list[float]] = {"off": [], "on": []}
    # Subject processes on their own: the views' server, without a UI passing requests on.
    off_env = {"TRACING_ENABLED": "false", "DATA_DIR": data_dir, "VISUALIZER_ROLE": "subject"}
    on_env = {**off_env, "TRACING_ENABLED": "true"}
    with (
        DaphneServer(env=off_env) as off_server,
        DaphneServer(env=on_env) as on_server,
        httpx.Client(base_url=off_server.base_url, timeout=30, trust_env=False) as off_client,
        httpx.Client(base_url=on_server.base_url, timeout=30, trust_env=False) as on_client,
    ):
        clients = {"off": off_client, "on": on_client}
        for _ in range(WARM_UP_REQUESTS):
            for client in clients.values():
                timed_get(client, path)
        deadline = time.monotonic() + TIME_LIMIT_S
        for i in range(requests):
            if time.monotonic() > deadline:
                return latencies, True
            label = "off" if i % 2 == 0 else "on"
            latencies[label].append(timed_get(clients[label], path))
    return latencies, False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1000, help="total, split evenly")
    parser.add_argument("--delay-ms", type=int, default=5, help="upstream delay per request")
    args = parser.parse_args()
    path = f"/run/async-io/?delay_ms={args.delay_ms}"
    data_dir = tempfile.mkdtemp(prefix="tracer-overhead-")
    try:
        latencies, stopped_early = run(args.requests, path, data_dir)
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)

    print(f"Python {platform.python_version()}, os.cpu_count() = {os.cpu_count()}")
    print(f"async-io scenario, delay_ms={args.delay_ms}, sequential, alternating off/on")
    if stopped_early:
        print(f"stopped after the {TIME_LIMIT_S:.0f} s time limit")
    if min(len(samples) for samples in latencies.values()) < 2:
        sys.exit("error: too few requests to compute percentiles")
    medians = {label: statistics.median(samples) for label, samples in latencies.items()}
    p95s = {label: p95(samples) for label, samples in latencies.items()}
    for label, samples in latencies.items():
        print(
            f"tracing {label:<3}: count {len(samples):>5}, "
            f"median {medians[label]:.3f} ms, p95 {p95s[label]:.3f} ms"
        )
    median_ratio = medians["on"] / medians["off"]
    print(f"on/off ratio: median {median_ratio:.3f}, p95 {p95s['on'] / p95s['off']:.3f}")
    met = median_ratio <= TARGET_MEDIAN_RATIO
    print(f"median ratio <= {TARGET_MEDIAN_RATIO}: target {'met' if met else 'NOT met'}")


if __name__ == "__main__":
    main()
