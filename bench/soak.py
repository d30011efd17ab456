"""Soak: the app under a class's load for ten minutes; errors, latency and memory over time.

Starts the app as a user would (one Daphne UI process, which starts its subject process),
with the app's default settings (but for the limits on requests to /run/, set to let its
--clients through: they share one address) and a fresh data directory, then all at once:

- --clients clients each fetch the scenario views in turn (``/run/<slug>/`` through the UI,
  as a browser following a scenario's "run it yourself" link), --think-ms apart;
- a lab run every minute, posted as the lab page does (CSRF token, htmx), followed to its
  results page; ASGI and WSGI runs take turns, so a gunicorn server starts every other
  minute;
- a class on a bundled example with --followers WebSocket followers, while the instructor
  moves one step every second.

Prints the machine, every error (by kind; the server's log is read for tracebacks too),
each minute's p50/p99 latencies, and the resident memory (RSS, from /proc) of the UI and
subject processes after warm-up (the first minute), in the middle and at the end.

    uv run python bench/soak.py [--minutes 10] [--clients 6] [--followers 200]

Target: 0 errors, RSS growth < 10 % from the end of warm-up to the end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import re
import shutil
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.typing import Origin

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import machine  # noqa: E402
from bench.load import (  # noqa: E402
    EXAMPLE,
    LIMIT_MESSAGE,
    percentile,
    poll_url,
    post_lab_form,
    rss_mb,
    start_class,
    subject_pid,
)
from visualizer.classroom.frames import FRAME_HEAD  # noqa: E402
from visualizer.server_process import DaphneServer  # noqa: E402

EXAMPLE_STEPS = 20  # the instructor cycles through the example's first steps
# A scenario whose view answers 500 by design: Django refuses its ORM call.
REFUSED_BY_DESIGN = {"async-orm-sync": "SynchronousOnlyOperation"}
LAB_EVERY, LAB_TIME_LIMIT = 60.0, 55.0
# The server's log lines that are no error: Daphne's access log, its start, and the answer
# of the scenario above.
ORDINARY_LOG = re.compile(
    r'^\S+:\d+ - - \[.*\] "|^Internal Server Error: /run/async-orm-sync/$'
    r"|^(Starting server|HTTP/2 support|Configuring endpoint|Listening on)"
)


@dataclass
class Soak:
    """What the clients saw, in seconds since the soak started."""

    started: float = field(default_factory=time.monotonic)
    errors: list[tuple[float, str]] = field(default_factory=list)
    views: list[tuple[float, float]] = field(default_factory=list)  # (when, ms)
    labs: list[tuple[float, str, float]] = field(default_factory=list)  # (when, server, s)
    sent: dict[int, float] = field(default_factory=dict)  # class version -> monotonic
    arrivals: list[dict[int, float]] = field(default_factory=list)  # per follower
    memory: list[tuple[float, float | None, float | None, int]] = field(default_factory=list)
    connected: int = 0  # followers that have connected once
    all_connected: asyncio.Event = field(default_factory=asyncio.Event)
    subject: int | None = None  # the subject's pid
    log_start: int = 0  # the server log's lines before the soak

    def now(self) -> float:
        return time.monotonic() - self.started

    def error(self, kind: str) -> None:
        self.errors.append((self.now(), kind))


async def view_client(base_url: str, slugs: list[str], think: float, soak: Soak) -> None:
    async with httpx.AsyncClient(base_url=base_url, timeout=60) as browser:
        index = 0
        while True:
            slug = slugs[index % len(slugs)]
            index += 1
            began = time.monotonic()
            try:
                answer = await browser.get(f"/run/{slug}/")
            except httpx.HTTPError as error:
                soak.error(f"view {slug}: {type(error).__name__}")
                await asyncio.sleep(think)
                continue
            soak.views.append((soak.now(), (time.monotonic() - began) * 1000))
            expected = REFUSED_BY_DESIGN.get(slug)
            if expected is not None:
                if answer.status_code != 500 or expected not in answer.text:
                    soak.error(f"view {slug}: HTTP {answer.status_code}, not its refusal")
            elif answer.status_code != 200:
                soak.error(f"view {slug}: HTTP {answer.status_code}")
            await asyncio.sleep(think)


async def lab_runs(base_url: str, soak: Soak) -> None:
    """One lab run a minute, ASGI and WSGI in turn, each followed to its results."""
    async with httpx.AsyncClient(base_url=base_url, timeout=60) as browser:
        for number in range(10**6):
            await asyncio.sleep(max(0.0, number * LAB_EVERY - soak.now()))
            server = ("asgi", "wsgi")[number % 2]
            began = time.monotonic()
            try:
                problem = await asyncio.wait_for(lab_run(browser, server), LAB_TIME_LIMIT)
            except TimeoutError:
                problem = f"not finished within {LAB_TIME_LIMIT:.0f} s"
            except httpx.HTTPError as error:
                problem = type(error).__name__
            if problem:
                soak.error(f"lab run ({server}): {problem}")
            else:
                soak.labs.append((soak.now(), server, time.monotonic() - began))


async def lab_run(browser: httpx.AsyncClient, server: str) -> str:
    """Post the lab form and poll its progress as the page does; what went wrong, or ''."""
    fields = {"scenario": "async-io", "requests": "20", "delay_ms": "300", "server": server}
    answer = await post_lab_form(browser, fields)
    panel = answer.text
    if answer.status_code != 200 or (limit := LIMIT_MESSAGE.search(panel)):
        return f"HTTP {answer.status_code}" + (f", refused: {limit[0]}" if limit else "")
    while (url := poll_url(panel)) is not None:
        await asyncio.sleep(0.3)
        answer = await browser.get(url, headers={"HX-Request": "true"})
        if results := answer.headers.get("HX-Redirect"):
            page = await browser.get(results)
            return "" if page.status_code == 200 else f"results page HTTP {page.status_code}"
        panel = answer.text
    return "the run failed: " + re.sub(r"<[^>]+>|\s+", " ", panel).strip()[:120]


async def follower(url: str, origin: str, arrivals: dict[int, float], soak: Soak) -> None:
    """A student's page: follows the class, and reconnects (from the version it shows) as
    the page does if its connection drops."""
    shown, counted = 0, False
    while True:
        try:
            async with connect(
                f"{url}?v={shown}" if shown else url, origin=Origin(origin), open_timeout=60
            ) as socket:
                if not counted:
                    counted = True
                    soak.connected += 1
                    if soak.connected == len(soak.arrivals):
                        soak.all_connected.set()
                async for message in socket:
                    if found := FRAME_HEAD.match(str(message)):
                        shown = max(shown, int(found[1]))
                        arrivals.setdefault(int(found[1]), time.monotonic())
        except (ConnectionClosed, InvalidStatus, OSError, TimeoutError) as error:
            soak.error(f"follower: {type(error).__name__} {error}"[:100])
        else:
            soak.error("follower: the server closed the connection")
        await asyncio.sleep(1)


async def instructor(base_url: str, code: str, cookie: str, version: int, soak: Soak) -> None:
    """Moves one step a second; each move raises the class's version by one."""
    url = base_url.replace("http://", "ws://") + f"/ws/class/{code}/"
    headers = {"Cookie": f'class-drive="{cookie}"'}
    async with connect(url, origin=Origin(base_url), additional_headers=headers) as driver:
        reader = asyncio.create_task(_read_errors(driver, soak))
        try:
            for move in range(1, 10**6):
                soak.sent[version + move] = time.monotonic()
                step = move % EXAMPLE_STEPS + 1
                await driver.send(json.dumps({"action": "drive", "url": f"{EXAMPLE}&step={step}"}))
                await asyncio.sleep(1)
        finally:
            reader.cancel()


