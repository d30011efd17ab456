"""The playground's worker and its modes: which mode a server is in, the seccomp filter,
a run in local mode, and a worker's report read as untrusted."""

from __future__ import annotations

import asyncio
import dataclasses
import importlib.util
import json
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.fixtures import VERSION_1_EXAMPLES
from tests.visualizer.playground.conftest import stalls_of_the_code
from visualizer.playground import sandbox
from visualizer.playground.editable import starting_code
from visualizer.playground.runs import PlaygroundOff, job_for, outcome, run_edited
from visualizer.playground.sandbox import (
    LISTEN_ENV,
    LOCAL_TEXT,
    SANDBOXED_TEXT,
    Limits,
    WorkerResult,
    current_mode,
    run_worker,
)
from visualizer.scenarios.catalog import SCENARIOS
from visualizer.scenarios.runs import RunRequest
from visualizer.serve_asgi import listening_hosts
from visualizer.server_process import BASE_DIR


@pytest.fixture
def fresh_probe():
    sandbox.sandbox_problem.cache_clear()
    yield
    sandbox.sandbox_problem.cache_clear()


@pytest.mark.parametrize(
    ("chosen", "bwrap_works", "hosts", "mode"),
    [
        ("", True, "0.0.0.0", "sandboxed"),
        ("", False, "127.0.0.1", "local"),
        ("", False, "127.0.0.1,0.0.0.0", "off"),
        ("", False, "", "off"),  # where it listens is not known
        ("local", True, "::1", "local"),
        ("local", True, "192.168.1.20", "off"),
        ("sandboxed", False, "127.0.0.1", "off"),
        ("off", True, "127.0.0.1", "off"),
    ],
)
def test_the_mode_follows_the_setting_the_sandbox_and_the_address(
    bubblewrap, settings, monkeypatch, fresh_probe, chosen, bwrap_works, hosts, mode
):
    settings.PLAYGROUND = chosen
    if not bwrap_works:
        settings.PLAYGROUND_BWRAP = "/nonexistent/bwrap"
    monkeypatch.setenv(LISTEN_ENV, hosts)
    state = current_mode()
    assert state.mode == mode
    if mode == "sandboxed":
        assert state.reason == SANDBOXED_TEXT
    elif mode == "local":
        assert state.reason == LOCAL_TEXT
    elif chosen == "sandboxed":
        assert "/nonexistent/bwrap is not installed (Debian package bubblewrap)" in state.reason


@pytest.mark.django_db
def test_the_page_says_which_mode_is_on(client, settings, monkeypatch, fresh_probe):
    settings.PLAYGROUND = "local"
    monkeypatch.setenv(LISTEN_ENV, "127.0.0.1")
    page = client.get("/scenarios/async-io/").content.decode()
    mode = '<p class="playground-mode" data-mode="local"><strong>Playground: local.</strong>'
    assert mode in page
    assert 'id="edit-form"' in page

    settings.PLAYGROUND = "off"
    page = client.get("/scenarios/async-io/").content.decode()
    assert "<strong>Playground: off.</strong> The playground is turned off" in page
    assert 'id="edit-form"' not in page


@pytest.mark.django_db
def test_a_run_when_the_playground_is_off_says_why(client, settings):
    settings.PLAYGROUND = "off"
    answer = client.post(
        "/scenarios/async-sleep/edit/",
        {"edit-source": starting_code(SCENARIOS["async-sleep"]), "edit-requests": "1"},
    )
    assert answer.status_code == 503
    reason = "The playground is turned off on this server (PLAYGROUND=off)."
    assert reason in answer.content.decode()


def test_it_knows_where_daphne_listens():
    assert listening_hosts(["-b", "0.0.0.0", "-p", "8000"]) == ["0.0.0.0"]
    assert listening_hosts(["-p", "8000"]) == ["127.0.0.1"]
    assert listening_hosts(["-u", "/run/app.sock"]) == ["?"]
    with socket.socket() as shared:
        shared.bind(("127.0.0.1", 0))
        assert listening_hosts(["--fd", str(shared.fileno())]) == ["127.0.0.1"]


