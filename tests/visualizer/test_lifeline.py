"""Child servers end with the process that started them (visualizer/lifeline.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Callable, Iterator

import pytest

from visualizer import lifeline
from visualizer.server_process import BASE_DIR

SLEEPER = [sys.executable, "-c", "import time; time.sleep(60)"]


def running(pid: int) -> bool:
    return lifeline.alive(pid)


def wait_for(condition: Callable[[], bool], timeout: float = 30) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


@pytest.fixture
def pids() -> Iterator[list[int]]:
    """Processes a test started; any still running at its end are killed."""
    started: list[int] = []
    yield started
    for pid in started:
        if running(pid):
            os.kill(pid, signal.SIGKILL)


# The parent: starts two children through spawn(), one watching its lifeline and one not,
# prints their pids, then waits to be killed.
PARENT = textwrap.dedent(
    """
    import os, sys, time
    from visualizer import lifeline
    child = "import time; from visualizer import lifeline; {} time.sleep(60)"
    watching = lifeline.spawn(
        [sys.executable, "-c", child.format("lifeline.watch_parent(lifeline.exit_now);")],
        env=dict(os.environ),
    )
    not_watching = lifeline.spawn([sys.executable, "-c", child.format("")], env=dict(os.environ))
    print(watching.pid, not_watching.pid, flush=True)
    time.sleep(60)
    """
)


def test_a_child_watching_its_lifeline_ends_when_its_parent_is_killed(pids):
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT], cwd=BASE_DIR, stdout=subprocess.PIPE, text=True
    )
    pids.append(parent.pid)
    assert parent.stdout is not None
    watching, not_watching = map(int, parent.stdout.readline().split())
    pids.extend([watching, not_watching])
    assert running(watching) and running(not_watching)
    # Until the parent ends, the child watching waits.
    assert not wait_for(lambda: not running(watching), timeout=1)

    parent.send_signal(signal.SIGKILL)
    parent.wait()

    assert wait_for(lambda: not running(watching)), "the watching child outlived its parent"
    # The one that does not watch is still there: the lifeline is what ended the other.
    assert running(not_watching)


def test_a_process_not_started_through_spawn_watches_nothing(monkeypatch):
    monkeypatch.delenv(lifeline.LIFELINE_ENV, raising=False)
    assert lifeline.watch_parent(lambda: pytest.fail("called")) is False
    # A number that is not a pipe (here: standard input's) is no lifeline either.
    monkeypatch.setenv(lifeline.LIFELINE_ENV, "0")
    assert lifeline.watch_parent(lambda: pytest.fail("called")) is False


def ended_identity() -> str:
    """The identity of a process, taken while it ran; it has ended since."""
    process = subprocess.Popen(SLEEPER)
    identity = lifeline.identity(process.pid)
    process.kill()
    process.wait()
    return identity


def test_an_identity_names_one_running_process():
    me = lifeline.identity()
    assert lifeline.is_running(me) is True
    assert lifeline.is_running(ended_identity()) is False
    assert lifeline.is_running(me.replace(lifeline._boot_id(), "an-earlier-boot")) is False
    assert lifeline.is_running("another-host:boot:1:2") is None
    assert lifeline.is_running("") is False


def test_start_up_stops_the_processes_a_dead_server_of_its_database_left(pids):
    dead_parent = ended_identity()
    marker = f"sqlite:///tmp/{uuid.uuid4().hex}/db.sqlite3"

    def start(parent: str, database: str) -> int:
        env = {**os.environ, lifeline.PARENT_ENV: parent, lifeline.DATABASE_ENV: database}
        pid = subprocess.Popen(SLEEPER, env=env).pid
        pids.append(pid)
        return pid

    orphan = start(dead_parent, marker)
    adopted = start(lifeline.identity(), marker)  # its parent (this process) still runs
    other_database = start(dead_parent, marker + "-other")

    assert lifeline.stop_orphans(marker) == [orphan]
    assert wait_for(lambda: not running(orphan))
    assert running(adopted) and running(other_database)


def test_spawned_children_are_told_their_database_by_absolute_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path.parent)
    marker = lifeline.database_marker({"DATA_DIR": tmp_path.name})
    assert marker == f"sqlite:///{tmp_path.resolve() / 'db.sqlite3'}"
    assert lifeline.database_marker({"DATABASE_URL": "postgres://db/x"}) == "postgres://db/x"
