"""Requests join a recording only with the signed id the server gave out: a bare id (a
live run's, which every follower's address shows; a stored trace's) starts a new one."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import record
from tracer.django_integration import (
    RECORDING_HEADER,
    _recording_id,
    recording_header_value,
)


def scope_with(value: str) -> dict:
    return {"headers": [(RECORDING_HEADER, value.encode())]}


def test_a_signed_id_names_its_recording():
    assert _recording_id(scope_with(recording_header_value("live-abc123"))) == "live-abc123"


@pytest.mark.parametrize(
    "value",
    [
        "live-abc123",
        "live-abc123:forged-signature",
        recording_header_value("live-abc123").replace("live-abc123", "live-abc124"),
        "",
    ],
)
def test_an_unsigned_or_forged_id_starts_a_recording_of_its_own(value):
    chosen = _recording_id(scope_with(value))
    assert chosen not in ("live-abc123", "live-abc124")
    assert len(chosen) == 16


def test_a_bare_id_cannot_add_to_or_overwrite_a_stored_trace(traced_server):
    base = traced_server.base_url
    example = "example-async-io-4-requests"
    before = httpx.get(f"{base}/traces/{example}/export.json").json()
    run = record(traced_server, "async-io", requests=1, delay_ms=5)  # a recording of its own

    answer = httpx.get(f"{base}/run/async-io/?delay_ms=5", headers={"X-Trace-Recording": example})
    assert answer.status_code == 200
    injected = httpx.get(
        f"{base}/run/async-io/?delay_ms=5", headers={"X-Trace-Recording": run["id"]}
    )
    assert injected.status_code == 200

    assert httpx.get(f"{base}/traces/{example}/export.json").json() == before
    again = httpx.get(f"{base}/recordings/{run['id']}.json").json()
    assert len(again["requests"]) == 1
