"""Flood: one anonymous client floods the limited endpoints; do other visitors' pages still load?

Starts the app as a user would (one Daphne UI process and its subject), with the app's
default settings (every LIMIT_* at its default, unless --setting changes one) and a fresh
data directory. Each round
(--rounds) has --seconds of quiet, then --seconds of flood. All the time, a page client
(a thread of its own, one request after the other) loads the scenario page at a step and
the library, and notes each load's time; a run client does the same with a small scenario
view (``/run/async-io/?delay_ms=10``) at its address. During the flood, one more client,
the flooder, from another loopback address (127.0.0.2: another visitor, as the limits count
per address), sends at once:

- --lab-posters loops posting the lab form as the page does (htmx, CSRF token), each every
  --every-ms, for the largest runs the form takes: 200 async-io requests on a WSGI server
  of 8 workers, and 200 async-cpu requests of work 20,000 (4,000,000 in all, the most a
  run may ask for) on ASGI, in turn;
- --heavy-getters loops fetching ``/run/async-cpu/?work=2000000`` (the largest work the
  view takes, about 20 s of CPU on the subject's event loop), one after the other;
- --view-getters loops fetching ``/run/async-io/?delay_ms=1000`` back to back, more at
  once than the limits on requests to /run/ let in;
- --importers loops importing a trace of --import-events events (a bundled example,
  tiled), each every --every-ms, each file with a new id.

``--parts`` runs only some of the four (e.g. ``--parts lab``), to see which costs what;
``--setting NAME=VALUE`` starts the server with a setting changed (e.g. a limit raised, to
compare with the defaults).
Prints, per round and as the median of the rounds, the page client's p50/p95 load time in
quiet and during the flood (and the run client's p95), and for each kind of flood request
how many were sent, refused with a limit's message, and still unanswered when the flood
ended. After a flood it waits until the server is quiet again (no gunicorn left, the
subject answers at once) before the next round.

    uv run python bench/flood.py [--rounds 3] [--seconds 30] [--parts lab,heavy,views,import]
        [--setting LIMIT_VIEW_REQUESTS_PER_CLIENT=1000 ...]

Target: another visitor's page loads stay within 1 s at p95 during the flood (median of
the rounds).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import shutil
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import machine, tile  # noqa: E402
from bench.load import (  # noqa: E402
    LIMIT_MESSAGE,
    children,
    csrf_token,
    median,
    percentile,
    post_lab_form,
)
from visualizer.server_process import DaphneServer  # noqa: E402

EXAMPLE_ID = "example-async-io-4-requests"
PAGES = (f"/scenarios/async-io/?recording={EXAMPLE_ID}&step=5", "/traces/")
RUN = "/run/async-io/?delay_ms=10"
HEAVY_GET = "/run/async-cpu/?work=2000000"
VIEW_GET = "/run/async-io/?delay_ms=1000"
# The flooder's address: another visitor than the watchers (127.0.0.1) to the limits.
FLOODER = "127.0.0.2"
LAB_RUNS = (
    {"scenario": "async-io", "requests": "200", "server": "wsgi", "workers": "8", "threads": "1"},
    {"scenario": "async-cpu", "requests": "200", "work": "20000", "server": "asgi"},
)
SETTLE_LIMIT = 300.0
PARTS = {"lab", "heavy", "views", "import"}


@dataclass
class Loads:
    """Load times (ms) of the watching clients, by phase ("quiet" or "flood")."""

    phase: str = "quiet"
    pages: dict[str, list[float]] = field(default_factory=lambda: {"quiet": [], "flood": []})
    runs: dict[str, list[float]] = field(default_factory=lambda: {"quiet": [], "flood": []})
    errors: Counter[str] = field(default_factory=Counter)
    stop: threading.Event = field(default_factory=threading.Event)
    # When each watcher's last finished load began: a load of the flood still on its way
    # is waited for, so that the slowest are counted.
    last_began: dict[str, float] = field(default_factory=dict)


def watch(base_url: str, paths: tuple[str, ...], loads: Loads, kept: str) -> None:
    """Load ``paths`` in turn until told to stop; each load counts in the phase it began in
    (none while the server settles)."""
    with httpx.Client(base_url=base_url, timeout=120) as browser:
        index = 0
        while not loads.stop.is_set():
            path = paths[index % len(paths)]
            index += 1
            phase, began = loads.phase, time.monotonic()
            try:
                answer = browser.get(path)
            except httpx.HTTPError as error:
                loads.errors[f"{path}: {type(error).__name__}"] += 1
                continue
            finally:
                loads.last_began[kept] = began
            if answer.status_code != 200:
                loads.errors[f"{path}: HTTP {answer.status_code}"] += 1
            elif phase in (kept_loads := getattr(loads, kept)):  # counted where it began
                kept_loads[phase].append((time.monotonic() - began) * 1000)


@dataclass
class Flood:
    """The flood's requests by kind: sent, refused with a limit's message, failed otherwise,
    still unanswered when the flood ended, and the answers' times (s)."""

    sent: Counter[str] = field(default_factory=Counter)
    refused: Counter[str] = field(default_factory=Counter)
    failed: Counter[str] = field(default_factory=Counter)
    unanswered: Counter[str] = field(default_factory=Counter)
    seconds: dict[str, list[float]] = field(default_factory=dict)

    def add(self, other: Flood) -> None:
        self.sent += other.sent
        self.refused += other.refused
        self.failed += other.failed
        self.unanswered += other.unanswered
        for kind, times in other.seconds.items():
            self.seconds.setdefault(kind, []).extend(times)


