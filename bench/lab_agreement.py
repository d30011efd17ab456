"""Do the lab's timings agree with an independent HTTP client's?

Starts the app under Daphne, sends --requests concurrent requests to a scenario with its
own client (plain sockets, connected beforehand, one thread a request, timing each from the
moment its bytes go out to the last byte of the answer) where the lab sends its requests:
to the subject process that runs the views (visualizer/scenarios/subject.py), not through
the UI's /run/ address, which passes each request on and so adds its own time. It fetches
the recorded trace from the UI, and compares each request's duration in the trace
(server: arrival to the last byte written to the socket, ``sent_ns``) with the client's
measurement, and the lab's wall time with the client's. Each of --rounds rounds is one such
run (after one warm-up run); the median round decides.

    uv run python bench/lab_agreement.py [--rounds 3] [--scenario async-io] [--requests 20]
        [--delay-ms 300]

Target: agreement within 5 %: the median round's largest per-request difference and its
wall-time difference.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "visualizer.settings")

from bench.common import (  # noqa: E402
    add_rounds_argument,
    check_rounds,
    machine,
    median_against_target,
)


def subject_address(ui_pid: int, timeout: float = 30) -> tuple[str, int]:
    """The host and port the UI's subject server listens on, from its command line
    (``python -m visualizer.serve_asgi -b HOST -p PORT``)."""
    from bench.load import children

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for command in children(ui_pid).values():
            words = command.split()
            if "visualizer.serve_asgi" in words and "-b" in words and "-p" in words:
                return words[words.index("-b") + 1], int(words[words.index("-p") + 1])
        time.sleep(0.2)
    sys.exit("error: the UI started no subject server")


def send_all(
    host: str, port: int, path: str, count: int, delay_ms: int, ui_url: str
) -> dict[str, Any]:
    """Send ``count`` requests at once on connections opened beforehand, one thread each,
    timing each from the moment its bytes go out to the last byte of the answer."""
    from tracer.django_integration import recording_header_value

    recording = f"agreement-{time.time_ns()}"
    signed = recording_header_value(recording)
    connections = [socket.create_connection((host, port)) for _ in range(count)]
    timings: dict[str, float] = {}
    ready = threading.Barrier(count + 1)

    def one(index: int) -> None:
        ref = f"c{index}"
        request = (
            f"GET {path}?delay_ms={delay_ms} HTTP/1.1\r\nHost: {host}:{port}\r\n"
            f"X-Trace-Recording: {signed}\r\nX-Trace-Client-Ref: {ref}\r\n"
            "Connection: close\r\n\r\n"
        ).encode()
        connection = connections[index]
        ready.wait()
        started = time.perf_counter()
        connection.sendall(request)
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
        timings[ref] = (time.perf_counter() - started) * 1000
        connection.close()
        if not answer.startswith(b"HTTP/1.1 200"):
            raise RuntimeError(f"{ref}: {answer[:200]!r}")

    threads = [threading.Thread(target=one, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    ready.wait()
    wall_started = time.perf_counter()
    for thread in threads:
        thread.join()
    wall_ms = (time.perf_counter() - wall_started) * 1000
    if len(timings) != count:
        raise RuntimeError("some requests failed")
    with httpx.Client(base_url=ui_url, timeout=60) as client:
        document = client.get(f"/recordings/{recording}.json").json()
    return {"document": document, "timings": timings, "wall_ms": wall_ms}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_rounds_argument(parser)
    parser.add_argument("--scenario", default="async-io")
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--delay-ms", type=int, default=300)
    arguments = parser.parse_args()
    check_rounds(parser, arguments.rounds)

    import django

    django.setup()
    from visualizer.scenarios.catalog import SCENARIOS
    from visualizer.server_process import DaphneServer

    scenario = SCENARIOS[arguments.scenario]
    print(machine())
    print(
        f"Daphne on loopback; {arguments.requests} concurrent {scenario.slug} requests, "
        f"{arguments.delay_ms} ms I/O"
    )
    worst, walls = [], []
    data_dir = tempfile.mkdtemp(prefix="lab-agreement-")
    try:
        env = {"TRACING_ENABLED": "true", "DATA_DIR": data_dir}
        with DaphneServer(env=env) as server:
            assert server.process is not None
            host, port = subject_address(server.process.pid)
            run = (
                host,
                port,
                scenario.run_url,
                arguments.requests,
                arguments.delay_ms,
                server.base_url,
            )
            send_all(*run)  # warm-up: the server's first requests import code
            for round_number in range(1, arguments.rounds + 1):
                round_worst, round_wall = compare(round_number, send_all(*run))
                worst.append(round_worst)
                walls.append(round_wall)
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
    met = median_against_target("largest per-request difference", worst, 5, " %")
    met &= median_against_target("wall-time difference", walls, 5, " %")
    print(f"target within 5 %: {'met' if met else 'NOT met'}")


def compare(round_number: int, result: dict[str, Any]) -> tuple[float, float]:
    """Print one round's agreement; return its largest per-request difference and its
    wall-time difference, in %."""
    from visualizer.lab.metrics import lab_metrics

    document, timings = result["document"], result["timings"]
    differences = []
    for request in document["requests"]:
        client_ms = timings[request["client_ref"]]
        # Arrival to the last byte written to the socket, where the server noted it (this
        # app's Daphne does); else to the last byte handed to the server.
        end = request.get("sent_ns") or request["finished_ns"]
        trace_ms = (end - request["received_ns"]) / 1e6
        differences.append(abs(trace_ms - client_ms) / client_ms * 100)
    # The lab's wall time, from the trace alone (no client timings in this document).
    lab_wall = lab_metrics(document).wall_ms
    wall_difference = abs(lab_wall - result["wall_ms"]) / result["wall_ms"] * 100
    print(
        f"round {round_number}: per request, trace vs client: mean difference "
        f"{statistics.mean(differences):.2f} %, max {max(differences):.2f} %; wall time: lab "
        f"{lab_wall:.1f} ms, client {result['wall_ms']:.1f} ms, difference "
        f"{wall_difference:.2f} %"
    )
    return max(differences), wall_difference


if __name__ == "__main__":
    main()