async def _read_errors(driver: ClientConnection, soak: Soak) -> None:
    """The instructor's page reads what it is sent: an error frame is an error."""
    async for message in driver:
        if '"error"' in str(message)[:20]:
            soak.error(f"instructor: {str(message)[:100]}")


async def sample_memory(server: DaphneServer, soak: Soak, every: float = 10) -> None:
    while True:
        take_sample(server, soak)
        await asyncio.sleep(every)


def take_sample(server: DaphneServer, soak: Soak) -> None:
    """The UI's and subject's RSS and the database's size, now."""
    assert server.process is not None
    ui = server.process.pid
    subject = subject_pid(ui)
    if soak.memory and subject is not None and subject != soak.subject:
        soak.error(f"the subject process changed: {soak.subject} -> {subject}")
    soak.subject = subject or soak.subject
    database = sum(f.stat().st_size for f in Path(server.env["DATA_DIR"]).glob("db.sqlite3*"))
    soak.memory.append((soak.now(), rss_mb(ui), rss_mb(subject), database))


async def soak_app(server: DaphneServer, arguments: argparse.Namespace, soak: Soak) -> None:
    base = server.base_url
    async with httpx.AsyncClient(base_url=base) as browser:
        home = (await browser.get("/")).text
    slugs = sorted(set(re.findall(r'href="/scenarios/([a-z0-9-]+)/"', home)))
    code, cookie, version = await asyncio.to_thread(start_class, base)
    soak.arrivals = [{} for _ in range(arguments.followers)]
    follow_url = base.replace("http://", "ws://") + f"/ws/class/{code}/"
    tasks = [
        asyncio.create_task(follower(follow_url, base, arrivals, soak))
        for arrivals in soak.arrivals
    ]
    # A follower that connects after a move would see only the latest step, not the move.
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(soak.all_connected.wait(), 120)
    if soak.connected < len(tasks):
        soak.error(f"only {soak.connected} of {len(tasks)} followers connected in 120 s")
    print(f"scenario views: {', '.join(slugs)}; class {code} with {len(tasks)} followers")
    soak.started = time.monotonic()
    # The server's log from here on is the soak's (its start-up probes log a 404).
    soak.log_start = len(server.log_tail(10**7).splitlines())
    tasks += [
        asyncio.create_task(view_client(base, slugs, arguments.think_ms / 1000, soak))
        for _ in range(arguments.clients)
    ]
    tasks.append(asyncio.create_task(lab_runs(base, soak)))
    tasks.append(asyncio.create_task(instructor(base, code, cookie, version, soak)))
    tasks.append(asyncio.create_task(sample_memory(server, soak)))
    deadline = arguments.minutes * 60
    while soak.now() < deadline:
        await asyncio.sleep(1)
        if failed := [task for task in tasks if task.done()]:
            for task in failed:
                soak.error(f"a client stopped: {task.exception()!r}"[:120])
            break
    take_sample(server, soak)  # the end, with the load still on
    grace = time.monotonic()
    await asyncio.sleep(2)  # the last moves' frames
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    # Moves made in the last two seconds may still be on their way: not counted.
    for version_sent, when in list(soak.sent.items()):
        if when > grace:
            del soak.sent[version_sent]


