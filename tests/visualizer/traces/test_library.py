"""Storing, importing, exporting and managing traces (SQLite here; Postgres below)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from datetime import timedelta

import httpx
import psycopg
import pytest
from django.urls import reverse
from django.utils import timezone

from tests.conftest import record
from tracer.django_integration import recording_header_value
from visualizer.traces.archive import RecordingArchiver
from visualizer.traces.library import (
    EXAMPLES_DIR,
    export,
    import_document,
    import_trace,
    trace_document,
)
from visualizer.traces.models import Trace, TraceEvent, TraceRequest

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def recorded(traced_server) -> dict:
    return record(traced_server, "async-io", requests=2, delay_ms=20)


def as_upload(document: dict) -> bytes:
    return json.dumps(document).encode()


def test_every_run_is_stored_by_the_server_that_recorded_it(traced_server, recorded):
    library = httpx.get(f"{traced_server.base_url}/traces/")
    assert recorded["id"] in library.text
    exported = httpx.get(f"{traced_server.base_url}/traces/{recorded['id']}/export.json")
    assert exported.json()["events"] == recorded["events"]


def test_a_plain_request_to_a_scenario_is_stored_too(traced_server):
    recording = "plain-" + uuid.uuid4().hex[:8]
    response = httpx.get(
        f"{traced_server.base_url}/run/sync-io/?delay_ms=5",
        headers={"X-Trace-Recording": recording_header_value(recording)},
    )
    assert response.status_code == 200
    deadline = time.monotonic() + 10
    while recording not in httpx.get(f"{traced_server.base_url}/traces/").text:
        assert time.monotonic() < deadline, "the run was not stored"
        time.sleep(0.2)


def test_saving_a_grown_recording_again_replaces_it_and_keeps_its_name(recorded):
    first = dict(recorded, events=recorded["events"][:4])
    trace = Trace.store(first, source=Trace.Source.RECORDED)
    trace.name = "Kept"
    trace.save()

    again = Trace.store(recorded, source=Trace.Source.RECORDED)

    assert again.pk == trace.pk
    assert again.name == "Kept"
    assert Trace.objects.get(pk=trace.pk).event_count == len(recorded["events"])
    assert trace_document(recorded["id"])["events"] == recorded["events"]


def test_a_grown_recording_is_saved_by_adding_what_is_new(recorded):
    """A long run is saved many times while it goes on: each save writes its new events
    and its new or changed requests, and leaves the rows already saved as they are."""
    first_request = dict(recorded["requests"][0], finished_ns=None, duration_ns=None)
    first = dict(recorded, events=recorded["events"][:4], requests=[first_request])
    trace = Trace.store(first, source=Trace.Source.RECORDED)
    saved_events = list(TraceEvent.objects.filter(trace=trace).values_list("pk", "seq"))
    saved_request = TraceRequest.objects.get(trace=trace, position=0).pk

    Trace.store(recorded, source=Trace.Source.RECORDED)

    rows = list(TraceEvent.objects.filter(trace=trace).order_by("seq").values_list("pk", "seq"))
    assert rows[:4] == saved_events  # untouched
    assert [seq for _, seq in rows] == [e["seq"] for e in recorded["events"]]
    requests = TraceRequest.objects.filter(trace=trace).order_by("position")
    assert requests[0].pk == saved_request  # updated in place, now finished
    assert [r.data for r in requests] == recorded["requests"]
    document = trace_document(recorded["id"])
    assert document["events"] == recorded["events"]
    assert document["requests"] == recorded["requests"]


def test_a_recording_that_is_not_the_one_saved_replaces_it_whole(recorded):
    Trace.store(recorded, source=Trace.Source.RECORDED)
    other = dict(recorded, recorded_at="2001-01-01T00:00:00+00:00", events=recorded["events"][:3])

    trace = Trace.store(other, source=Trace.Source.RECORDED)

    assert TraceEvent.objects.filter(trace=trace).count() == 3
    assert trace_document(recorded["id"])["events"] == recorded["events"][:3]


def test_it_round_trips_a_recorded_trace(recorded):
    trace = import_trace(as_upload(recorded))

    assert trace.event_count == len(recorded["events"])
    assert trace.scenario_slug == "async-io"
    again = json.loads(export(trace_document(recorded["id"]), "trace"))
    assert again == recorded
    assert list(TraceEvent.objects.filter(trace=trace).values_list("seq", flat=True)) == list(
        range(1, len(recorded["events"]) + 1)
    )


def test_it_stores_nothing_from_a_rejected_upload(client, recorded):
    broken = dict(recorded, events=[dict(recorded["events"][0], seq="one")])
    before = Trace.objects.count()
    for content in (b'{"format": ', as_upload(broken), b"\xff\xfe"):
        upload = _file(content)
        response = client.post(reverse("trace-import"), {"file": upload})
        assert response.status_code == 400
        assert "was not imported" in response.content.decode()
    assert Trace.objects.count() == before


def test_a_second_upload_of_the_same_trace_leads_to_the_stored_one(client, recorded):
    first = client.post(reverse("trace-import"), {"file": _file(as_upload(recorded))})
    assert first.status_code == 302
    second = client.post(reverse("trace-import"), {"file": _file(as_upload(recorded))})
    assert second.status_code == 302
    assert f"/traces/{recorded['id']}/" in second["Location"]
    assert Trace.objects.filter(recording_id=recorded["id"]).count() == 1
    page = client.get(second["Location"], follow=True).content.decode()
    assert f"already held this trace ({recorded['id']})" in page


def test_importing_the_same_trace_again_returns_its_id(recorded):
    first = import_document(as_upload(recorded))
    before = Trace.objects.count()
    again = import_document(as_upload(recorded))

    assert (first.outcome, again.outcome) == ("stored", "already")
    assert again.trace.pk == first.trace.pk
    assert "already in the library" in again.message
    assert Trace.objects.count() == before


def test_a_different_trace_with_a_taken_id_is_stored_under_a_new_id(client, recorded):
    import_document(as_upload(recorded))
    other = dict(recorded, events=recorded["events"][:3])

    upload = client.post(reverse("trace-import"), {"file": _file(as_upload(other))})

    assert upload.status_code == 302
    stored = Trace.objects.get(recording_id__startswith=recorded["id"] + "-")
    assert stored.recording_id.startswith(recorded["id"] + "-")
    assert stored.event_count == 3
    assert Trace.objects.get(recording_id=recorded["id"]).event_count == len(recorded["events"])
    page = client.get(upload["Location"], follow=True).content.decode()
    assert f"so this one was stored as {stored.recording_id}" in page


def test_it_lists_newest_first_filters_renames_and_deletes(client, recorded):
    older = import_trace(as_upload(recorded), name="Older one")
    sync_doc = dict(
        recorded,
        id="other-" + uuid.uuid4().hex[:8],
        scenario={"slug": "sync-io", "title": "Sync view blocking on I/O"},
    )
    newer = import_trace(as_upload(sync_doc), name="Newer one")

    page = client.get(reverse("library")).content.decode()
    assert page.index("Newer one") < page.index("Older one")
    filtered = client.get(reverse("library"), {"scenario": "sync-io"}).content.decode()
    # The filter narrows the table; the compare form above it still offers every trace.
    listed = filtered.split('<table class="library">')[1]
    assert "Newer one" in listed and "Older one" not in listed

    client.post(reverse("trace-rename", args=[older.recording_id]), {"name": "<b>Renamed</b>"})
    page = client.get(reverse("library")).content.decode()
    assert "&lt;b&gt;Renamed&lt;/b&gt;" in page and "<b>Renamed</b>" not in page
    bad = client.post(reverse("trace-rename", args=[older.recording_id]), {"name": "  "})
    assert bad.status_code == 400

    confirm = client.get(reverse("trace-delete", args=[newer.recording_id]))
    assert "Delete the trace" in confirm.content.decode()
    assert Trace.objects.filter(pk=newer.pk).exists()
    client.post(reverse("trace-delete", args=[newer.recording_id]))
    assert not Trace.objects.filter(pk=newer.pk).exists()
    assert not TraceEvent.objects.filter(trace_id=newer.pk).exists()


def test_it_opens_a_stored_trace_in_the_player_at_a_step(client, recorded):
    trace = import_trace(as_upload(recorded))
    response = client.get(reverse("trace-player", args=[trace.recording_id]), {"step": 4})
    assert response.status_code == 302
    page = client.get(response["Location"]).content.decode()
    assert "Step <strong>4</strong> of" in page
    assert "Pauses at line" in page


def test_it_exports_chrome_trace_events(client, recorded):
    trace = import_trace(as_upload(recorded))
    response = client.get(reverse("trace-export-chrome", args=[trace.recording_id]))
    assert response.status_code == 200
    assert "attachment" in response["Content-Disposition"]
    events = json.loads(response.content)["traceEvents"]
    assert any(e["ph"] == "X" and e["name"].startswith("await") for e in events)


def _file(content: bytes):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile("trace.json", content, content_type="application/json")


def manage(*arguments: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", *arguments],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **env},
    )


@pytest.fixture
def postgres_url():
    """A fresh database on the local Postgres server, dropped afterwards."""
    name = f"visualizer_test_{uuid.uuid4().hex[:8]}"
    admin = "postgresql://postgres@127.0.0.1:5432/postgres"
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    yield f"postgres://postgres@127.0.0.1:5432/{name}"
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


def test_it_stores_and_exports_traces_in_postgres(postgres_url, recorded, tmp_path):
    env = {"DATABASE_URL": postgres_url, "DATA_DIR": str(tmp_path)}
    assert manage("migrate", "--noinput", "-v0", env=env).returncode == 0
    path = tmp_path / "trace.json"
    path.write_bytes(as_upload(recorded))

    imported = manage("import_trace", str(path), env=env)
    assert imported.returncode == 0, imported.stderr
    assert imported.stdout.strip() == recorded["id"]
    exported = manage("export_trace", recorded["id"], env=env)
    assert json.loads(exported.stdout) == recorded
    again = manage("import_trace", str(path), env=env)
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == recorded["id"]
    assert "already in the library" in again.stderr
    with psycopg.connect(postgres_url.replace("postgres://", "postgresql://")) as connection:
        (count,) = connection.execute(
            "SELECT count(*) FROM visualizer_traceevent e JOIN visualizer_trace t "
            "ON e.trace_id = t.id WHERE t.recording_id = %s",
            [recorded["id"]],
        ).fetchone()
    assert count == len(recorded["events"])


def test_the_import_command_explains_a_rejection_and_exits_non_zero(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('{"format": "something else", "version": 1}')
    result = manage("import_trace", str(path), env={"DATA_DIR": str(tmp_path)})
    assert result.returncode != 0
    assert "was not imported" in result.stderr


def test_the_bundled_examples_match_the_current_scenario_source():
    """Re-run `manage.py record_examples` when scenario_views.py changes: the player marks
    the examples' lines in the current source."""
    import linecache

    from visualizer.scenarios import scenario_views
    from visualizer.traces.library import EXAMPLES_DIR

    source_file = scenario_views.__file__
    for path in EXAMPLES_DIR.glob("*.json"):
        document = json.loads(path.read_bytes())
        for event in document["events"]:
            if event["kind"] == "await.suspended":
                line = linecache.getline(source_file, event["line"])
                assert "await" in line, (path.name, event["line"], line)
            if event["kind"] == "call.blocking":
                line = linecache.getline(source_file, event["line"])
                assert event["callable"].split(".")[-1] in line, (path.name, event["line"], line)


