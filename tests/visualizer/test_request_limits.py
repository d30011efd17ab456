"""The server refuses a body larger than any page takes before reading it, limits the
requests sent straight to the scenario views, and sends its security headers with static
files too (a real Daphne server)."""

from __future__ import annotations

import re
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import httpx
import pytest

from tracer.django_integration import recording_header_value
from visualizer.middleware import SECURITY_HEADERS
from visualizer.server_process import DaphneServer

# Long enough that the checks made while it is in flight are done well before it ends,
# however busy the machine.
HOLD_MS = 10_000


def raw_exchange(server, head: bytes, body_chunks: list[bytes] = ()) -> bytes:
    """Send a request by hand; return what the server answered before closing."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=15) as connection:
        connection.sendall(head)
        try:
            for chunk in body_chunks:
                connection.sendall(chunk)
        except OSError:
            pass  # the server closed the connection: what it said is read below
        answer = b""
        while True:
            try:
                data = connection.recv(65536)
            except OSError:
                break
            if not data:
                break
            answer += data
    return answer


def test_a_body_announced_too_large_is_refused_before_it_is_sent(traced_server):
    head = (
        b"POST /traces/import/ HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: multipart/form-data; boundary=x\r\nContent-Length: 200000000\r\n\r\n"
    )
    answer = raw_exchange(traced_server, head)

    assert answer.startswith(b"HTTP/1.1 413 ")
    assert b"larger than this server accepts" in answer


def test_a_chunked_body_is_cut_off_once_it_grows_too_large(traced_server):
    head = (
        b"POST /traces/import/ HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: multipart/form-data; boundary=x\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    megabyte = b"%x\r\n%s\r\n" % (1024 * 1024, b"x" * 1024 * 1024)
    answer = raw_exchange(traced_server, head, [megabyte] * 40)

    assert answer.startswith(b"HTTP/1.1 413 ")


def test_static_files_carry_the_security_headers(traced_server):
    response = httpx.get(f"{traced_server.base_url}/static/visualizer/app.css")

    assert response.status_code == 200
    for header, value in SECURITY_HEADERS.items():
        assert response.headers[header] == value
    # Django's pages carry them once, not twice.
    page = httpx.get(f"{traced_server.base_url}/")
    assert page.headers.get_list("Content-Security-Policy") == [
        SECURITY_HEADERS["Content-Security-Policy"]
    ]


# -- requests sent straight to a scenario's address ----------------------------------------


@pytest.fixture(scope="module")
def limited_server() -> Iterator[DaphneServer]:
    """A server allowing one /run/ request at once per visitor and two in all."""
    with tempfile.TemporaryDirectory(prefix="visualizer-limits-") as data_dir:
        env = {
            "DATA_DIR": data_dir,
            "LIMIT_VIEW_REQUESTS_PER_CLIENT": "1",
            "LIMIT_VIEW_REQUESTS": "2",
        }
        with DaphneServer(env=env) as server:
            yield server


def get(server: DaphneServer, address: str, path: str) -> httpx.Response:
    """A GET from the loopback address ``address``: each is another visitor to the server."""
    transport = httpx.HTTPTransport(local_address=address)
    with httpx.Client(base_url=server.base_url, transport=transport, timeout=120) as client:
        return client.get(path)


def wait_for(condition, timeout: float = 60) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


def subject_has(server: DaphneServer, recording: str) -> bool:
    """The subject has begun the request of ``recording``: its place was taken before."""
    return httpx.get(f"{server.base_url}/recordings/{recording}.json").status_code == 200


@contextmanager
def holding(server: DaphneServer, address: str, recording: str) -> Iterator[Callable[[], bool]]:
    """A slow request from ``address`` in flight from the start of the block; yields a
    function that tells whether it still is. At the end it must have answered 200."""
    answer: dict[str, int] = {}

    def send() -> None:
        transport = httpx.HTTPTransport(local_address=address)
        with httpx.Client(base_url=server.base_url, transport=transport, timeout=120) as client:
            headers = {"X-Trace-Recording": recording_header_value(recording)}
            response = client.get(f"/run/async-io/?delay_ms={HOLD_MS}", headers=headers)
        answer["status"] = response.status_code

    sender = threading.Thread(target=send)
    sender.start()
    try:
        assert wait_for(lambda: subject_has(server, recording))
        yield lambda: "status" not in answer
    finally:
        sender.join()
    assert answer["status"] == 200


def test_direct_requests_to_a_view_are_limited_per_visitor_and_in_all(limited_server):
    with holding(limited_server, "127.0.0.1", "hold-first") as first_in_flight:
        mine = get(limited_server, "127.0.0.1", "/run/async-io/?delay_ms=0")
        with holding(limited_server, "127.0.0.2", "hold-second") as second_in_flight:
            third = get(limited_server, "127.0.0.3", "/run/async-io/?delay_ms=0")
            assert first_in_flight() and second_in_flight(), "the checks came too late to tell"

    assert mine.status_code == 429
    said = "You already have as many requests to the scenario views (/run/) going on as one"
    assert f"{said} visitor may (1)" in mine.text
    assert "try again when one has finished" in mine.text
    # The second visitor had a place of its own; a third found none left in all.
    assert third.status_code == 429
    assert "as many requests to the scenario views (/run/) as it allows (2)" in third.text
    # Both answered: their places are free again.
    assert get(limited_server, "127.0.0.1", "/run/async-io/?delay_ms=0").status_code == 200


def test_a_visitor_who_hangs_up_keeps_the_place_until_the_view_has_answered(limited_server):
    recording = "hung-up"
    signed = recording_header_value(recording)
    address = ("127.0.0.1", limited_server.port)
    with socket.create_connection(address, source_address=("127.0.0.4", 0)) as connection:
        sent_at = time.monotonic()
        connection.sendall(
            f"GET /run/async-io/?delay_ms={HOLD_MS} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"X-Trace-Recording: {signed}\r\n\r\n".encode()
        )
        assert wait_for(lambda: subject_has(limited_server, recording))
    # Gone; the view goes on in the subject, and its place stays taken until it answers.
    again = get(limited_server, "127.0.0.4", "/run/async-io/?delay_ms=0")

    assert time.monotonic() - sent_at < HOLD_MS / 1000, "the checks came too late to tell"
    assert again.status_code == 429, again.text
    assert wait_for(
        lambda: get(limited_server, "127.0.0.4", "/run/async-io/?delay_ms=0").status_code == 200
    )


def test_the_pages_own_runs_are_not_counted_as_direct_requests(limited_server):
    """The scenario page's run and the lab's send their concurrent requests to the subject
    process itself, not through the limited /run/ addresses."""
    with httpx.Client(base_url=limited_server.base_url, timeout=120) as client:
        for page, action, form in (
            ("/scenarios/async-io/", "/scenarios/async-io/run/", {"requests": "4"}),
            ("/lab/", "/lab/run/", {"scenario": "async-io", "requests": "8"}),
        ):
            shown = client.get(page)
            token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', shown.text)[1]
            answer = client.post(
                action,
                data={"csrfmiddlewaretoken": token, "delay_ms": "50", **form},
                headers={"Referer": str(shown.url)},
            )
            assert answer.status_code == 302, answer.text
            recording = re.search(r"recording=([\w-]+)", answer.headers["location"])[1]
            document = client.get(f"/recordings/{recording}.json").json()
            assert [r["status"] for r in document["requests"]] == [200] * int(form["requests"])
