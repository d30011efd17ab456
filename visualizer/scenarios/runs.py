"""Record a run: send real concurrent requests to a scenario's view and fetch the trace."""

from __future__ import annotations

import asyncio
import functools
import ssl
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from tracer.django_integration import CLIENT_REF_HEADER, RECORDING_HEADER, recording_header_value
from tracer.events import TraceDocument
from visualizer.scenarios.catalog import Scenario
from visualizer.scenarios.forms import RunForm
from visualizer.scenarios.subject import SubjectUnavailable, subject_url


class RunFailed(Exception):
    """A request of the run did not succeed; the message says which and why."""


@dataclass(frozen=True)
class RunRequest:
    """What a visitor asked to run, checked: how many requests and the view's parameters."""

    requests: int
    params: dict[str, int] = field(default_factory=dict)

    @classmethod
    def from_values(cls, scenario: Scenario, values: Mapping[str, Any]) -> RunRequest:
        """Read and check the values of a run form (visualizer/scenarios/forms.py);
        ValueError says what is wrong."""
        return cls(*RunForm(scenario, values).checked())


async def subject_base_url() -> str:
    """Where this process sends its runs: its subject server (visualizer/scenarios/subject.py),
    which runs the traced views and streams their events back to this process."""
    try:
        return await subject_url()
    except SubjectUnavailable as error:
        raise RunFailed(str(error)) from None


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """One TLS context for every run's HTTP clients. httpx makes a new one for each client
    it is not given one, loading the CA bundle: tens of ms of CPU on the event loop that
    streams the run's live rows (its rows waited that long)."""
    return httpx.create_ssl_context()


def _run_client(base_url: str, timeout: float, **options: Any) -> httpx.AsyncClient:
    """An HTTP client for a run's requests, cheap to make."""
    return httpx.AsyncClient(base_url=base_url, timeout=timeout, verify=_tls_context(), **options)


def new_recording_id(prefix: str = "") -> str:
    return f"{prefix}{uuid.uuid4().hex[:16]}"


ClientTimings = dict[str, tuple[int, int]]


async def record_run(
    base_url: str,
    scenario: Scenario,
    *,
    requests: int = 1,
    params: dict[str, int] | None = None,
    recording_id: str | None = None,
    timeout: float = 120,
    progress: ClientTimings | None = None,
) -> TraceDocument:
    """Send ``requests`` concurrent GETs to the scenario's real view on the server at
    ``base_url``, all in one recording, and return that recording's trace document."""
    recording_id = recording_id or new_recording_id()
    timings = await send_requests(
        base_url,
        scenario,
        recording_id,
        requests=requests,
        params=params,
        timeout=timeout,
        progress=progress,
    )
    async with _run_client(base_url, timeout) as client:
        try:
            document = await client.get(f"/recordings/{recording_id}.json")
            document.raise_for_status()
        except httpx.HTTPError as error:
            raise RunFailed(f"the trace of the run could not be fetched: {error}") from None
        result: TraceDocument = document.json()
    return with_client_timings(result, timings)


async def send_requests(
    base_url: str,
    scenario: Scenario,
    recording_id: str,
    *,
    requests: int,
    params: dict[str, int] | None = None,
    timeout: float = 120,
    progress: ClientTimings | None = None,
) -> ClientTimings:
    """Send the run's requests at once; return when each left and its answer was in.
    ``progress``, if given, shows the run as it goes: each request as it leaves (answer
    time 0), then with its answer time."""
    sent: ClientTimings = {} if progress is None else progress
    signed = recording_header_value(recording_id)

    async def send(client: httpx.AsyncClient, ref: str) -> httpx.Response:
        headers = {RECORDING_HEADER.decode(): signed, CLIENT_REF_HEADER.decode(): ref}
        started = time.monotonic_ns()
        sent[ref] = (started, 0)
        response = await client.get(scenario.run_url, params=params or {}, headers=headers)
        sent[ref] = (started, time.monotonic_ns())
        return response

    limits = httpx.Limits(max_connections=None, max_keepalive_connections=None)
    async with _run_client(base_url, timeout, limits=limits) as client:
        try:
            responses = await asyncio.gather(*(send(client, f"c{i}") for i in range(requests)))
        except httpx.HTTPError as error:
            raise RunFailed(f"{scenario.run_url} could not be reached: {error}") from None
    for response in responses:
        # A client error means the run was asked for wrongly; a server error is what the
        # view did, and the trace shows it.
        if 400 <= response.status_code < 500:
            raise RunFailed(
                f"{scenario.run_url} answered {response.status_code}: {response.text[:300]}"
            )
    return sent


def with_client_timings(document: TraceDocument, timings: ClientTimings) -> TraceDocument:
    """Add the client's view of each request: the same machine's monotonic clock as the
    server's, so it fits on the trace's timeline (including any time a request waited
    before the server took it)."""
    for request in document["requests"]:
        ref = request.get("client_ref")
        if ref is not None and ref in timings:
            request["client_sent_ns"], request["client_done_ns"] = timings[ref]
    return document
