"""The scenario views: real Django views, traced step by step while they serve requests.

Students read this code on the scenario pages exactly as it is here, so it stays short
and plain. The helpers below the views are shown too.
"""

from __future__ import annotations

import asyncio
import json
import threading
import urllib.request
from typing import Any

import httpx
from django.conf import settings
from django.core.exceptions import BadRequest
from django.http import HttpRequest, JsonResponse

from visualizer.upstream import upstream_url

# -- the views -------------------------------------------------------------------------


async def async_io(request: HttpRequest) -> JsonResponse:
    delay_ms = io_delay(request)
    data = await fetch_data(delay_ms)
    return JsonResponse({"data": data})


def sync_io(request: HttpRequest) -> JsonResponse:
    delay_ms = io_delay(request)
    data = fetch_data_blocking(delay_ms)
    return JsonResponse({"data": data})


async def async_cpu(request: HttpRequest) -> JsonResponse:
    limit = cpu_work(request)
    primes = count_primes(limit)
    return JsonResponse({"limit": limit, "primes": primes})


# -- what the views call ---------------------------------------------------------------


async def fetch_data(delay_ms: int) -> Any:
    """Ask the slow upstream service for data; awaiting the answer frees the event loop."""
    response = await upstream_client().get("/data", params={"delay_ms": delay_ms})
    return response.json()


def fetch_data_blocking(delay_ms: int) -> Any:
    """The same request with a blocking client: the calling thread waits for the answer."""
    url = f"{upstream_url()}/data?delay_ms={delay_ms}"
    with urllib.request.urlopen(url, timeout=30) as response:
        return json.load(response)


def count_primes(limit: int) -> int:
    """Pure CPU work: count the primes below ``limit`` by trial division."""
    count = 0
    for number in range(2, limit):
        if all(number % divisor for divisor in range(2, int(number**0.5) + 1)):
            count += 1
    return count


# -- reading the request's parameters (not shown to students) ---------------------------

MAX_DELAY_MS = 10_000
MAX_CPU_WORK = 2_000_000
DEFAULT_CPU_WORK = 100_000

_clients: dict[asyncio.AbstractEventLoop, httpx.AsyncClient] = {}


def upstream_client() -> httpx.AsyncClient:
    """One HTTP client per event loop, reused, so the views measure I/O, not set-up."""
    loop = asyncio.get_running_loop()
    client = _clients.get(loop)
    if client is None:
        # verify=False: the upstream is plain HTTP on loopback, and loading the CA bundle
        # would cost a quarter of a second of CPU on the event loop.
        client = httpx.AsyncClient(
            base_url=upstream_url(),
            timeout=30,
            limits=httpx.Limits(max_connections=None),
            verify=False,
        )
        _clients[loop] = client
    return client


def warm_up_clients() -> None:
    """Pay the HTTP clients' one-time costs (lazy imports, about 0.2 s) at start-up rather
    than inside the first traced request."""

    async def one_request() -> None:
        async with httpx.AsyncClient(base_url=upstream_url(), verify=False) as client:
            await client.get("/data", params={"delay_ms": 0})

    # In a thread of its own: the caller may already be running an event loop.
    worker = threading.Thread(target=asyncio.run, args=(one_request(),), name="warm-up")
    worker.start()
    worker.join()
    fetch_data_blocking(0)


def io_delay(request: HttpRequest) -> int:
    return _int_parameter(request, "delay_ms", settings.SCENARIO_IO_DELAY_MS, MAX_DELAY_MS)


def cpu_work(request: HttpRequest) -> int:
    return _int_parameter(request, "work", DEFAULT_CPU_WORK, MAX_CPU_WORK)


def _int_parameter(request: HttpRequest, name: str, default: int, maximum: int) -> int:
    raw = request.GET.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(f"{name} must be a whole number from 0 to {maximum}") from None
    if not 0 <= value <= maximum:
        raise BadRequest(f"{name} must be a whole number from 0 to {maximum}")
    return value