async def flood(base_url: str, seconds: float, arguments: argparse.Namespace, raw: bytes) -> Flood:
    tally = Flood()
    every = arguments.every_ms / 1000
    transport = httpx.AsyncHTTPTransport(local_address=FLOODER)
    async with httpx.AsyncClient(base_url=base_url, timeout=120, transport=transport) as browser:
        # The CSRF cookie first: loops that each got a new one would refuse each other.
        (await browser.get("/lab/")).raise_for_status()

        async def send(kind: str, request: Any) -> None:
            tally.sent[kind] += 1
            began = time.monotonic()
            try:
                answer = await request
            except BaseException:
                tally.unanswered[kind] += 1
                raise
            tally.seconds.setdefault(kind, []).append(time.monotonic() - began)
            if LIMIT_MESSAGE.search(answer.text):
                tally.refused[kind] += 1
            elif answer.status_code >= 400:
                tally.failed[f"{kind}: HTTP {answer.status_code}"] += 1

        async def post_labs(first: int) -> None:
            for turn in range(first, 10**6):
                await send("lab POST", post_lab_form(browser, LAB_RUNS[turn % 2]))
                await asyncio.sleep(every)

        async def heavy_gets() -> None:
            while True:
                await send("heavy GET", browser.get(HEAVY_GET))

        async def view_gets() -> None:
            while True:
                await send("view GET", browser.get(VIEW_GET))

        async def imports() -> None:
            while True:
                page = await browser.get("/traces/")
                document = json.loads(raw)
                document["id"] = f"flood-{uuid.uuid4().hex[:12]}"
                upload = browser.post(
                    "/traces/import/",
                    data={"csrfmiddlewaretoken": csrf_token(page.text)},
                    files={"file": ("trace.json", json.dumps(document).encode())},
                )
                await send("import", upload)
                await asyncio.sleep(every)

        tasks = []
        if "lab" in arguments.parts:
            tasks += [asyncio.create_task(post_labs(n)) for n in range(arguments.lab_posters)]
        if "heavy" in arguments.parts:
            tasks += [asyncio.create_task(heavy_gets()) for _ in range(arguments.heavy_getters)]
        if "views" in arguments.parts:
            tasks += [asyncio.create_task(view_gets()) for _ in range(arguments.view_getters)]
        if "import" in arguments.parts:
            tasks += [asyncio.create_task(imports()) for _ in range(arguments.importers)]
        done, _ = await asyncio.wait(tasks, timeout=seconds)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for task in done:
            tally.failed[f"a flood loop stopped: {task.exception()!r}"[:100]] += 1
    return tally


def settle(server: DaphneServer) -> float:
    """Wait until no lab run is left (no gunicorn, the subject answers at once); the
    seconds it took."""
    assert server.process is not None
    began = time.monotonic()
    with httpx.Client(base_url=server.base_url, timeout=SETTLE_LIMIT) as browser:
        quick = 0
        while quick < 2 and time.monotonic() - began < SETTLE_LIMIT:
            if any("gunicorn" in c for c in children(server.process.pid).values()):
                quick = 0
                time.sleep(0.5)
                continue
            asked = time.monotonic()
            browser.get("/run/async-sleep/?delay_ms=0")
            quick = quick + 1 if time.monotonic() - asked < 0.2 else 0
    return time.monotonic() - began


