"""Class fan-out: one instructor drives, N followers on two Daphne processes follow.

Starts two Daphne processes sharing a database and Redis (REDIS_URL, the real one), starts
a class on a bundled example as an instructor's browser would, connects --followers real
WebSocket clients (half to each process, --connect-batch at a time), then the instructor
drives --steps steps, one every --interval-ms: that is a round, run --rounds times with
the same followers. Each follower notes when each step's frame
arrives; a step's latency is from the instructor sending it to a follower receiving it (one
machine, one clock). The clients run in this process, on the same cores as the servers.

Then, once the last step has reached every follower, the class answers a question: the
instructor asks one (as its page's form does), each
follower answers once over its socket when the question reaches it, at a random moment
within --answer-over-ms, and the instructor's socket notes each histogram it is sent. Every
answer must be taken and counted (the last histogram counts them all); an answer's update
latency is from its sending to the first histogram that counts at least as many answers as
had been sent by then.

    uv run python bench/fanout.py [--rounds 3] [--followers 500] [--steps 20] [--interval-ms 500]
        [--answer-over-ms 5000]

Target: 500 followers, nothing lost, p99 <= 150 ms on a 2-core machine (the median round).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
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
from bench.load import EXAMPLE, csrf_token, percentile, start_class  # noqa: E402
from visualizer.classroom.frames import FRAME_HEAD  # noqa: E402
from visualizer.server_process import DaphneServer  # noqa: E402

MAX_FOLLOWERS = 2000


QUESTION = re.compile(r'name="question" value="(\d+)"')
COUNTED = re.compile(r'id="class-histogram" class="histogram" data-answers="(\d+)"')
CHOICES = ("together", "partly", "one-by-one")  # the question asked: how will they run?


@dataclass
class Answers:
    """The answering phase, as the clients saw it."""

    over_ms: int
    sent: list[int] = field(default_factory=list)  # monotonic ns, one per answer
    taken: int = 0  # answers the server confirmed to their follower
    confirmed_ms: list[float] = field(default_factory=list)  # sent to confirmed, each
    refused: list[str] = field(default_factory=list)
    counted: list[tuple[int, int]] = field(default_factory=list)  # (arrived ns, answers)
    tasks: set[asyncio.Task[int]] = field(default_factory=set)

    async def answer(self, socket: ClientConnection, question: str) -> int:
        await asyncio.sleep(random.uniform(0, self.over_ms / 1000))
        sent = time.monotonic_ns()
        self.sent.append(sent)
        choice = random.choice(CHOICES)
        await socket.send(json.dumps({"action": "answer", "question": question, "choice": choice}))
        return sent


async def follower(
    url: str,
    origin: str,
    student: str,
    arrivals: dict[int, list[int]],
    ready: asyncio.Event,
    answers: Answers,
) -> None:
    headers = {"Cookie": f"class-student={student}"}
    async with connect(
        url, origin=Origin(origin), additional_headers=headers, open_timeout=60, max_size=2**22
    ) as socket:
        ready.set()
        answering: asyncio.Task[int] | None = None
        async for message in socket:
            text = str(message)
            match = FRAME_HEAD.match(text)
            if match:
                arrivals.setdefault(int(match[1]), []).append(time.monotonic_ns())
            elif "Send my answer" in text and (asked := QUESTION.search(text)):
                answering = asyncio.create_task(answers.answer(socket, asked[1]))
                answers.tasks.add(answering)
                answering.add_done_callback(answers.tasks.discard)
            elif "Your answer:" in text:
                answers.taken += 1
                if answering is not None and answering.done():
                    answers.confirmed_ms.append((time.monotonic_ns() - answering.result()) / 1e6)
            elif text.startswith('<p id="class-status"'):
                answers.refused.append(text)


async def instructor_listens(driver: ClientConnection, answers: Answers) -> None:
    async for message in driver:
        if counted := COUNTED.search(str(message)):
            answers.counted.append((time.monotonic_ns(), int(counted[1])))


def ask_the_class(base_url: str, code: str, cookie: str) -> None:
    """As the instructor's page: the question "how will they run?" put to the class."""
    with httpx.Client(base_url=base_url, cookies={"class-drive": cookie}, timeout=30) as browser:
        token = csrf_token(browser.get(f"{EXAMPLE}&step=1").text)
        asked = browser.post(
            f"/class/{code}/ask/",
            data={"csrfmiddlewaretoken": token, "kind": "predict-overlap"},
            headers={"Referer": f"{base_url}{EXAMPLE}"},
        )
        if asked.status_code != 302:
            raise RuntimeError(f"asking failed: {asked.status_code} {asked.text[:200]}")


