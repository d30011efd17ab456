"""manage.py trace: real Daphne, real requests, text or JSON out."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from django.core.management import CommandError, call_command

from tracer.events import FORMAT, FORMAT_VERSION, KINDS


def run_trace(*arguments: str, data_dir: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", "trace", *arguments],
        capture_output=True,
        text=True,
        timeout=120,
        env={**__import__("os").environ, "DATA_DIR": data_dir},
    )


def test_it_prints_only_the_trace_document_with_json(server_data_dir):
    result = run_trace(
        "async-io", "--requests", "2", "--delay-ms", "50", "--json", data_dir=server_data_dir
    )

    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["format"] == FORMAT
    assert document["version"] == FORMAT_VERSION
    assert len(document["requests"]) == 2
    assert {e["kind"] for e in document["events"]} <= set(KINDS)
    assert all(r["status"] == 200 for r in document["requests"])


def test_it_prints_the_execution_table_and_variable_tracker(server_data_dir):
    result = run_trace("sync-io", "--delay-ms", "20", data_dir=server_data_dir)

    assert result.returncode == 0, result.stderr
    assert "Execution table (sync-io, 1 request)" in result.stdout
    assert "Handed from MainThread to worker thread" in result.stdout
    assert "Variable tracker (r1: /run/sync-io/?delay_ms=20)" in result.stdout
    assert "'waited_ms': 20" in result.stdout


def test_it_lists_the_scenarios_and_exits_2_for_an_unknown_one(server_data_dir):
    result = run_trace("no-such-scenario", data_dir=server_data_dir)

    assert result.returncode == 2
    assert "async-io, sync-io, async-cpu" in result.stderr


@pytest.mark.parametrize(
    "arguments",
    [["--requests", "0"], ["--requests", "201"], ["--delay-ms", "-1"], ["--work", "99999999"]],
)
def test_it_rejects_out_of_range_options(arguments):
    with pytest.raises(CommandError) as error:
        call_command("trace", "async-io", *arguments)
    assert error.value.returncode == 2
