"""The scenario views: real Django views, traced step by step while they serve requests.

Students read this code on the scenario pages exactly as it is here, so it stays short
and plain. The helpers below the views are shown too.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import httpx
from django.conf import settings
from django.core.exceptions import BadRequest, SynchronousOnlyOperation
from django.http import HttpRequest, JsonResponse

from visualizer.scenarios.models import Reading
from visualizer.scenarios.upstream import upstream_url

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


async def async_offload(request: HttpRequest) -> JsonResponse:
    limit = cpu_work(request)
    primes = await asyncio.to_thread(count_primes, limit)
    return JsonResponse({"limit": limit, "primes": primes})


async def async_gather(request: HttpRequest) -> JsonResponse:
    delay_ms = io_delay(request)
    first, second, third = await asyncio.gather(
        fetch_data(delay_ms), fetch_data(delay_ms), fetch_data(delay_ms)
    )
    return JsonResponse({"data": [first, second, third]})


async def async_sequential(request: HttpRequest) -> JsonResponse:
    delay_ms = io_delay(request)
    first = await fetch_data(delay_ms)
    second = await fetch_data(delay_ms)
    third = await fetch_data(delay_ms)
    return JsonResponse({"data": [first, second, third]})


async def async_orm_sync(request: HttpRequest) -> JsonResponse:
    try:
        readings = Reading.objects.count()
    except SynchronousOnlyOperation as error:
        problem = f"{type(error).__name__}: {error}"
        return JsonResponse({"error": problem}, status=500)
    return JsonResponse({"readings": readings})


async def async_orm(request: HttpRequest) -> JsonResponse:
    readings = await Reading.objects.acount()
    latest = await Reading.objects.order_by("-id").afirst()
    return JsonResponse({"readings": readings, "latest": latest.value if latest else None})


async def async_file(request: HttpRequest) -> JsonResponse:
    size_kb = file_size(request)
    read = read_file(sample_file(), size_kb)
    return JsonResponse({"bytes": read})


async def async_sleep(request: HttpRequest) -> JsonResponse:
    delay_ms = io_delay(request)
    time.sleep(delay_ms / 1000)
    return JsonResponse({"slept_ms": delay_ms})


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


def read_file(path: Path, size_kb: int) -> int:
    """Read the first ``size_kb`` kilobytes of a file, 64 KB at a time, and return how many
    bytes came in. Each read() blocks the calling thread until the disk has delivered."""
    wanted, got = size_kb * 1024, 0
    with open(path, "rb") as file:
        while got < wanted:
            chunk = file.read(min(64 * 1024, wanted - got))
            if not chunk:
                break
            got += len(chunk)
    return got


def sample_file() -> Path:
    """A file of MAX_FILE_KB random kilobytes to read, made at start-up by
    warm_up_clients() (not shown to students). A file read a moment ago stays in the
    operating system's memory (its page cache), and reading it again would only copy
    memory; so each call first asks the system to forget the file's cached pages, and the
    view's read really waits for the disk, as it would for a file nobody read lately."""
    path = Path(settings.DATA_DIR) / "sample.bin"
    if not path.exists() or path.stat().st_size != MAX_FILE_KB * 1024:
        path.parent.mkdir(parents=True, exist_ok=True)
        # Named by process: several server processes may start at once.
        partial = path.with_suffix(f".{os.getpid()}.part")
        with partial.open("wb") as file:
            file.write(os.urandom(MAX_FILE_KB * 1024))
            # Written to the disk: the system keeps pages it has not written yet.
            file.flush()
            os.fsync(file.fileno())
        partial.replace(path)
    forget_cached_pages(path)
    return path


def forget_cached_pages(path: Path) -> None:
    """Drop the file's pages from the page cache (Linux; elsewhere a no-op, and a tmpfs
    file has no disk to go back to). Not shown to students."""
    advise = getattr(os, "posix_fadvise", None)
    if advise is None:
        return
    descriptor = os.open(path, os.O_RDONLY)
    try:
        advise(descriptor, 0, 0, os.POSIX_FADV_DONTNEED)
    except OSError:
        pass
    finally:
        os.close(descriptor)


# -- reading the request's parameters (not shown to students) ---------------------------

MAX_DELAY_MS = 10_000
MAX_CPU_WORK = 2_000_000
DEFAULT_CPU_WORK = 100_000
MAX_FILE_KB = 64 * 1024
DEFAULT_FILE_KB = 64 * 1024

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
    sample_file()


def io_delay(request: HttpRequest) -> int:
    return _int_parameter(request, "delay_ms", settings.SCENARIO_IO_DELAY_MS, MAX_DELAY_MS)


def cpu_work(request: HttpRequest) -> int:
    return _int_parameter(request, "work", DEFAULT_CPU_WORK, MAX_CPU_WORK)


def file_size(request: HttpRequest) -> int:
    return _int_parameter(request, "size_kb", DEFAULT_FILE_KB, MAX_FILE_KB)


def _int_parameter(request: HttpRequest, name: str, default: int, maximum: int) -> int:
    raw = request.GET.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(f"{name} must be a whole number from 0 to {maximum}.") from None
    if not 0 <= value <= maximum:
        raise BadRequest(f"{name} must be a whole number from 0 to {maximum}.")
    return value