SECCOMP_PROBE = textwrap.dedent(
    """\
    import json, os, resource, signal, subprocess, threading
    from visualizer.playground import seccomp
    seccomp.install()
    outcomes = {}
    def attempt(name, action):
        try:
            action()
            outcomes[name] = "allowed"
        except (OSError, ValueError) as error:
            outcomes[name] = type(error).__name__
    attempt("thread", lambda: (t := threading.Thread(target=lambda: None), t.start(), t.join()))
    attempt("fork", os.fork)
    attempt("subprocess", lambda: subprocess.run(["/usr/bin/true"]))
    attempt("signal parent", lambda: os.kill(os.getppid(), 0))
    attempt("signal everyone", lambda: os.kill(-1, 0))
    attempt("signal itself", lambda: os.kill(os.getpid(), 0))
    attempt("raise a limit", lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64)))
    print(json.dumps(outcomes))
    """
)


def test_the_seccomp_filter_refuses_processes_signals_and_limits():
    done = subprocess.run(
        [sys.executable, "-c", SECCOMP_PROBE],
        cwd=BASE_DIR,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {
        "thread": "allowed",
        "fork": "PermissionError",
        "subprocess": "PermissionError",
        "signal parent": "PermissionError",
        "signal everyone": "PermissionError",
        "signal itself": "allowed",
        # Python says so for a refused setrlimit.
        "raise a limit": "ValueError",
    }


def local_run(source: str, requests: int = 1) -> object:
    scenario = SCENARIOS["async-sleep"]
    job = job_for(scenario, source, RunRequest(requests, {"delay_ms": 100}), "pgtestlocal")
    limits = Limits.from_settings()
    return outcome(run_worker(job, "local", limits), job, source, "local", limits)


def test_local_mode_runs_the_edited_view_with_the_same_filter(settings):
    original = starting_code(SCENARIOS["async-sleep"])
    fixed = original.replace("time.sleep(delay_ms / 1000)", "await asyncio.sleep(delay_ms / 1000)")

    blocking, awaiting = local_run(original, 2), local_run(fixed, 2)

    assert blocking.document is not None and awaiting.document is not None
    assert len(stalls_of_the_code(blocking.document)) == 2
    assert stalls_of_the_code(awaiting.document) == []
    assert awaiting.document["code"]["text"] == fixed
    forking = local_run(fixed.replace("await asyncio.sleep", '__import__("os").fork() or print'))
    assert forking.problems[0].message.startswith("PermissionError")


def test_a_load_error_is_reported_at_its_line_and_serves_nothing():
    source = starting_code(SCENARIOS["async-sleep"]) + "\nraise ValueError('at import')\n"
    result = local_run(source)
    assert result.document is None
    assert [(p.line, p.message) for p in result.problems] == [
        (len(source.splitlines()), "ValueError: at import")
    ]
    assert result.stopped == "The module stopped before its view could be served."


def example() -> dict:
    return json.loads((VERSION_1_EXAMPLES / "async-io-1-request.json").read_text())


@pytest.mark.parametrize(
    ("change", "accepted"),
    [
        (lambda d: None, True),
        (lambda d: d.update(id="someone-else"), False),
        (lambda d: d["scenario"].update(slug="async-cpu"), False),
        (lambda d: d.update(code={"file": "a.py", "view": "v", "text": "", "errors": []}), False),
        (lambda d: d["events"][0].update(seq=7), False),
    ],
    ids=["its own run", "another id", "another scenario", "code of its own", "bad events"],
)
def test_a_workers_report_is_read_like_an_import(change, accepted):
    document = example()
    document.update(id="pgreport")
    change(document)
    job = {"recording_id": "pgreport", "slug": "async-io", "view": "async_io"}
    result = WorkerResult(returncode=0, reports=[{"kind": "document", "document": document}])
    run = outcome(result, job, "the code", "sandboxed", Limits.from_settings())
    if accepted:
        assert run.document is not None and run.document["code"]["text"] == "the code"
    else:
        assert run.document is None
        assert run.stopped == "Its report was not a valid trace, so it is not shown."


def test_a_forged_problem_is_only_text(settings):
    job = {"recording_id": "pgreport", "slug": "async-io", "view": "async_io"}
    forged = {"kind": "problem", "stage": "view", "message": "<b>hi</b>" * 500, "line": "1; x"}
    run = outcome(WorkerResult(0, [forged]), job, "code", "sandboxed", Limits.from_settings())
    [problem] = run.problems
    assert problem.line is None and len(problem.message) == 2000


def test_run_edited_refuses_when_off(settings):
    settings.PLAYGROUND = "off"
    with pytest.raises(PlaygroundOff):
        asyncio.run(
            run_edited(
                SCENARIOS["async-sleep"],
                starting_code(SCENARIOS["async-sleep"]),
                RunRequest(1, {}),
            )
        )


@pytest.fixture
def pool(monkeypatch, settings):
    """A pool of its own for the test, one warm worker wanted."""
    settings.PLAYGROUND_WARM_WORKERS = 1
    fresh = sandbox.WarmWorkers()
    monkeypatch.setattr(sandbox, "warm_workers", fresh)
    yield fresh
    fresh.stop()


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ", 1)[1][0] != "Z"
    except FileNotFoundError:
        return False


def test_a_warm_worker_sets_up_ahead_runs_the_next_job_and_is_replaced(pool):
    limits = Limits.from_settings()
    pool.fill("local", limits)
    assert pool.wait_until_set_up(120)
    [first] = pool.waiting()

    source = starting_code(SCENARIOS["async-sleep"])
    job = job_for(SCENARIOS["async-sleep"], source, RunRequest(1, {"delay_ms": 10}), "pgwarm1")
    result = run_worker(job, "local", limits)

    assert result.warm and result.set_up
    assert outcome(result, job, source, "local", limits).document is not None
    assert not alive(first)  # used once
    # Its replacement is started after the run, and waits set up.
    assert pool.wait_until_set_up(120)
    [second] = pool.waiting()
    assert second != first
    # A worker started for other limits is not used: it is ended.
    other = dataclasses.replace(limits, cpu_seconds=limits.cpu_seconds + 1)
    assert pool.take("local", other) is None
    assert pool.waiting() == [] and not alive(second)


def test_stopped_warm_workers_end_and_none_start_after(pool):
    pool.fill("local", Limits.from_settings())
    assert pool.wait_until_set_up(120)
    [waiting] = pool.waiting()

    pool.stop()

    assert not alive(waiting)
    pool.fill("local", Limits.from_settings())
    assert pool.waiting() == []


def test_without_warm_workers_each_run_starts_its_own(pool, settings):
    settings.PLAYGROUND_WARM_WORKERS = 0
    source = starting_code(SCENARIOS["async-sleep"])
    job = job_for(SCENARIOS["async-sleep"], source, RunRequest(1, {"delay_ms": 10}), "pgcold1")
    result = run_worker(job, "local", Limits.from_settings())

    assert not result.warm and result.set_up and result.returncode == 0
    assert pool.waiting() == []


def test_a_workers_modules_are_compiled_once_outside_the_sandbox(monkeypatch):
    # What only a worker imports (its own module, Daphne's server) has no bytecode yet.
    cached = [
        Path(importlib.util.cache_from_source(str(sandbox.WORKER_FILE))),
        Path(importlib.util.cache_from_source(importlib.util.find_spec("daphne.server").origin)),
    ]
    for path in cached:
        path.unlink(missing_ok=True)
    monkeypatch.setattr(sandbox, "_bytecode_tried", False)

    assert sandbox.write_worker_bytecode() is True
    assert all(path.exists() for path in cached)
    # Done once: a fresh bytecode of the worker module says so.
    monkeypatch.setattr(sandbox, "_bytecode_tried", False)
    assert sandbox.write_worker_bytecode() is False