def test_examples_recorded_again_replace_the_stored_ones():
    from visualizer.traces.library import load_examples

    trace = Trace.objects.get(recording_id="example-async-io-1-request")
    trace.header = {**trace.header, "recorded_at": "2000-01-01T00:00:00+00:00"}
    trace.name = "Renamed by a teacher"
    trace.save()
    TraceEvent.objects.filter(trace=trace).delete()

    load_examples()

    trace.refresh_from_db()
    assert trace.header["recorded_at"] != "2000-01-01T00:00:00+00:00"
    assert trace.name == "Renamed by a teacher"
    bundled = json.loads((EXAMPLES_DIR / "async-io-1-request.json").read_bytes())
    assert TraceEvent.objects.filter(trace=trace).count() == trace.event_count
    assert trace.event_count == len(bundled["events"]) > 0


def _stored(document: dict, source: str, age_days: float = 0, name: str = "") -> Trace:
    trace = Trace.store(dict(document, id=uuid.uuid4().hex[:12]), source=source, name=name)
    if age_days:
        created = timezone.now() - timedelta(days=age_days)
        Trace.objects.filter(pk=trace.pk).update(created_at=created)
    return trace


def test_pruning_keeps_the_newest_recordings_and_every_kept_kind(recorded):
    recordings = [_stored(recorded, Trace.Source.RECORDED, age_days=5 - i) for i in range(5)]
    named = _stored(recorded, Trace.Source.RECORDED, age_days=30)
    named.rename("My run")
    imported = _stored(recorded, Trace.Source.IMPORTED, age_days=30)
    example = _stored(recorded, Trace.Source.EXAMPLE, age_days=30)
    events_before = TraceEvent.objects.count()

    deleted = Trace.prune(keep=2, max_age=timedelta(days=14))

    assert deleted == 3
    left = set(Trace.objects.values_list("pk", flat=True))
    assert {t.pk for t in recordings[-2:]} | {named.pk, imported.pk, example.pk} <= left
    assert not {t.pk for t in recordings[:3]} & left
    assert TraceEvent.objects.count() == events_before - 3 * len(recorded["events"])


def test_pruning_removes_automatic_recordings_older_than_the_limit(recorded):
    old = _stored(recorded, Trace.Source.RECORDED, age_days=3)
    fresh = _stored(recorded, Trace.Source.RECORDED)

    assert Trace.prune(keep=100, max_age=timedelta(days=2)) == 1

    assert not Trace.objects.filter(pk=old.pk).exists()
    assert Trace.objects.filter(pk=fresh.pk).exists()


def test_the_archiver_applies_the_retention_settings(recorded, settings):
    settings.TRACE_KEEP_RECORDINGS = 1
    for _ in range(3):
        _stored(recorded, Trace.Source.RECORDED)

    assert RecordingArchiver().prune_if_due() == 2
    assert Trace.objects.filter(source=Trace.Source.RECORDED).count() == 1
