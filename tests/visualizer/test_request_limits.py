"""The server refuses a body larger than any page takes before reading it, and sends its
security headers with static files too (a real Daphne server)."""

from __future__ import annotations

import socket

import httpx

from visualizer.middleware import SECURITY_HEADERS


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
