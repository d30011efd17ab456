"""Class fan-out: one instructor drives, N followers on two Daphne processes follow.

Starts two Daphne processes sharing a database and Redis (REDIS_URL, the real one), starts
a class on a bundled example as an instructor's browser would, connects --followers real
WebSocket clients (half to each process, --connect-batch at a time), then the instructor
drives --steps steps, one every --interval-ms: that is a round, run --rounds times with
the same followers. Each follower notes when each step's frame
arrives; a step's latency is from the instructor sending it to a follower receiving it (one
machine, one clock). The clients run in this process, on the same cores as the servers.

    uv run python bench/fanout.py [--rounds 3] [--followers 500] [--steps 20] [--interval-ms 500]

Target: 500 followers, nothing lost, p99 <= 150 ms on a 2-core machine (the median round).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from websockets.asyncio.client import ClientConnection, connect
from websockets.typing import Origin

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import (  # noqa: E402
    add_rounds_argument,
    check_rounds,
    machine,
    median_against_target,
)
from bench.load import EXAMPLE, start_class  # noqa: E402
from visualizer.classroom.frames import FRAME_HEAD  # noqa: E402
from visualizer.server_process import DaphneServer  # noqa: E402

MAX_FOLLOWERS = 2000


async def follower(
    url: str, origin: str, arrivals: dict[int, list[int]], ready: asyncio.Event
) -> None:
    async with connect(url, origin=Origin(origin), open_timeout=60, max_size=2**22) as socket:
        ready.set()
        async for message in socket:
            match = FRAME_HEAD.match(str(message))
            if match:
                arrivals.setdefault(int(match[1]), []).append(time.monotonic_ns())


async def run(
    servers: list[str], followers: int, steps: int, interval_ms: int, batch: int, rounds: int
) -> list[float]:
    code, cookie, version = start_class(servers[0])
    arrivals: list[dict[int, list[int]]] = [{} for _ in range(followers)]
    tasks = []
    started = time.monotonic()
    for first in range(0, followers, batch):
        events = []
        for index in range(first, min(first + batch, followers)):
            base = servers[index % len(servers)]
            url = base.replace("http://", "ws://") + f"/ws/class/{code}/?v={version}"
            ready = asyncio.Event()
            events.append(ready)
            tasks.append(asyncio.create_task(follower(url, base, arrivals[index], ready)))
        await asyncio.wait_for(asyncio.gather(*(event.wait() for event in events)), timeout=60)
    print(f"{followers} followers connected in {time.monotonic() - started:.1f} s")

    driver_url = servers[0].replace("http://", "ws://") + f"/ws/class/{code}/"
    headers = {"Cookie": f'class-drive="{cookie}"'}
    driver: ClientConnection
    p99s = []
    async with connect(driver_url, origin=Origin(servers[0]), additional_headers=headers) as driver:
        for round_number in range(1, rounds + 1):
            sent: dict[int, int] = {}
            for step in range(2, steps + 2):
                version += 1
                sent[version] = time.monotonic_ns()
                await driver.send(json.dumps({"action": "drive", "url": f"{EXAMPLE}&step={step}"}))
                await asyncio.sleep(interval_ms / 1000)
            await asyncio.sleep(3)  # stragglers
            p99s.append(report_round(round_number, arrivals, sent, followers * steps))
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return p99s


def report_round(
    round_number: int, arrivals: list[dict[int, list[int]]], sent: dict[int, int], expected: int
) -> float:
    """Print what one round delivered and how fast; return its p99 (infinite if anything
    was lost, so a lossy round never passes)."""
    latencies = sorted(
        (arrived - sent[v]) / 1e6
        for follower_arrivals in arrivals
        for v, times in follower_arrivals.items()
        if v in sent
        for arrived in times
    )
    delivered = len(latencies)

    def percentile(p: int) -> float:
        return latencies[max(0, -(-p * len(latencies) // 100) - 1)]

    line = f"round {round_number}: delivered/sent {delivered}/{expected}"
    if not latencies:
        print(line)
        return float("inf")
    print(
        f"{line}; step latency ms: p50 {percentile(50):.1f}, p95 {percentile(95):.1f}, "
        f"p99 {percentile(99):.1f}, max {latencies[-1]:.1f}, "
        f"mean {statistics.mean(latencies):.1f}"
    )
    return percentile(99) if delivered == expected else float("inf")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_rounds_argument(parser)
    parser.add_argument("--followers", type=int, default=500)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--interval-ms", type=int, default=500)
    parser.add_argument("--connect-batch", type=int, default=50)
    parser.add_argument(
        "--redis-url", default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    )
    arguments = parser.parse_args()
    if not 1 <= arguments.followers <= MAX_FOLLOWERS:
        parser.error(f"--followers must be from 1 to {MAX_FOLLOWERS}")
    if not 1 <= arguments.steps <= 200:
        parser.error("--steps must be from 1 to 200")
    check_rounds(parser, arguments.rounds)

    data_dir = tempfile.mkdtemp(prefix="fanout-")
    env = {"TRACING_ENABLED": "false", "DATA_DIR": data_dir, "REDIS_URL": arguments.redis_url}
    print(machine())
    print(
        f"2 Daphne processes + Redis; {arguments.followers} followers, {arguments.steps} steps "
        f"a round, one every {arguments.interval_ms} ms"
    )
    try:
        with DaphneServer(env=env) as first, DaphneServer(env=env) as second:
            p99s = asyncio.run(
                run(
                    [first.base_url, second.base_url],
                    arguments.followers,
                    arguments.steps,
                    arguments.interval_ms,
                    arguments.connect_batch,
                    arguments.rounds,
                )
            )
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
    # A round that lost a step counts as infinitely slow.
    median_against_target("p99 step latency (nothing lost)", p99s, 150, " ms")


if __name__ == "__main__":
    main()
