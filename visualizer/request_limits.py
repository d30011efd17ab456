"""Refuse a request body larger than any page accepts before the server reads it.

Daphne reads a whole request body before it calls the application, then hands all of it
over at once: a 142 MB upload took the server to 1.7 GB. Django's own limits come too late
for that, so the server's HTTP request class is told the limit (``install_body_limit``,
called by the ASGI application at start): a body whose Content-Length is over it is
answered 413 at once, and a body sent without one is cut off with a 413 as soon as it grows
past it.
"""

from __future__ import annotations

from typing import Any

from daphne.http_protocol import WebRequest

REFUSAL = b"The request body is larger than this server accepts."


def install_body_limit(max_bytes: int) -> None:
    """Make Daphne refuse bodies over ``max_bytes`` (idempotent; the last limit holds)."""
    if getattr(WebRequest, "body_limit", None) is None:
        _patch(WebRequest)
    WebRequest.body_limit = max_bytes


def _patch(request_class: Any) -> None:
    got_length = request_class.gotLength
    handle_chunk = request_class.handleContentChunk
    process = request_class.process

    def gotLength(self: Any, length: int | None) -> None:
        self.body_seen = 0
        too_long = length is not None and length > self.body_limit
        got_length(self, 0 if too_long else length)
        if too_long:
            _refuse(self)

    def handleContentChunk(self: Any, data: bytes) -> None:
        if getattr(self, "refused", False):
            return
        self.body_seen = getattr(self, "body_seen", 0) + len(data)
        if self.body_seen > self.body_limit:
            _refuse(self)
            return
        handle_chunk(self, data)

    def guarded_process(self: Any) -> Any:
        if getattr(self, "refused", False):
            return None  # answered already; the connection is closing
        return process(self)

    request_class.gotLength = gotLength
    request_class.handleContentChunk = handleContentChunk
    request_class.process = guarded_process


def _refuse(request: Any) -> None:
    request.refused = True
    head = (
        b"HTTP/1.1 413 Payload Too Large\r\nContent-Type: text/plain; charset=utf-8\r\n"
        b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(REFUSAL)
    )
    request.channel.transport.write(head + REFUSAL)
    request.channel.transport.loseConnection()
