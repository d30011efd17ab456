"""The subject: a Daphne process of its own that runs the traced scenario views.

The UI process (pages, WebSockets, the live broadcaster, the archiver, the upstream
service) instruments nothing. It starts one subject process on a free loopback port and
sends every run there, so nothing the UI does (rendering, broadcasting, saving) ever runs
on the event loop whose requests are traced, and a view that blocks its loop blocks only
the subject. The subject's tracer streams each event to the UI as it is recorded (see
tracer/sinks.py); the UI mirrors the events into its own recording store, which the live
page, the archiver and the lab follow.

``VISUALIZER_ROLE=subject`` makes a process a subject (settings.py picks its URLs). With
``VISUALIZER_FEED=host:port`` it streams to that UI and stores nothing itself; without
(``manage.py trace``, the lab's gunicorn) it stores its recordings as a whole app would.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import os
import secrets
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass

from django.conf import settings

from tracer.django_integration import get_config, get_tracer
from tracer.recorder import Recording, RecordingStore
from tracer.sinks import EventMirror, StreamSink
from visualizer.lifeline import spawn
from visualizer.server_process import BASE_DIR, free_port, startup_timeout_s

logger = logging.getLogger(__name__)

ROLE_ENV = "VISUALIZER_ROLE"
FEED_ENV = "VISUALIZER_FEED"
TOKEN_ENV = "VISUALIZER_FEED_TOKEN"


class SubjectUnavailable(Exception):
    """The subject server is not running and could not be started; the text says why."""


def _store_mirrored(recording: Recording) -> None:
    # Imported here: the archive imports the models, which need Django set up.
    from visualizer.traces.archive import archiver

    archiver.save_now(recording)


class SubjectProcess:
    """The UI's subject server: started once, restarted if it died, stopped on exit."""

    def __init__(self, startup_timeout: float | None = None) -> None:
        self.startup_timeout = (
            startup_timeout if startup_timeout is not None else startup_timeout_s()
        )
        self._lock = threading.Lock()
        self._process: subprocess.Popen[bytes] | None = None
        self._port = 0
        self._mirror: EventMirror | None = None
        self._exit_hook = False
        # Only the subject this process started may feed its mirror.
        self._token = secrets.token_hex(16)

    @property
    def mirror(self) -> EventMirror:
        if self._mirror is None:
            on_sync = _store_mirrored if get_config()["ENABLED"] else None
            self._mirror = EventMirror(get_tracer().store, on_sync=on_sync, token=self._token)
        return self._mirror

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def url_if_running(self) -> str | None:
        """The subject's base URL if it is running (no waiting)."""
        process = self._process
        if process is None or process.poll() is not None or not self.mirror.connected:
            return None
        return f"http://127.0.0.1:{self._port}"

    def ensure_running(self) -> str:
        """The subject's base URL, starting it (again, if it died) when need be. Blocks
        while it starts; SubjectUnavailable if it cannot."""
        with self._lock:
            url = self.url_if_running()
            if url is not None:
                return url
            if self._process is not None:
                code = self._process.poll()
                if code is not None:
                    logger.warning("the subject server had exited (code %s): restarting", code)
                self._terminate()
            return self._spawn()

    start = ensure_running

    def stop(self) -> None:
        """Stop the subject if it runs; calling it again is harmless."""
        with self._lock:
            self._terminate()

    def _terminate(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def _spawn(self) -> str:
        # Imported here: it reads the settings.
        from visualizer.scenarios.upstream import upstream_url

        mirror = self.mirror
        host, feed_port = mirror.listen()
        generation = mirror.generation
        port = free_port()
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": os.environ.get(
                "DJANGO_SETTINGS_MODULE", "visualizer.settings"
            ),
            ROLE_ENV: "subject",
            FEED_ENV: f"{host}:{feed_port}",
            TOKEN_ENV: self._token,
            # The upstream service stays in this process, in a thread with its own loop:
            # the subject's views, even those that hold the GIL, cannot delay its answers.
            "UPSTREAM_URL": upstream_url(),
        }
        command = [
            sys.executable,
            "-m",
            "visualizer.serve_asgi",
            "-b",
            "127.0.0.1",
            "-p",
            str(port),
        ]
        # It ends when this process does, however this one ends (visualizer/lifeline.py).
        process = spawn(command, cwd=BASE_DIR, env=env)
        self._process, self._port = process, port
        if not self._exit_hook:
            atexit.register(self.stop)
            self._exit_hook = True
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                self._process = None
                raise SubjectUnavailable(
                    f"The scenario server (the subject process) exited at start-up with "
                    f"code {process.returncode}; see the server's log."
                )
            remaining = max(0.1, deadline - time.monotonic())
            if mirror.generation > generation and _answers(url, remaining):
                return url
            mirror.wait_for_sink(generation, 0.1)
        self._terminate()
        raise SubjectUnavailable(
            f"The scenario server (the subject process) did not start within "
            f"{self.startup_timeout:.0f} s."
        )

    def flush(self, timeout: float = 10) -> bool:
        """Wait until the UI's store holds every event the subject has recorded so far."""
        if self._mirror is None or self.url_if_running() is None:
            return False
        return self._mirror.flush(timeout)


