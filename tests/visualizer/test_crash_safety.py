"""kill -9 of `manage.py serve` during a live run and a lab run, then a restart.

The real command runs as a subprocess on a database of its own. Before the kill it has
stored a trace, and a live run (WebSocket) and a WSGI lab run (gunicorn, two workers) are
under way. After the kill: no process it started survives, the database is sound; after
the restart: the earlier trace exports the same bytes, and the cut-off runs show as
interrupted in the library, the player, the live page's stream and the lab's progress.
"""

from __future__ import annotations

import contextlib
import html
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

import httpx
import pytest
from websockets.sync.client import connect

from visualizer.server_process import BASE_DIR, free_port

Process = tuple[int, int]  # pid, start time (pids are reused)


def stat_fields(pid: int) -> list[str] | None:
    """The /proc/<pid>/stat fields after the command name (state, ppid, ...)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return None


def descendants(root: int) -> set[Process]:
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (fields := stat_fields(int(entry.name))):
            parents.setdefault(int(fields[1]), []).append(int(entry.name))
    found: set[Process] = set()
    todo = list(parents.get(root, []))
    while todo:
        pid = todo.pop()
        if (fields := stat_fields(pid)) is not None:
            found.add((pid, int(fields[19])))
        todo.extend(parents.get(pid, []))
    return found


def running(process: Process) -> bool:
    fields = stat_fields(process[0])
    return fields is not None and int(fields[19]) == process[1] and fields[0] != "Z"


def command_of(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def wait_for[T](
    condition: Callable[[], T],
    what: str,
    timeout: float = 40,
    details: Callable[[], object] = lambda: "",
) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := condition():
            return result
        time.sleep(0.1)
    pytest.fail(f"timed out waiting for {what} {details()}")


class Serve:
    """`manage.py serve` as a user starts it, on a free port."""

    def __init__(self, env: dict[str, str], log: IO[bytes]) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [sys.executable, "manage.py", "serve", "--port", str(self.port)],
            cwd=BASE_DIR,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        wait_for(self.answers, "the server to answer", timeout=60)

    def answers(self) -> bool:
        assert self.process.poll() is None, "serve exited"
        try:
            return httpx.get(f"{self.base_url}/", timeout=5).status_code == 200
        except httpx.HTTPError:
            return False


@pytest.fixture
def data_dir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="visualizer-crash-") as path:
        yield Path(path)


@pytest.fixture
def started() -> Iterator[set[Process]]:
    """Every process the test's servers started; any still running at the end is killed,
    so that a failing test leaves nothing behind."""
    processes: set[Process] = set()
    yield processes
    for process in processes:
        if running(process):
            with contextlib.suppress(OSError):
                os.kill(process[0], signal.SIGKILL)


def rows(database: Path, sql: str, *params: object) -> list[tuple[object, ...]]:
    with contextlib.closing(sqlite3.connect(database, timeout=20)) as connection:
        return connection.execute(sql, params).fetchall()


def csrf(client: httpx.Client, page: str) -> tuple[dict[str, str], dict[str, str]]:
    text = client.get(page).text
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', text)
    assert token is not None
    return {"csrfmiddlewaretoken": token[1]}, {"Referer": f"{client.base_url}{page}"}


def test_a_killed_server_loses_nothing_leaves_nothing_and_says_what_was_cut_off(
    data_dir, started, tmp_path
):
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "visualizer.settings",
        "DATA_DIR": str(data_dir),
        "TRACING_ENABLED": "true",
        "SECRET_KEY": "crash-safety-test",
    }
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    database = data_dir / "db.sqlite3"
    log = (tmp_path / "serve.log").open("wb")

    first = Serve(env, log)
    with httpx.Client(base_url=first.base_url, timeout=60) as client:
        # A trace stored before anything goes wrong: a run without JavaScript.
        form, headers = csrf(client, "/scenarios/async-io/")
        stored = client.post(
            "/scenarios/async-io/run/",
            data={**form, "requests": "2", "delay_ms": "50"},
            headers=headers,
        )
        assert stored.status_code == 302, stored.text
        earlier = re.search(r"recording=([A-Za-z0-9_-]+)", stored.headers["location"])[1]
        exported = client.get(f"/traces/{earlier}/export.json").content
        assert json.loads(exported)["id"] == earlier

        # A WSGI lab run from the lab page (htmx): 8 requests of 10 s each on two gunicorn
        # workers of one thread, 40 s in all.
        form, headers = csrf(client, "/lab/")
        lab = client.post(
            "/lab/run/",
            data={
                **form,
                "scenario": "sync-io",
                "requests": "8",
                "delay_ms": "10000",
                "server": "wsgi",
                "workers": "2",
                "threads": "1",
            },
            headers={**headers, "HX-Request": "true"},
        )
        assert lab.status_code == 200, lab.text
        poll_url = html.unescape(re.search(r'hx-get="(/lab/runs/[^"]+)"', lab.text)[1])
        lab_id = re.search(r"/lab/runs/([A-Za-z0-9_-]+)/", poll_url)[1]

        # Under way: the workers have stored their parts of the run so far.
        wait_for(
            lambda: rows(database, "SELECT 1 FROM visualizer_trace WHERE recording_id LIKE ? "
                         "AND request_count > 0", f"{lab_id}-w%"),
            "the gunicorn workers to store their parts of the lab run",
        )  # fmt: skip

        # A live run from the scenario page's WebSocket, its requests waiting 10 s each.
        socket_url = f"ws://127.0.0.1:{first.port}/ws/scenarios/async-io/"
        with connect(socket_url, origin=first.base_url, open_timeout=10) as socket:
            socket.send(json.dumps({"action": "run", "requests": 3, "delay_ms": 10000}))
            frame = str(socket.recv(timeout=30))
            live = re.search(r'data-recording="(live-[0-9a-f]+)"', frame)[1]
            # Under way: its requests are stored as they wait.
            wait_for(
                lambda: rows(database, "SELECT 1 FROM visualizer_trace WHERE recording_id = ? "
                             "AND request_count = 3", live),
                "the live run's requests to be stored",
            )  # fmt: skip

    children = descendants(first.process.pid)
    started.update(children)
    assert any("gunicorn" in command_of(pid) for pid, _ in children), children

    first.process.send_signal(signal.SIGKILL)
    first.process.wait()

    # (c) Nothing the server started outlives it.
    def survivors() -> list[str]:
        return [command_of(pid) for pid, start in children if running((pid, start))]

    wait_for(lambda: not survivors(), "the server's processes to end", details=survivors)
    # (b) What the kill left is a sound database.
    assert rows(database, "PRAGMA integrity_check") == [("ok",)]

    second = Serve(env, log)
    try:
        started.update(descendants(second.process.pid))
        with httpx.Client(base_url=second.base_url, timeout=60) as client:
            # (a) The earlier trace is as it was.
            assert client.get(f"/traces/{earlier}/export.json").content == exported
            # (d) The cut-off runs are interrupted, nowhere still recording or complete.
            statuses = dict(rows(database, "SELECT recording_id, status FROM visualizer_trace"))
            assert statuses[earlier] == "complete"
            assert statuses[live] == "interrupted" and statuses[lab_id] == "interrupted"
            assert "recording" not in statuses.values()
            # The lab run's parts are merged into its trace, not left beside it.
            assert not [key for key in statuses if key.startswith(f"{lab_id}-w")]
            library = client.get("/traces/").text
            for recording in (live, lab_id):
                row = re.search(rf'<tr id="trace-{recording}">.*?</tr>', library, re.S)
                assert row is not None and "Interrupted" in row[0]
            player = client.get(f"/traces/{live}/", follow_redirects=True).text
            assert "This run was interrupted" in player
            polled = client.get(poll_url, headers={"HX-Request": "true"})
            assert polled.status_code == 200
            assert "This run was interrupted" in polled.text
            assert "hx-trigger" not in polled.text and "HX-Redirect" not in polled.headers
        socket_url = f"ws://127.0.0.1:{second.port}/ws/scenarios/async-io/?recording={live}"
        with connect(socket_url, origin=second.base_url) as socket:
            snapshot = str(socket.recv(timeout=30))
        assert "This run was interrupted" in snapshot
        assert 'data-running="false"' in snapshot
    finally:
        second.process.terminate()
        second.process.wait(30)
    assert rows(database, "PRAGMA integrity_check") == [("ok",)]
