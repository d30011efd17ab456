"""Measure the tracer's latency overhead on a real async view served by Daphne.

Each round starts two Daphne servers side by side, one with TRACING_ENABLED=false and one
with TRACING_ENABLED=true (fresh processes each round, started in alternating order, so no
one pair of processes decides). After a short warm-up, requests to the ``async-io``
scenario (an ``async def`` view awaiting a slow upstream call of ``--delay-ms`` ms) are
sent one at a time, alternating off, on, off, on, ..., so both servers see the same machine
conditions. Each request's full round trip is timed with ``time.perf_counter_ns``; a
round's result is its on/off ratio of median latencies. The script prints every round and
the median round against the target, a ratio of at most 1.05, and always exits 0.

Each round also prints each server's CPU a timed request, of the whole process and of its
main thread (the one that runs the event loop, where the tracer's work delays the request),
read from /proc, and the traced server's own count of its time in the tracer's code. At the
end it sets the main thread's extra CPU a request beside the extra latency (both medians of
the rounds, not targets): when the two agree, the overhead is the tracer's work on the
event loop's thread, not time spent waiting for its other threads.

The traced server runs as the app runs it: a subject process streaming its events to the
UI process (here, a mirror in this script), which stores them, so storing is not the traced
process's work. ``--store-in-process`` measures a subject that stores its own recordings
instead (``manage.py trace``, the lab's gunicorn workers): its archiver thread competes
with the traced requests for the GIL.

``--project shop`` measures the test project instead (tests/project, traced by the
installable app, async_visualizer, which stores its recordings in its own process): its
django-ninja endpoint ``/api/orders`` (an await of a helper, then an ORM query in a worker
thread), or the view at ``--path``. Its two servers differ only in
``ASYNC_VISUALIZER["ENABLED"]``.

Run it from the repository root:

    uv run python bench/tracer_overhead.py [--rounds 3] [--requests 600] [--delay-ms 5]
        [--store-in-process] [--project shop [--path /api/orders]]
"""

from __future__ import annotations

import argparse
import secrets
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import (
    add_rounds_argument,
    check_rounds,
    machine,
    median_against_target,
    process_cpu,
)
from tracer.recorder import RecordingStore
from tracer.sinks import EventMirror
from visualizer.scenarios.subject import FEED_ENV, TOKEN_ENV
from visualizer.server_process import DaphneServer, ProjectServer

WARM_UP_REQUESTS = 20
TIME_LIMIT_S = 200.0  # a round
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


@dataclass
class Round:
    """What one round measured."""

    latencies: dict[str, list[float]] = field(default_factory=lambda: {"off": [], "on": []})
    stopped_early: bool = False
    # Per server: CPU ms a timed request, of the whole process and of its main thread (the
    # event loop's), over the timed requests (idle time between them included).
    cpu_ms: dict[str, tuple[float, float]] = field(default_factory=dict)
    # The traced server's own time in the tracer's code, per request (its summaries'
    # tracer_ns), for the last requests the mirror kept; empty when it stores in-process.
    tracer_ms: list[float] = field(default_factory=list)


def run(
    requests: int,
    path: str,
    data_dir: str,
    on_first: bool,
    store_in_process: bool,
    project: str | None = None,
) -> Round:
    """One round: alternate requests between the two servers."""
    result = Round()
    if project is not None:
        order = ["on", "off"] if on_first else ["off", "on"]
        project_servers: list[DaphneServer] = [
            ProjectServer({"SHOP_TRACING": "true" if label == "on" else "false"}) for label in order
        ]
        alternate(requests, path, order, project_servers, result)
        return result
    # Subject processes: the views' server, without a UI passing requests on.
    off_env = {"TRACING_ENABLED": "false", "DATA_DIR": data_dir, "VISUALIZER_ROLE": "subject"}
    on_env = {**off_env, "TRACING_ENABLED": "true"}
    mirrored: list[int] = []
    if not store_in_process:
        token = secrets.token_hex(16)
        store = RecordingStore()
        store.add_listener(lambda recording, event: mirrored.append(1))
        mirror = EventMirror(store, token=token)
        host, port = mirror.listen()
        on_env |= {FEED_ENV: f"{host}:{port}", TOKEN_ENV: token}
    order = ["on", "off"] if on_first else ["off", "on"]
    envs = {"off": off_env, "on": on_env}
    servers = [DaphneServer(env=envs[label]) for label in order]
    alternate(requests, path, order, servers, result)
    if not result.stopped_early and not store_in_process and not mirrored:
        sys.exit("error: the traced server streamed no events: nothing was traced")
    if not store_in_process:
        result.tracer_ms = [
            summary["tracer_ns"] / 1e6
            for recording in store.recordings()
            for summary in recording.mirrored_requests or []
            if isinstance(summary.get("tracer_ns"), int)
        ]
    return result