def _answers(url: str, timeout: float) -> bool:
    """Whether the server at ``url`` answers within ``timeout`` s: a refused connection
    fails at once, and a server that took it is given the time (its first page can take
    seconds on a busy machine; giving up on it only queues the same request again)."""
    try:
        urllib.request.urlopen(f"{url}/", timeout=timeout).close()
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False
    return True


subject = SubjectProcess()


async def subject_url() -> str:
    """The subject's base URL, started if need be (off the loop: that can take seconds)."""
    url = subject.url_if_running()
    if url is not None:
        return url
    return await asyncio.to_thread(subject.ensure_running)


@dataclass(frozen=True)
class Answer:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


async def pass_on(
    base_url: str,
    method: str,
    target: bytes,
    headers: list[tuple[bytes, bytes]],
    body: bytes = b"",
    timeout: float = 120,
) -> Answer:
    """Send one request to the subject exactly as given (``target``: the raw path and query
    string, not normalised) and return its answer. HTTP/1.0 on a connection of its own:
    the answer ends where the connection does. OSError or TimeoutError if it fails."""
    host, _, port = base_url.removeprefix("http://").rpartition(":")
    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, int(port)), 10)
    try:
        head = [b"%s %s HTTP/1.0" % (method.encode("latin-1"), target)]
        head.append(b"Host: %s:%s" % (host.encode(), port.encode()))
        head.extend(b"%s: %s" % (name, value) for name, value in headers)
        head.append(b"Content-Length: %d" % len(body))
        writer.write(b"\r\n".join(head) + b"\r\n\r\n" + body)
        await writer.drain()
        raw = await asyncio.wait_for(reader.read(), timeout)
    finally:
        writer.close()
    top, separator, content = raw.partition(b"\r\n\r\n")
    lines = top.decode("latin-1").split("\r\n")
    try:
        status = int(lines[0].split()[1])
    except (IndexError, ValueError):
        raise OSError("the subject's answer was not HTTP") from None
    if not separator:
        raise OSError("the subject's answer ended early")
    fields = [line.partition(":") for line in lines[1:]]
    return Answer(status, [(name.strip(), value.strip()) for name, _, value in fields], content)


# -- the subject's side --------------------------------------------------------------------

_feed: StreamSink | None = None


def is_subject() -> bool:
    return bool(settings.ROLE == "subject")


def feed() -> StreamSink | None:
    """The subject's stream to its UI, if it was started by one."""
    return _feed


def connect_feed(store: RecordingStore, tracing: bool) -> StreamSink | None:
    """In a subject started by a UI: connect to the UI's mirror and stream ``store`` to it
    (when tracing). The subject exits when the UI goes away: the stream's end tells it,
    as does its lifeline (visualizer/lifeline.py, watched from asgi.py)."""
    global _feed
    address = os.environ.get(FEED_ENV, "")
    if not address or _feed is not None:
        return _feed
    host, _, port = address.rpartition(":")
    token = os.environ.get(TOKEN_ENV, "")
    sink = StreamSink((host, int(port)), token=token, on_disconnect=_ui_gone).start()
    if tracing:
        sink.attach(store)
    _feed = sink
    return sink


def _ui_gone() -> None:
    logger.warning("the UI process went away: the subject server exits")
    os._exit(0)
