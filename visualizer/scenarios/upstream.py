"""A slow upstream service on loopback: the real network I/O the scenario views wait for.

It runs its own event loop in a daemon thread, so a stalled application loop cannot delay
it, and answers ``GET /data?delay_ms=N`` with a small JSON document after N milliseconds.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
from urllib.parse import parse_qs, urlsplit

from django.conf import settings

MAX_DELAY_MS = 10_000


class UpstreamService:
    """The service on a loopback port of its own, in a thread with its own event loop."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._url: str | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopped: asyncio.Event | None = None
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._url is not None

    def start(self) -> str:
        """Start it (idempotent); its base URL."""
        with self._lock:
            if self._url is None:
                self._url = self._start_in_thread()
            return self._url

    def stop(self) -> None:
        """Stop it and its thread (idempotent)."""
        with self._lock:
            loop, stopped, thread = self._loop, self._stopped, self._thread
            self._url = self._loop = self._stopped = self._thread = None
        if loop is not None and stopped is not None:
            loop.call_soon_threadsafe(stopped.set)
        if thread is not None:
            thread.join(5)

    def _start_in_thread(self) -> str:
        ready = threading.Event()
        address: list[str] = []

        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            self._stopped = asyncio.Event()
            server = await asyncio.start_server(_handle, "127.0.0.1", 0, backlog=1024)
            host, port = server.sockets[0].getsockname()[:2]
            address.append(f"http://{host}:{port}")
            ready.set()
            async with server:
                await self._stopped.wait()

        self._thread = threading.Thread(
            target=asyncio.run, args=(main(),), name="upstream-service", daemon=True
        )
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("the upstream service did not start")
        return address[0]


upstream = UpstreamService()
_readings = itertools.count(1)


def upstream_url() -> str:
    """The upstream's base URL: UPSTREAM_URL if set, else this process's own service
    (started now if need be)."""
    if settings.UPSTREAM_URL:
        return settings.UPSTREAM_URL.rstrip("/")
    return upstream.start()


async def _handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            status, body = await _answer(head)
            writer.write(
                b"HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n"
                b"Content-Length: %d\r\n\r\n%s"
                % (status, b"OK" if status == 200 else b"Bad Request", len(body), body)
            )
            await writer.drain()
            if status != 200 or b"connection: close" in head.lower():
                break
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
        pass
    finally:
        writer.close()


async def _answer(head: bytes) -> tuple[int, bytes]:
    try:
        method, target, _ = head.split(b"\r\n", 1)[0].decode("latin-1").split(" ", 2)
        parts = urlsplit(target)
        delay_ms = int(parse_qs(parts.query).get("delay_ms", ["0"])[0])
    except ValueError:
        return 400, b'{"error": "expected GET /data?delay_ms=N"}'
    if method != "GET" or parts.path != "/data" or not 0 <= delay_ms <= MAX_DELAY_MS:
        return 400, b'{"error": "expected GET /data?delay_ms=N with N from 0 to 10000"}'
    await asyncio.sleep(delay_ms / 1000)
    return 200, json.dumps({"reading": next(_readings), "waited_ms": delay_ms}).encode()
