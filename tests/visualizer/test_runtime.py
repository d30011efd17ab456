"""Nothing starts at import; a process's services start once and stop in reverse order
(visualizer/runtime.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from visualizer import runtime as runtime_module
from visualizer.runtime import Runtime
from visualizer.server_process import BASE_DIR


def run_python(code: str, tmp_path, **env: str) -> dict:
    """Run ``code`` in a fresh Python of this project; it prints one JSON line."""
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=BASE_DIR,
        env={
            **{k: v for k, v in os.environ.items() if k != "VISUALIZER_ROLE"},
            "DJANGO_SETTINGS_MODULE": "visualizer.settings",
            "DATA_DIR": str(tmp_path),
            "TRACING_ENABLED": "true",
            **env,
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


CHILDREN = """
def children():
    import os
    found = []
    for task in os.listdir("/proc/self/task"):
        with open(f"/proc/self/task/{task}/children") as listing:
            found += listing.read().split()
    return found
"""


@pytest.mark.parametrize("role", ["ui", "subject"])
def test_importing_the_asgi_and_wsgi_modules_starts_no_thread_and_no_process(tmp_path, role):
    env = {"VISUALIZER_ROLE": "subject"} if role == "subject" else {}
    seen = run_python(
        CHILDREN
        + """
import json, threading
import visualizer.asgi, visualizer.wsgi
print(json.dumps({"threads": [t.name for t in threading.enumerate()],
                  "children": children()}))
""",
        tmp_path,
        **env,
    )
    assert seen == {"threads": ["MainThread"], "children": []}


def test_the_ui_starts_its_services_once_and_stops_them_all(tmp_path):
    seen = run_python(
        CHILDREN
        + """
import json, threading
from visualizer.asgi import application
from visualizer.runtime import runtime
application.start()
application.start()
started = {"services": runtime.services(), "children": children(),
           "threads": sorted(t.name for t in threading.enumerate())}
runtime.stop()
import time
deadline = time.monotonic() + 10
while children() and time.monotonic() < deadline:
    time.sleep(0.05)
print(json.dumps({"started": started, "children": children(),
                  "threads": sorted(t.name for t in threading.enumerate()),
                  "running": runtime.running}))
""",
        tmp_path,
    )
    started = seen["started"]
    assert started["services"] == ["upstream", "archiver", "playground workers", "subject"]
    assert len(started["children"]) == 1  # the subject process
    assert {"trace-archiver", "upstream-service"} <= set(started["threads"])
    assert seen["children"] == []
    assert "trace-archiver" not in seen["threads"]
    assert "upstream-service" not in seen["threads"]
    assert seen["running"] is False


def test_a_runtime_starts_once_and_stops_the_last_started_first(monkeypatch):
    happened: list[str] = []

    def start_fake(runtime: Runtime) -> None:
        for name in ("first", "second", "third"):
            happened.append(f"start {name}")
            runtime.started(name, lambda name=name: happened.append(f"stop {name}"))

    monkeypatch.setitem(runtime_module.STARTS, "ui", start_fake)
    runtime = Runtime()
    runtime.start("ui")
    runtime.start("ui")
    assert runtime.services() == ["first", "second", "third"]
    with pytest.raises(RuntimeError, match="already started as ui"):
        runtime.start("subject")
    runtime.stop()
    runtime.stop()
    assert happened == [
        "start first",
        "start second",
        "start third",
        "stop third",
        "stop second",
        "stop first",
    ]
    assert not runtime.running


def test_a_service_that_fails_to_start_stops_those_started_before_it(monkeypatch):
    happened: list[str] = []

    def start_fake(runtime: Runtime) -> None:
        runtime.started("first", lambda: happened.append("stop first"))
        raise OSError("no port")

    monkeypatch.setitem(runtime_module.STARTS, "ui", start_fake)
    runtime = Runtime()
    with pytest.raises(OSError, match="no port"):
        runtime.start("ui")
    assert happened == ["stop first"]
    assert not runtime.running
