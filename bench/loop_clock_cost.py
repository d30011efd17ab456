"""What tracer/loop_clock.py adds to a request, counted, not timed: how many times its code
runs per request on a real Daphne subject, and how many machine instructions each costs.

1. Counts: a subject process (Daphne, tracing on) whose loop-clock entry points are wrapped
   with counters serves --requests concurrent requests of each scenario; per request it
   prints the ``loop._call_soon`` calls made while a request is in flight (each stamped),
   those made with none in flight (each pays only a check), and the loop callbacks that
   found a stamp (``LoopClock.ran``).
2. Instructions (with valgrind installed): a loop awaiting --iterations futures, each
   resolved by one ``call_soon`` (so two ``call_soon`` and two callbacks an iteration), run
   under callgrind with the loop clock off, on with no request in flight, and on with the
   awaiting task watched; the difference per iteration is the cost of two stamps and two
   collected stamps (one of them a step of the watched task).

Both figures are independent of the machine's load. Multiply them for a request's cost.

    uv run python bench/loop_clock_cost.py [--requests 20] [--iterations 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import machine  # noqa: E402

SCENARIOS = ("async-io", "sync-io", "async-cpu")


def serve(port: str, counts_path: str) -> None:
    """Run a Daphne subject with counters around the loop clock (the child process)."""
    import asyncio.base_events

    from tracer.loop_clock import LoopClock

    counts = {"call_soon_in_flight": 0, "call_soon_idle": 0, "ran_stamped": 0, "requests": 0}
    watching: list[Any] = []
    loop_class = asyncio.base_events.BaseEventLoop
    original_call_soon = loop_class._call_soon  # type: ignore[attr-defined]

    def counted_call_soon(loop: Any, callback: Any, args: Any, context: Any) -> Any:
        key = "call_soon_in_flight" if watching and watching[0].tasks else "call_soon_idle"
        counts[key] += 1
        return original_call_soon(loop, callback, args, context)

    loop_class._call_soon = counted_call_soon  # type: ignore[attr-defined]
    original_ran, original_watch, original_unwatch = (
        LoopClock.ran,
        LoopClock.watch,
        LoopClock.unwatch,
    )

    def ran(stamp: Any, started_ns: int, ended_ns: int) -> None:
        counts["ran_stamped"] += 1
        original_ran(stamp, started_ns, ended_ns)

    def watch(self: LoopClock, task: Any, since_ns: int) -> Any:
        if not watching:
            watching.append(self)
        return original_watch(self, task, since_ns)

    def unwatch(self: LoopClock, task: Any) -> None:
        original_unwatch(self, task)
        counts["requests"] += 1
        # Whole or not at all: the bench reads it meanwhile.
        Path(f"{counts_path}.new").write_text(json.dumps(counts))
        os.replace(f"{counts_path}.new", counts_path)

    LoopClock.ran = staticmethod(ran)  # type: ignore[method-assign]
    LoopClock.watch, LoopClock.unwatch = watch, unwatch  # type: ignore[method-assign]
    from daphne.cli import CommandLineInterface

    CommandLineInterface().run(["-b", "127.0.0.1", "-p", port, "visualizer.asgi:application"])


def counted(requests: int) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "visualizer.settings")
    data_dir = tempfile.mkdtemp(prefix="loop-clock-cost-")
    os.environ.setdefault("DATA_DIR", data_dir)
    import django

    django.setup()
    from visualizer.scenarios.catalog import SCENARIOS as ALL
    from visualizer.scenarios.runs import record_run
    from visualizer.server_process import DaphneServer

    counts_path = Path(data_dir) / "counts.json"

    class CountingSubject(DaphneServer):
        def command(self, port: int) -> list[str]:
            return [sys.executable, __file__, "--serve", str(port), str(counts_path)]

    env = {"TRACING_ENABLED": "true", "DATA_DIR": data_dir, "VISUALIZER_ROLE": "subject"}
    before: dict[str, int] = {}
    with CountingSubject(env=env) as server:
        for slug in SCENARIOS:
            params = {"delay_ms": 100} if "io" in slug else {"work": 20_000}
            asyncio.run(record_run(server.base_url, ALL[slug], requests=requests, params=params))
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                now = json.loads(counts_path.read_text()) if counts_path.exists() else {}
                if now.get("requests", 0) - before.get("requests", 0) >= requests:
                    break
                time.sleep(0.1)
            served = now["requests"] - before.get("requests", 0)
            per = {k: (now[k] - before.get(k, 0)) / served for k in now if k != "requests"}
            print(
                f"{slug}, {requests} at once: per request "
                + ", ".join(f"{name} {value:.1f}" for name, value in per.items())
            )
            before = now


MICRO = """
import asyncio, sys, time
sys.path.insert(0, {root!r})
from tracer.instrumentation import Instrumentation
mode, n = sys.argv[1], int(sys.argv[2])
inst = Instrumentation()
if mode == "off":
    inst.loop_clock.enable = lambda: None
inst.enable()
async def main():
    loop = asyncio.get_running_loop()
    if mode == "watched":
        inst.loop_clock.watch(asyncio.current_task(), time.monotonic_ns())
    for _ in range(n):
        future = loop.create_future()
        loop.call_soon(future.set_result, None)
        await future
asyncio.run(main())
inst.disable()
"""


def instructions(iterations: int) -> None:
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        print("instructions: valgrind is not installed; skipped")
        return
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as script:
        script.write(MICRO.format(root=str(ROOT)))

    def collected(mode: str, n: int) -> int:
        run = subprocess.run(
            [valgrind, "--tool=callgrind", "--callgrind-out-file=/dev/null",
             sys.executable, script.name, mode, str(n)],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        line = next(line for line in run.stderr.splitlines() if "Collected" in line)
        return int(line.split()[-1])

    per: dict[str, float] = {}
    for mode in ("off", "idle", "watched"):
        per[mode] = (collected(mode, 3 * iterations) - collected(mode, iterations)) / (
            2 * iterations
        )
    os.unlink(script.name)
    print(
        f"instructions an iteration (2 call_soon, 2 callbacks): clock off {per['off']:.0f}, "
        f"on with none in flight +{per['idle'] - per['off']:.0f}, "
        f"on with the task watched +{per['watched'] - per['off']:.0f}"
    )


def main() -> None:
    if sys.argv[1:2] == ["--serve"]:
        serve(sys.argv[2], sys.argv[3])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--iterations", type=int, default=2000)
    arguments = parser.parse_args()
    print(machine())
    counted(arguments.requests)
    instructions(arguments.iterations)


if __name__ == "__main__":
    main()
