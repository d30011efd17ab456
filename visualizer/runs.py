"""Record a run: send real concurrent requests to a scenario's view and fetch the trace."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx

from tracer.django_integration import RECORDING_HEADER
from visualizer.scenarios import Scenario


class RunFailed(Exception):
    """A request of the run did not succeed; the message says which and why."""


async def record_run(
    base_url: str,
    scenario: Scenario,
    *,
    requests: int = 1,
    params: dict[str, int] | None = None,
    timeout: float = 120,
) -> dict[str, Any]:
    """Send ``requests`` concurrent GETs to the scenario's real view on the server at
    ``base_url``, all in one recording, and return that recording's trace document."""
    recording_id = uuid.uuid4().hex[:16]
    headers = {RECORDING_HEADER.decode(): recording_id}
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=None)
    async with httpx.AsyncClient(base_url=base_url, timeout=timeout, limits=limits) as client:
        responses = await asyncio.gather(
            *(
                client.get(scenario.run_url, params=params or {}, headers=headers)
                for _ in range(requests)
            )
        )
        for response in responses:
            if response.status_code != 200:
                raise RunFailed(
                    f"{scenario.run_url} answered {response.status_code}: {response.text[:300]}"
                )
        document = await client.get(f"/recordings/{recording_id}.json")
        document.raise_for_status()
        result: dict[str, Any] = document.json()
        return result
