from __future__ import annotations

import os
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import BUSY_MACHINE_MS
from tracer import events
from visualizer.playground.sandbox import sandbox_problem
from visualizer.playground.worker import FILE_NAME
from visualizer.server_process import DaphneServer

# Small limits, so that the tests that reach them are quick.
LIMITS = {
    "PLAYGROUND_CPU_SECONDS": "3",
    "PLAYGROUND_WALL_SECONDS": "10",
    "PLAYGROUND_MEMORY_MB": "1024",
    "PLAYGROUND_RUNS_PER_CLIENT": "4",
    "PLAYGROUND_RUNS": "4",
}


@pytest.fixture(scope="session")
def bubblewrap() -> None:
    """The sandbox works here: bubblewrap is installed (on Debian as root, installed now,
    as the browser tests install Chromium), else the tests that need it fail saying so."""
    if shutil.which("bwrap") is None and Path("/etc/debian_version").exists() and os.geteuid() == 0:
        environment = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        for command in (
            ["apt-get", "update", "-qq"],
            ["apt-get", "install", "-y", "-qq", "bubblewrap"],
        ):
            subprocess.run(command, env=environment, capture_output=True, timeout=600)
        sandbox_problem.cache_clear()
    problem = sandbox_problem()
    assert problem is None, f"the sandbox does not work here: {problem}"


@pytest.fixture(scope="session")
def playground_server(bubblewrap: None, server_data_dir: str) -> Iterator[DaphneServer]:
    """The app under a real Daphne on loopback, tracing on, the playground in its default
    mode (sandboxed, where bubblewrap works: .ci/run installs it)."""
    env = {"TRACING_ENABLED": "true", "DATA_DIR": server_data_dir, **LIMITS}
    with DaphneServer(env=env) as server:
        yield server


@pytest.fixture(scope="module")
def lesson_server(bubblewrap: None, server_data_dir: str) -> Iterator[DaphneServer]:
    """The same, with the playground's own limits: a worker's start alone can take 2-3 s
    of CPU time where Python compiles every module it imports (no bytecode written, as
    with PYTHONDONTWRITEBYTECODE), too close to the small limits above for code that is
    not meant to reach them."""
    env = {"TRACING_ENABLED": "true", "DATA_DIR": server_data_dir}
    with DaphneServer(env=env) as server:
        yield server


def stalls_of_the_code(document: dict[str, Any]) -> list[dict[str, Any]]:
    """The loop's stalls the edited code caused: the loop's thread was in it (the stall's
    place, or a frame of its stack, is in the edited module) and it computed or waited
    there, for longer than a busy machine holds a quick step (BUSY_MACHINE_MS). A stall
    whose cause is the GIL or a busy machine (``gil``, ``preempted``) is not the code's,
    wherever the loop was; nor is one outside the code (a 30 ms wait in the loop's own
    machinery, which a machine with other work on both cores can give). The stalls the
    tests ask about (a time.sleep of 100 ms or more) last longer than BUSY_MACHINE_MS."""
    return [
        e
        for e in document["events"]
        if e["kind"] == events.LOOP_BLOCKED
        and e["duration_ns"] >= BUSY_MACHINE_MS * 1_000_000
        and e.get("cause") in (events.CAUSE_COMPUTING, events.CAUSE_WAITING)
        and (
            str(e["file"]).endswith(f"/{FILE_NAME}")
            or any(frame["file"].endswith(f"/{FILE_NAME}") for frame in e.get("stack", []))
        )
    ]


def post_edit(
    server: DaphneServer, slug: str, source: str, *, stream: bool = False, **fields: str
) -> tuple[httpx.Response, httpx.Response | None]:
    """Send edited code from the scenario page's form; the answer, and the page it leads
    to (None if it leads nowhere). ``stream`` sends what the page's script adds: the
    answer may come while the run goes on."""
    with httpx.Client(base_url=server.base_url, timeout=120) as client:
        page = client.get(f"/scenarios/{slug}/")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
        assert token, page.text[:500]
        data = {"csrfmiddlewaretoken": token[1], "edit-source": source, "edit-requests": "1"}
        data.update({f"edit-{name}": value for name, value in fields.items()})
        if stream:
            data["stream"] = "1"
        answer = client.post(
            f"/scenarios/{slug}/edit/", data=data, headers={"Referer": str(page.url)}
        )
        shown = client.get(answer.headers["location"]) if answer.status_code == 302 else None
    return answer, shown


def recording_of(server: DaphneServer, shown: httpx.Response) -> dict[str, Any]:
    recording = re.search(r"recording=([A-Za-z0-9_-]+)", str(shown.url))
    assert recording
    return httpx.get(f"{server.base_url}/recordings/{recording[1]}.json", timeout=30).json()


class Responsiveness:
    """Asks the server for its home page over and over while something else goes on, and
    notes every answer: the server must keep answering."""

    def __init__(self, server: DaphneServer) -> None:
        self.server = server
        self.answers: list[int] = []
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._ask, daemon=True)

    def _ask(self) -> None:
        while not self._stop.is_set():
            try:
                self.answers.append(httpx.get(f"{self.server.base_url}/", timeout=10).status_code)
            except httpx.HTTPError as error:
                self.failures.append(repr(error))
            time.sleep(0.2)

    def __enter__(self) -> Responsiveness:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