def report(soak: Soak, server_log: str, arguments: argparse.Namespace) -> bool:
    minutes = math.ceil(arguments.minutes)
    warm_up = min(60.0, arguments.minutes * 60 / 5)
    lost = Counter[int]()
    steps: list[tuple[float, float]] = []
    for arrivals in soak.arrivals:
        for version, sent in soak.sent.items():
            if version in arrivals:
                steps.append((sent - soak.started, (arrivals[version] - sent) * 1000))
            else:
                lost[int((sent - soak.started) // 60)] += 1
    for minute, count in lost.items():
        soak.errors.append((minute * 60.0, f"class frames lost ({count} in minute {minute + 1})"))
    log_errors = server_errors(server_log)
    errors = Counter(kind for _, kind in soak.errors) + log_errors

    print("\nminute  views  view p50  view p99  moves  step p99  labs  errors  UI MB  subject MB")
    for minute in range(minutes):

        def within(when: float, m: int = minute) -> bool:
            return m * 60 <= when < (m + 1) * 60

        views = [ms for when, ms in soak.views if within(when)]
        moves = [ms for when, ms in steps if within(when)]
        samples = [sample for sample in soak.memory if within(sample[0])] or [(0, None, None, 0)]
        _, ui, subject, _ = samples[-1]
        moved = sum(within(sent - soak.started) for sent in soak.sent.values())
        print(
            f"{minute + 1:>6}  {len(views):>5}  {percentile(views, 50):>8.0f}  "
            f"{percentile(views, 99):>8.0f}  {moved:>5}  "
            f"{percentile(moves, 99):>8.0f}  {sum(within(w) for w, _, _ in soak.labs):>4}  "
            f"{sum(within(w) for w, _ in soak.errors):>6}  {ui or math.nan:>5.0f}  "
            f"{subject or math.nan:>10.0f}"
        )
    print(f"lab runs finished: {', '.join(f'{s} {t:.1f} s' for _, s, t in soak.labs) or 'none'}")
    delivered = sum(1 for arrivals in soak.arrivals for v in soak.sent if v in arrivals)
    print(f"class frames delivered: {delivered}/{len(soak.sent) * len(soak.arrivals)}")

    after_warm_up = [sample for sample in soak.memory if sample[0] >= warm_up]
    if len(after_warm_up) < 2:
        # The soak stopped early (its errors below say why): no growth to tell.
        after_warm_up = [(warm_up, None, None, 0)] * 2
    start, end = after_warm_up[0], after_warm_up[-1]
    middle = min(after_warm_up, key=lambda s: abs(s[0] - (start[0] + end[0]) / 2))
    print(f"\nRSS after warm-up ({warm_up:.0f} s), middle and end (MB), and growth:")
    growths = []
    for label, index in (("UI", 1), ("subject", 2)):
        first, mid, last = start[index], middle[index], end[index]
        if first is None or mid is None or last is None:
            print(f"  {label}: not measured (the process was gone)")
            growths.append(math.inf)
            continue
        growths.append((last - first) / first * 100)
        print(
            f"  {label:<8} {first:7.1f} at {start[0]:4.0f} s, {mid:7.1f} at {middle[0]:4.0f} s, "
            f"{last:7.1f} at {end[0]:4.0f} s: {growths[-1]:+.1f} %"
        )
    print(
        f"  database {start[3] / 1e6:.1f} MB, {middle[3] / 1e6:.1f} MB, {end[3] / 1e6:.1f} MB "
        f"(TRACE_KEEP_RECORDINGS prunes the recordings)"
    )

    total = sum(errors.values())
    print(f"\nerrors: {total}")
    for kind, count in errors.most_common():
        print(f"  {count:>6}  {kind}")
    met = total == 0 and all(growth < 10 for growth in growths)
    print(f"target (0 errors, RSS growth < 10 % after warm-up): {'met' if met else 'NOT met'}")
    return met


def server_errors(log: str) -> Counter[str]:
    """Tracebacks (by their last line) and other unexpected lines in the server's log."""
    found = Counter[str]()
    lines = iter(log.splitlines())
    for line in lines:
        if line.startswith("Traceback"):
            # The block ends at its first line that is not indented: the exception.
            last = next((later for later in lines if later and not later[0].isspace()), "?")
            found[f"server traceback: {last[:100]}"] += 1
        elif line and not line[0].isspace() and not ORDINARY_LOG.match(line):
            found[f"server log: {line[:100]}"] += 1
    return found


def view_room(clients: int) -> dict[str, str]:
    """Limits on requests to /run/ that let ``clients`` requests from one address be in
    flight at once, and no more (the soak sends none other there)."""
    return {"LIMIT_VIEW_REQUESTS_PER_CLIENT": str(clients), "LIMIT_VIEW_REQUESTS": str(clients)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--clients", type=int, default=6, help="scenario view clients")
    parser.add_argument("--think-ms", type=int, default=200, help="between a client's views")
    parser.add_argument("--followers", type=int, default=200)
    arguments = parser.parse_args()
    if not 0.5 <= arguments.minutes <= 10:
        parser.error("--minutes must be from 0.5 to 10")
    if not 1 <= arguments.followers <= 1000 or not 1 <= arguments.clients <= 50:
        parser.error("--followers must be from 1 to 1000, --clients from 1 to 50")

    print(machine())
    print(
        f"{arguments.minutes:g} minutes: {arguments.clients} clients on the scenario views, "
        f"a lab run a minute, {arguments.followers} class followers, a move a second"
    )
    # The view clients all come from this machine's address, one request in flight each:
    # the limits on requests to /run/ are set to let them all through. No
    # other limit refuses this load: one lab run at a time is within one visitor's share,
    # and a class has no cap.
    room = view_room(arguments.clients)
    shown = ", ".join(f"{name}={value}" for name, value in room.items())
    print(f"settings: the app's defaults but {shown}, a fresh DATA_DIR")
    data_dir = tempfile.mkdtemp(prefix="soak-")
    soak = Soak()
    try:
        with DaphneServer(env={"DATA_DIR": data_dir, **room}) as server:
            asyncio.run(soak_app(server, arguments, soak))
            log = "\n".join(server.log_tail(10**7).splitlines()[soak.log_start :])
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
    report(soak, log, arguments)


if __name__ == "__main__":
    main()