def trace_file(server: DaphneServer, events: int) -> bytes:
    """A bundled example's export, tiled to ``events`` events."""
    with httpx.Client(base_url=server.base_url, timeout=60) as browser:
        exported = browser.get(f"/traces/{EXAMPLE_ID}/export.json")
        exported.raise_for_status()
        document: dict[str, Any] = exported.json()
    return json.dumps(tile(document, events)).encode()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=30, help="of quiet, then of flood")
    parser.add_argument("--lab-posters", type=int, default=4)
    parser.add_argument("--heavy-getters", type=int, default=8)
    parser.add_argument("--view-getters", type=int, default=40)
    parser.add_argument("--every-ms", type=int, default=250, help="between a loop's posts")
    parser.add_argument("--importers", type=int, default=2)
    parser.add_argument("--import-events", type=int, default=20_000)
    parser.add_argument(
        "--parts", default="lab,heavy,views,import", help="which flood loops run (default: all)"
    )
    parser.add_argument(
        "--setting",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="start the server with this setting (environment variable) changed",
    )
    arguments = parser.parse_args()
    if not 1 <= arguments.rounds <= 10 or not 5 <= arguments.seconds <= 120:
        parser.error("--rounds must be from 1 to 10, --seconds from 5 to 120")
    arguments.parts = set(arguments.parts.split(","))
    if not arguments.parts <= PARTS:
        parser.error(f"--parts takes some of {', '.join(sorted(PARTS))}")
    changed = dict(setting.partition("=")[::2] for setting in arguments.setting)
    if not all(name.isupper() and value for name, value in changed.items()):
        parser.error("--setting takes NAME=VALUE, e.g. LIMIT_VIEW_REQUESTS=1000")

    print(machine())
    parts = {
        "lab": f"{arguments.lab_posters} lab posters (each every {arguments.every_ms} ms)",
        "heavy": f"{arguments.heavy_getters} heavy GETs back to back",
        "views": f"{arguments.view_getters} GETs of {VIEW_GET} back to back",
        "import": f"{arguments.importers} importers (each every {arguments.every_ms} ms)",
    }
    print(
        f"{arguments.rounds} rounds of {arguments.seconds:g} s quiet, then {arguments.seconds:g} s"
        f" of flood: {', '.join(parts[part] for part in sorted(arguments.parts))}"
    )
    shown = ", ".join(f"{name}={value}" for name, value in changed.items())
    print(
        f"settings: the app's defaults{f' but {shown}' if shown else ''}, a fresh DATA_DIR; "
        f"the flood from {FLOODER}, the watchers from 127.0.0.1"
    )
    data_dir = tempfile.mkdtemp(prefix="flood-")
    rounds: list[dict[str, float]] = []
    floods: list[Flood] = []
    loads = Loads()
    try:
        with DaphneServer(env={"DATA_DIR": data_dir, **changed}) as server:
            raw = trace_file(server, arguments.import_events)
            print(f"import file: {arguments.import_events} events, {len(raw) / 1e6:.1f} MB")
            watchers = [
                threading.Thread(target=watch, args=(server.base_url, PAGES, loads, "pages")),
                threading.Thread(target=watch, args=(server.base_url, (RUN,), loads, "runs")),
            ]
            for watcher in watchers:
                watcher.start()
            try:
                for number in range(1, arguments.rounds + 1):
                    rounds.append(one_round(server, arguments, raw, loads, floods))
                    print_round(f"round {number}", rounds[-1], floods[-1])
            finally:
                loads.stop.set()
                for watcher in watchers:
                    watcher.join()
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)

    summary = {key: median([r[key] for r in rounds]) for key in rounds[0]}
    total = Flood()
    for each in floods:
        total.add(each)
    print_round(f"median of {len(rounds)}", summary, total)
    for kind, count in (total.failed + loads.errors).most_common():
        print(f"  not refused but failed: {count} {kind}")
    met = summary["flood p95"] <= 1000
    print(
        f"target (another visitor's page p95 during the flood <= 1000 ms): "
        f"{'met' if met else 'NOT met'}"
    )


def one_round(
    server: DaphneServer,
    arguments: argparse.Namespace,
    raw: bytes,
    loads: Loads,
    floods: list[Flood],
) -> dict[str, float]:
    for phase in ("quiet", "flood"):
        loads.pages[phase].clear()
        loads.runs[phase].clear()
    loads.phase = "quiet"
    time.sleep(arguments.seconds)
    loads.phase = "flood"
    floods.append(asyncio.run(flood(server.base_url, arguments.seconds, arguments, raw)))
    loads.phase = "settling"
    settling = time.monotonic()
    settled = settle(server)
    while min(loads.last_began.values()) < settling and time.monotonic() - settling < 300:
        time.sleep(0.1)
    figures = {"settle s": settled}
    for phase in ("quiet", "flood"):
        figures[f"{phase} n"] = len(loads.pages[phase])
        figures[f"{phase} p50"] = percentile(loads.pages[phase], 50)
        figures[f"{phase} p95"] = percentile(loads.pages[phase], 95)
        figures[f"{phase} run n"] = len(loads.runs[phase])
        figures[f"{phase} run p50"] = percentile(loads.runs[phase], 50)
        figures[f"{phase} run p95"] = percentile(loads.runs[phase], 95)
    return figures


def print_round(label: str, figures: dict[str, float], tally: Flood) -> None:
    def ms(value: float) -> str:
        return "-" if math.isnan(value) else f"{value:.0f}"

    print(
        f"{label}: pages quiet p50 {ms(figures['quiet p50'])} / p95 {ms(figures['quiet p95'])} ms"
        f" ({figures['quiet n']:.0f} loads), flood p50 {ms(figures['flood p50'])} / p95 "
        f"{ms(figures['flood p95'])} ms ({figures['flood n']:.0f} loads); "
        f"run {RUN}: quiet p95 {ms(figures['quiet run p95'])} ms ({figures['quiet run n']:.0f}),"
        f" flood p95 {ms(figures['flood run p95'])} ms ({figures['flood run n']:.0f}); "
        f"settled in {figures['settle s']:.0f} s"
    )
    for kind in sorted(tally.sent):
        answered = tally.seconds.get(kind, [])
        print(
            f"  {kind}: {tally.sent[kind]} sent, {tally.refused[kind]} refused with the limit's "
            f"message, {tally.unanswered[kind]} unanswered when the flood ended; answers took "
            f"p50 {median(answered):.1f} s"
        )


if __name__ == "__main__":
    main()
