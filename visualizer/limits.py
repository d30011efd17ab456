"""Bounds on the work anonymous visitors can start: runs at once per client and in all,
and how often a client may import. Each limit is a setting (see settings.py); a visitor who
reaches one is told which, in a sentence, and nothing is started.

The counts are per server process, which is what each limit protects (its threads, its
gunicorn children, its subject server).
"""

from __future__ import annotations

import functools
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings


class LimitReached(Exception):
    """A limit was reached; the message says which and what to do."""


@dataclass
class ConcurrencyLimit:
    """At most ``per_client`` things at once for one client, ``total`` for everyone."""

    what: str  # e.g. "lab runs", for the messages
    per_client: int
    total: int
    _running: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @contextmanager
    def hold(self, client: str) -> Iterator[None]:
        """Hold one place for ``client`` while the block runs; LimitReached if there is
        none."""
        self.acquire(client)
        try:
            yield
        finally:
            self.release(client)

    def acquire(self, client: str) -> None:
        with self._lock:
            if sum(self._running.values()) >= self.total:
                raise LimitReached(
                    f"The server is running as many {self.what} as it allows "
                    f"({self.total}); try again when one has finished."
                )
            if self._running.get(client, 0) >= self.per_client:
                raise LimitReached(
                    f"You already have as many {self.what} going on as one visitor may "
                    f"({self.per_client}); try again when one has finished."
                )
            self._running[client] = self._running.get(client, 0) + 1

    def release(self, client: str) -> None:
        with self._lock:
            left = self._running.get(client, 0) - 1
            if left > 0:
                self._running[client] = left
            else:
                self._running.pop(client, None)

    @property
    def running(self) -> int:
        with self._lock:
            return sum(self._running.values())


@dataclass
class RateLimit:
    """At most ``count`` things per client in any ``seconds``-long window."""

    what: str
    count: int
    seconds: float
    _times: dict[str, deque[float]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def check(self, client: str, now: float | None = None) -> None:
        """Count one for ``client``, or raise LimitReached if its window is full."""
        now = time.monotonic() if now is None else now
        with self._lock:
            times = self._times.setdefault(client, deque())
            while times and times[0] <= now - self.seconds:
                times.popleft()
            if len(times) >= self.count:
                wait = max(1, round(times[0] + self.seconds - now))
                raise LimitReached(
                    f"At most {self.count} {self.what} every {self.seconds:.0f} s from one "
                    f"visitor; try again in {wait} s."
                )
            times.append(now)


def client_of(scope: Mapping[str, Any]) -> str:
    """Who a connection comes from, for the limits: the peer's address (the proxy's own,
    unless the server was told to trust proxy headers)."""
    client = scope.get("client") or ("unknown", 0)
    return str(client[0])


def client_of_request(request: Any) -> str:
    """client_of for a Django request (under ASGI, its scope; else REMOTE_ADDR)."""
    scope = getattr(request, "scope", None)
    if isinstance(scope, Mapping):
        return client_of(scope)
    return str(request.META.get("REMOTE_ADDR") or "unknown")


@dataclass(frozen=True)
class Limits:
    """The limits this server process applies, from the settings."""

    lab_runs: ConcurrencyLimit
    wsgi_runs: ConcurrencyLimit  # lab runs on a gunicorn server started for them
    live_runs: ConcurrencyLimit  # runs started from a scenario page
    imports: RateLimit
    run_cpu_work: int  # requests x work of one run, at most
    # Requests sent straight to a scenario's address (/run/<slug>/) from outside; the
    # app's own runs go to the subject process directly and are not counted here.
    view_requests: ConcurrencyLimit
    imports_at_once: ConcurrencyLimit  # uploads being checked and stored

    def check_work(self, requests: int, params: Mapping[str, int]) -> None:
        """A run's CPU work in all (its requests times the work of each) within the
        limit; LimitReached says by how much it is over."""
        work = params.get("work")
        if work is not None and requests * work > self.run_cpu_work:
            raise LimitReached(
                f"{requests} requests of work {work} make {requests * work:,} in all; one run "
                f"may ask for at most {self.run_cpu_work:,}. Ask for fewer requests or less "
                "work each."
            )


def take_lab_run(client: str, wsgi: bool) -> Callable[[], None]:
    """Take the places a lab run needs (and a WSGI server's, for a WSGI run); return the
    function that gives them back. LimitReached if there are none, taking nothing."""
    lab, servers = limits().lab_runs, limits().wsgi_runs
    lab.acquire(client)
    if wsgi:
        try:
            servers.acquire(client)
        except LimitReached:
            lab.release(client)
            raise

    def give_back() -> None:
        lab.release(client)
        if wsgi:
            servers.release(client)

    return give_back


@functools.cache
def limits() -> Limits:
    return Limits(
        lab_runs=ConcurrencyLimit(
            "lab runs", settings.LIMIT_LAB_RUNS_PER_CLIENT, settings.LIMIT_LAB_RUNS
        ),
        wsgi_runs=ConcurrencyLimit(
            "WSGI lab runs", settings.LIMIT_WSGI_RUNS, settings.LIMIT_WSGI_RUNS
        ),
        live_runs=ConcurrencyLimit(
            "runs from a scenario page",
            settings.LIMIT_LIVE_RUNS_PER_CLIENT,
            settings.LIMIT_LIVE_RUNS,
        ),
        imports=RateLimit("imports", settings.LIMIT_IMPORTS_PER_MINUTE, 60),
        run_cpu_work=settings.LIMIT_RUN_CPU_WORK,
        view_requests=ConcurrencyLimit(
            "requests to the scenario views (/run/)",
            settings.LIMIT_VIEW_REQUESTS_PER_CLIENT,
            settings.LIMIT_VIEW_REQUESTS,
        ),
        imports_at_once=ConcurrencyLimit("imports", 1, settings.LIMIT_IMPORTS_AT_ONCE),
    )
