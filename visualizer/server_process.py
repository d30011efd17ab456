"""Run this app in a server subprocess (Daphne, or gunicorn for WSGI) on a free loopback port.

The CLI, the tests and the benchmarks all use it, so each talks to a real server exactly as a
browser would.
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Any, NoReturn

from visualizer.lifeline import spawn

BASE_DIR = Path(__file__).resolve().parent.parent
TEST_PROJECT_DIR = BASE_DIR / "tests" / "project"

# How the browser tests, benchmarks and screenshots launch Chromium (visualizer/chromium.py
# finds it). Without the background-networking switches it keeps trying to reach hosts this
# machine cannot reach.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def _secret_key() -> str:
    from django.conf import settings
    from django.core.exceptions import ImproperlyConfigured

    try:
        return str(settings.SECRET_KEY)
    except ImproperlyConfigured:  # not a Django process: the server keeps its own key
        return os.environ.get("SECRET_KEY", "")


def startup_timeout_s() -> float:
    """Seconds a server subprocess gets to answer its first request: the
    ``SERVER_START_TIMEOUT_S`` environment variable, or 30. A machine busy with other work
    can take a minute to start one (the tests give their servers more)."""
    given = os.environ.get("SERVER_START_TIMEOUT_S", "").strip()
    if not given:
        return 30.0
    try:
        seconds = float(given)
    except ValueError:
        seconds = math.nan
    if not 0 < seconds < math.inf:
        raise ValueError(
            f"SERVER_START_TIMEOUT_S must be a number of seconds above 0, not {given!r}"
        )
    return seconds


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class DaphneServer:
    """A Daphne process serving visualizer.asgi; use as a context manager. As the UI
    process it starts its own subject process (visualizer/scenarios/subject.py); with
    ``VISUALIZER_ROLE=subject`` in ``env`` it is a subject on its own."""

    name = "Daphne"

    def __init__(
        self,
        env: dict[str, str] | None = None,
        startup_timeout: float | None = None,
        migrate: bool = True,
    ) -> None:
        # False when the database is known to be migrated (the lab's gunicorn uses the UI's).
        self.migrate = migrate
        self.env = {**os.environ, "DJANGO_SETTINGS_MODULE": "visualizer.settings", **(env or {})}
        # The server signs and checks recording ids with its secret key: the same as this
        # process's, which signs the runs it sends (tracer.django_integration).
        if not self.env.get("SECRET_KEY") and (key := _secret_key()):
            self.env["SECRET_KEY"] = key
        # Set for browser tests in the test process; the server must keep Django's check.
        self.env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        self.startup_timeout = (
            startup_timeout if startup_timeout is not None else startup_timeout_s()
        )
        # Where the server runs, and its manage.py is.
        self.cwd = BASE_DIR
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None
        # Kept open for the life of the server, with no name: nothing is left behind,
        # even when this process is killed.
        self._log = tempfile.TemporaryFile(prefix="daphne-", suffix=".log")  # noqa: SIM115

    def command(self, port: int) -> list[str]:
        return [sys.executable, "-m", "visualizer.serve_asgi", "-b", "127.0.0.1", "-p", str(port)]

    def popen_options(self) -> dict[str, Any]:
        return {}

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> DaphneServer:
        # The server stores every run: its database needs its tables first.
        if self.migrate:
            self._migrate()
        self.port = free_port()
        # It ends when this process does, however this one ends (visualizer/lifeline.py).
        self.process = spawn(
            self.command(self.port),
            cwd=self.cwd,
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            **self.popen_options(),
        )
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self._fail(f"{self.name} exited at start-up")
            try:
                # A refused connection fails at once; a server that took it is given the
                # rest of the time to answer (a first page on a busy machine can take
                # seconds, and giving up on it only queues the same request again).
                remaining = max(0.1, deadline - time.monotonic())
                urllib.request.urlopen(f"{self.base_url}/", timeout=remaining).close()
                return self
            except urllib.error.HTTPError:
                return self
            except OSError:
                time.sleep(0.1)
        self._fail(f"{self.name} did not answer within {self.startup_timeout} s")

    def _migrate(self) -> None:
        migrate = subprocess.run(
            [sys.executable, "manage.py", "migrate", "--noinput", "-v0"],
            cwd=self.cwd,
            env=self.env,
            capture_output=True,
            text=True,
        )
        if migrate.returncode != 0:
            self._log.close()
            raise RuntimeError(f"migrate failed:\n{migrate.stdout}{migrate.stderr}")

    def _fail(self, reason: str) -> NoReturn:
        message = f"{reason}:\n{self.log_tail()}"
        self.stop()
        raise RuntimeError(message)

    def stop(self) -> None:
        """Stop the process (if running) and remove its log; calling it again is harmless."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()
                self.process.wait()
        self._log.close()

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()

    def log_tail(self, lines: int = 40) -> str:
        # Read without moving the offset the server's output is written at.
        fd = self._log.fileno()
        text = os.pread(fd, os.fstat(fd).st_size, 0).decode(errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def __enter__(self) -> DaphneServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


class ProjectServer(DaphneServer):
    """A Daphne process serving the test project (tests/project, package ``shop``), which
    traces its own views with the installable app (async_visualizer). Its database is a
    file of its own, removed with the server."""

    def __init__(
        self, env: dict[str, str] | None = None, startup_timeout: float | None = None
    ) -> None:
        self._database = tempfile.TemporaryDirectory(prefix="shop-")
        super().__init__(
            {
                "DJANGO_SETTINGS_MODULE": "shop_project.settings",
                # The tracer and the app, as an installed wheel would give them.
                "PYTHONPATH": str(BASE_DIR),
                "SHOP_DATABASE": str(Path(self._database.name) / "shop.sqlite3"),
                **(env or {}),
            },
            startup_timeout,
        )
        self.cwd = TEST_PROJECT_DIR

    def command(self, port: int) -> list[str]:
        return [
            sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port),
            "shop_project.asgi:application",
        ]  # fmt: skip

    def stop(self) -> None:
        super().stop()
        self._database.cleanup()