async def answering(
    base_url: str, code: str, cookie: str, answers: Answers, followers: int
) -> float:
    """Ask, wait for every answer to be taken and counted, print what happened; return
    the p95 of the histogram's update latency (infinite if an answer was lost)."""
    await asyncio.to_thread(ask_the_class, base_url, code, cookie)
    deadline = time.monotonic() + answers.over_ms / 1000 + 60
    while answers.taken + len(answers.refused) < followers and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    while (not answers.counted or answers.counted[-1][1] < answers.taken) and (
        time.monotonic() < deadline
    ):
        await asyncio.sleep(0.1)
    last = answers.counted[-1][1] if answers.counted else 0
    latencies = []
    for rank, sent in enumerate(sorted(answers.sent), start=1):
        shown = next((at for at, count in answers.counted if count >= rank and at >= sent), None)
        if shown is not None:
            latencies.append((shown - sent) / 1e6)
    print(
        f"answers: sent {len(answers.sent)}, taken {answers.taken}, refused "
        f"{len(answers.refused)}, counted by the last histogram {last}; "
        f"{len(answers.counted)} histograms drawn"
    )
    if answers.confirmed_ms:
        confirmed = answers.confirmed_ms
        print(
            "answer confirmed to its follower, ms: "
            f"p50 {percentile(confirmed, 50):.1f}, p95 {percentile(confirmed, 95):.1f}"
        )
    for refusal in answers.refused[:3]:
        print(f"  refused: {refusal}")
    if not latencies:
        return float("inf")
    print(
        "histogram update latency ms: "
        f"p50 {percentile(latencies, 50):.1f}, p95 {percentile(latencies, 95):.1f}, "
        f"p99 {percentile(latencies, 99):.1f}, max {max(latencies):.1f}"
    )
    complete = answers.taken == last == followers and len(latencies) == followers
    return percentile(latencies, 95) if complete else float("inf")


async def run(
    servers: list[str],
    followers: int,
    steps: int,
    interval_ms: int,
    batch: int,
    rounds: int,
    answers: Answers,
) -> tuple[list[float], float]:
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
            student = f"bench-student-{index:06d}"
            tasks.append(
                asyncio.create_task(follower(url, base, student, arrivals[index], ready, answers))
            )
        await asyncio.wait_for(asyncio.gather(*(event.wait() for event in events)), timeout=60)
    print(f"{followers} followers connected in {time.monotonic() - started:.1f} s")

    driver_url = servers[0].replace("http://", "ws://") + f"/ws/class/{code}/"
    headers = {"Cookie": f'class-drive="{cookie}"'}
    driver: ClientConnection
    p99s = []
    async with connect(driver_url, origin=Origin(servers[0]), additional_headers=headers) as driver:
        tasks.append(asyncio.create_task(instructor_listens(driver, answers)))
        for round_number in range(1, rounds + 1):
            sent: dict[int, int] = {}
            for step in range(2, steps + 2):
                version += 1
                sent[version] = time.monotonic_ns()
                await driver.send(json.dumps({"action": "drive", "url": f"{EXAMPLE}&step={step}"}))
                await asyncio.sleep(interval_ms / 1000)
            await asyncio.sleep(3)  # stragglers
            p99s.append(report_round(round_number, arrivals, sent, followers * steps))
        # The class answers once the last step has reached everyone (or 30 s have
        # passed): its figures are the answers', not those of frames still queued.
        quiet = time.monotonic() + 30
        while time.monotonic() < quiet and sum(version in a for a in arrivals) < followers:
            await asyncio.sleep(0.2)
        histogram_p95 = await answering(servers[0], code, cookie, answers, followers)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return p99s, histogram_p95


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
    parser.add_argument("--answer-over-ms", type=int, default=5000)
    parser.add_argument(
        "--redis-url", default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    )
    arguments = parser.parse_args()
    if not 1 <= arguments.followers <= MAX_FOLLOWERS:
        parser.error(f"--followers must be from 1 to {MAX_FOLLOWERS}")
    if not 1 <= arguments.steps <= 200:
        parser.error("--steps must be from 1 to 200")
    check_rounds(parser, arguments.rounds)
    if not 0 <= arguments.answer_over_ms <= 600_000:
        parser.error("--answer-over-ms must be from 0 to 600000")

    data_dir = tempfile.mkdtemp(prefix="fanout-")
    env = {"TRACING_ENABLED": "false", "DATA_DIR": data_dir, "REDIS_URL": arguments.redis_url}
    print(machine())
    print(
        f"2 Daphne processes + Redis; {arguments.followers} followers, {arguments.steps} steps "
        f"a round, one every {arguments.interval_ms} ms"
    )
    try:
        with DaphneServer(env=env) as first, DaphneServer(env=env) as second:
            p99s, histogram_p95 = asyncio.run(
                run(
                    [first.base_url, second.base_url],
                    arguments.followers,
                    arguments.steps,
                    arguments.interval_ms,
                    arguments.connect_batch,
                    arguments.rounds,
                    Answers(arguments.answer_over_ms),
                )
            )
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
    # A round that lost a step counts as infinitely slow.
    median_against_target("p99 step latency (nothing lost)", p99s, 150, " ms")
    counted = "every answer counted" if histogram_p95 != float("inf") else "ANSWERS LOST"
    print(f"histogram update p95 on the instructor's page: {histogram_p95:.1f} ms ({counted})")


if __name__ == "__main__":
    main()