def alternate(
    requests: int, path: str, order: list[str], servers: list[DaphneServer], result: Round
) -> None:
    """Start both servers, warm them up, then send ``requests`` requests to ``path``
    alternating between them; note in ``result`` the latencies, the servers' CPU and
    whether time ran out."""
    first_server, second_server = servers
    with (
        first_server as first,
        second_server as second,
        httpx.Client(base_url=first.base_url, timeout=30, trust_env=False) as first_client,
        httpx.Client(base_url=second.base_url, timeout=30, trust_env=False) as second_client,
    ):
        clients = dict(zip(order, (first_client, second_client), strict=True))
        pids = {
            label: server.process.pid
            for label, server in zip(order, (first, second), strict=True)
            if server.process is not None
        }
        for _ in range(WARM_UP_REQUESTS):
            for client in clients.values():
                timed_get(client, path)
        cpu_before = {label: process_cpu(pid) for label, pid in pids.items()}
        deadline = time.monotonic() + TIME_LIMIT_S
        for i in range(requests):
            if time.monotonic() > deadline:
                result.stopped_early = True
                break
            label = order[i % 2]
            result.latencies[label].append(timed_get(clients[label], path))
        for label, pid in pids.items():
            before, after = cpu_before[label], process_cpu(pid)
            count = len(result.latencies[label])
            if before is not None and after is not None and count:
                result.cpu_ms[label] = (
                    (after[0] - before[0]) / count * 1000,
                    (after[1] - before[1]) / count * 1000,
                )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_rounds_argument(parser)
    parser.add_argument("--requests", type=int, default=600, help="a round, split evenly")
    parser.add_argument("--delay-ms", type=int, default=5, help="upstream delay per request")
    parser.add_argument(
        "--store-in-process",
        action="store_true",
        help="the traced server stores its recordings itself, rather than streaming them",
    )
    parser.add_argument(
        "--project",
        choices=["shop"],
        help="measure the test project (tests/project) traced by the installable app",
    )
    parser.add_argument("--path", help="with --project: the path to request (/api/orders)")
    args = parser.parse_args()
    check_rounds(parser, args.rounds)
    if args.path is not None and (args.project is None or not args.path.startswith("/")):
        parser.error("--path needs --project and must start with /")
    path = (
        args.path or "/api/orders" if args.project else f"/run/async-io/?delay_ms={args.delay_ms}"
    )
    print(machine())
    if args.project:
        print(f"test project {args.project}, {path}, sequential, alternating off/on")
    else:
        print(
            f"async-io scenario, delay_ms={args.delay_ms}, sequential, alternating off/on; "
            + (
                "the traced server stores its recordings itself"
                if args.store_in_process
                else "the traced server streams its events to a UI-side mirror"
            )
        )
    ratios: list[float] = []
    # Per round: tracing on minus off, in ms, of the main thread's CPU a request and of the
    # median latency.
    cpu_gaps: list[float] = []
    latency_gaps: list[float] = []
    for round_number in range(1, args.rounds + 1):
        data_dir = tempfile.mkdtemp(prefix="tracer-overhead-")
        try:
            result = run(
                args.requests,
                path,
                data_dir,
                round_number % 2 == 0,
                args.store_in_process,
                args.project,
            )
        finally:
            shutil.rmtree(data_dir, ignore_errors=True)
        latencies = result.latencies
        if min(len(samples) for samples in latencies.values()) < 2:
            sys.exit("error: too few requests to compute percentiles")
        medians = {label: statistics.median(samples) for label, samples in latencies.items()}
        p95s = {label: p95(samples) for label, samples in latencies.items()}
        ratio = medians["on"] / medians["off"]
        ratios.append(ratio)
        print(
            f"round {round_number}: "
            + ", ".join(
                f"tracing {label} {len(samples)} requests, median {medians[label]:.3f} ms, "
                f"p95 {p95s[label]:.3f} ms"
                for label, samples in sorted(latencies.items())
            )
            + f"; on/off median {ratio:.3f}, p95 {p95s['on'] / p95s['off']:.3f}"
            + (f" (stopped at the {TIME_LIMIT_S:.0f} s time limit)" if result.stopped_early else "")
        )
        if len(result.cpu_ms) == 2:
            cpu = result.cpu_ms
            cpu_gaps.append(cpu["on"][1] - cpu["off"][1])
            latency_gaps.append(medians["on"] - medians["off"])
            print(
                "  CPU a request: "
                + ", ".join(
                    f"tracing {label} {cpu[label][0]:.2f} ms (main thread {cpu[label][1]:.2f} ms)"
                    for label in ("off", "on")
                )
                + (
                    f"; tracer's own code {statistics.median(result.tracer_ms) * 1000:.0f} us "
                    f"(median of the last {len(result.tracer_ms)} requests)"
                    if result.tracer_ms
                    else ""
                )
            )
    median_against_target("on/off ratio of median latency", ratios, TARGET_MEDIAN_RATIO)
    if cpu_gaps:
        print(
            "tracing on minus off, medians of the rounds: main thread's CPU a request "
            f"+{statistics.median(cpu_gaps):.2f} ms, median latency "
            f"+{statistics.median(latency_gaps):.2f} ms"
        )


if __name__ == "__main__":
    main()