class GunicornServer(DaphneServer):
    """A gunicorn process serving visualizer.wsgi with W sync workers of T threads each."""

    name = "gunicorn"

    def __init__(
        self,
        env: dict[str, str] | None = None,
        *,
        workers: int = 1,
        threads: int = 1,
        migrate: bool = True,
    ) -> None:
        super().__init__(env, migrate=migrate)
        self.workers = workers
        self.threads = threads
        # The tracer puts them in the trace's server description.
        self.env["TRACE_WSGI_WORKERS"] = str(workers)
        self.env["TRACE_WSGI_THREADS"] = str(threads)
        # Gunicorn runs the traced views itself and stores what it records.
        self.env["VISUALIZER_ROLE"] = "subject"
        self.env.pop("VISUALIZER_FEED", None)
        self.env.pop("VISUALIZER_FEED_TOKEN", None)
        if workers > 1:
            # Each worker records its share of a run apart, to be merged afterwards.
            self.env["TRACE_PROCESS_TAG"] = "true"

    def command(self, port: int) -> list[str]:
        return [
            sys.executable, "-m", "gunicorn", "visualizer.wsgi:application",
            "--bind", f"127.0.0.1:{port}", "--workers", str(self.workers),
            "--threads", str(self.threads), "--timeout", "120",
            # Requests wait in the listen queue instead of being refused.
            "--backlog", "1024",
            # No control socket: every gunicorn would share ~/.gunicorn/gunicorn.ctl.
            "--no-control-socket",
            # The master ends, with its workers, when this process does.
            "--config", "python:visualizer.gunicorn_hooks",
        ]  # fmt: skip

    def popen_options(self) -> dict[str, Any]:
        # A process group of its own: the master can end its workers with it at once.
        return {"process_group": 0}

    def kill(self) -> None:
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
