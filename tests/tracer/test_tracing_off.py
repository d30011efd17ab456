"""With TRACING_ENABLED=false the scenario views run untouched and nothing is recorded."""

from __future__ import annotations

import httpx

from tracer.django_integration import RECORDING_HEADER, recording_header_value
from visualizer.server_process import DaphneServer


def test_it_records_nothing_when_tracing_is_off(server_data_dir):
    env = {"TRACING_ENABLED": "false", "DATA_DIR": server_data_dir}
    with DaphneServer(env=env) as server, httpx.Client(base_url=server.base_url) as client:
        response = client.get(
            "/run/async-io/?delay_ms=10",
            headers={RECORDING_HEADER.decode(): recording_header_value("off-run")},
        )
        recording = client.get("/recordings/off-run.json")

    assert response.status_code == 200
    assert response.json()["data"]["waited_ms"] == 10
    assert recording.status_code == 404
