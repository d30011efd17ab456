"""A stored trace's status: recording, complete or interrupted, and what the pages say."""

from __future__ import annotations

import asyncio
import importlib
import json
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
from django.apps import apps

from tests.fixtures import VERSION_1_EXAMPLES
from tracer.recorder import RecordingStore
from visualizer import lifeline
from visualizer.scenarios.catalog import SCENARIOS
from visualizer.traces import run_state
from visualizer.traces.archive import RecordingArchiver
from visualizer.traces.models import Trace
from visualizer.traces.pages import snapshot_of

pytestmark = pytest.mark.django_db

EXAMPLES = VERSION_1_EXAMPLES
SCENARIO = SCENARIOS["async-io"]


def example(recording_id: str) -> dict[str, Any]:
    document = json.loads((EXAMPLES / "async-io-4-requests.json").read_bytes())
    return {**document, "id": recording_id}


def cut_off(document: dict[str, Any]) -> dict[str, Any]:
    """The document as stored mid-run: its last request not finished."""
    requests = [dict(r) for r in document["requests"]]
    requests[-1].update(finished_ns=None, duration_ns=None)
    return {**document, "requests": requests}


@pytest.fixture
def ended_process() -> str:
    """The identity of a process that has ended."""
    process = subprocess.Popen(["sleep", "30"])
    identity = lifeline.identity(process.pid)
    process.kill()
    process.wait()
    return identity


def stored_by(recording_id: str, recorder: str, document: dict[str, Any] | None = None) -> Trace:
    trace = Trace.store(
        document or cut_off(example(recording_id)),
        source=Trace.Source.RECORDED,
        status=Trace.Status.RECORDING,
    )
    Trace.objects.filter(pk=trace.pk).update(recorder=recorder)
    trace.refresh_from_db()
    return trace


@pytest.fixture(autouse=True)
def no_open_runs() -> Iterator[None]:
    run_state.OPEN.clear()
    yield
    run_state.OPEN.clear()


# -- what a save says ----------------------------------------------------------------------


def test_a_recording_is_recording_until_its_requests_have_finished():
    growing = Trace.store(cut_off(example("grow")), source=Trace.Source.RECORDED)
    assert growing.status == Trace.Status.RECORDING
    assert growing.recorder == lifeline.identity()

    done = Trace.store(example("grow"), source=Trace.Source.RECORDED)

    assert done.pk == growing.pk and done.status == Trace.Status.COMPLETE


def test_an_imported_trace_or_an_example_is_complete_as_it_came():
    for source in (Trace.Source.IMPORTED, Trace.Source.EXAMPLE):
        trace = Trace.store(cut_off(example(f"came-{source}")), source=source)
        assert trace.status == Trace.Status.COMPLETE


def test_a_trace_still_recording_whose_recorder_has_ended_counts_as_interrupted(ended_process):
    mine = stored_by("mine", lifeline.identity())
    theirs = stored_by("theirs", ended_process)
    rebooted = stored_by("rebooted", lifeline.identity().replace(lifeline._boot_id(), "old"))
    elsewhere = stored_by("elsewhere", "another-host:boot:1:2")

    assert mine.current_status == Trace.Status.RECORDING
    assert theirs.current_status == Trace.Status.INTERRUPTED
    assert rebooted.current_status == Trace.Status.INTERRUPTED
    # A process on another machine (a shared Postgres) cannot be checked from here.
    assert elsewhere.current_status == Trace.Status.RECORDING


def test_pruning_leaves_a_run_going_on_alone(settings):
    going_on = stored_by("going-on", lifeline.identity())
    done = Trace.store(example("done"), source=Trace.Source.RECORDED)

    from datetime import timedelta

    assert Trace.prune(keep=0, max_age=timedelta(days=1)) == 1
    assert Trace.objects.filter(pk=going_on.pk).exists()
    assert not Trace.objects.filter(pk=done.pk).exists()


def test_the_archiver_keeps_a_run_going_on_recording_between_its_requests():
    store = RecordingStore()
    recording = store.get_or_create("between")
    request = recording.new_request("GET", "/run/async-io/", 1)
    request.finished_ns = 2  # its one request so far is done; more are coming
    archiver = RecordingArchiver()

    run_state.OPEN.add("between")
    assert archiver.save_now(recording).status == Trace.Status.RECORDING
    run_state.OPEN.discard("between")
    assert archiver.save_now(recording).status == Trace.Status.COMPLETE


def test_a_process_recording_parts_of_runs_stores_them_as_recording(settings):
    settings.TRACE_PARTIAL_RUNS = True
    store = RecordingStore()
    recording = store.get_or_create("part")
    recording.new_request("GET", "/run/sync-io/", 1).finished_ns = 2

    assert RecordingArchiver().save_now(recording).status == Trace.Status.RECORDING


# -- a run from start to end ---------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_run_is_stored_at_once_and_marked_complete_at_its_end():
    seen: dict[str, Any] = {}

    async def run() -> None:
        async with run_state.tracked_run("whole", SCENARIO):
            trace = await asyncio.to_thread(Trace.objects.get, recording_id="whole")
            seen["during"] = (trace.status, trace.request_count, run_state.held_open("whole"))
            await asyncio.to_thread(Trace.store, example("whole"), source=Trace.Source.RECORDED)

    asyncio.run(run())

    assert seen["during"] == (Trace.Status.RECORDING, 0, True)
    trace = Trace.objects.get(recording_id="whole")
    assert trace.status == Trace.Status.COMPLETE and not run_state.held_open("whole")
    # Named as what it holds now, not as the empty trace stored at its start.
    assert trace.name == "Async view awaiting I/O, 4 requests"


ENDINGS = [RuntimeError("the subject went away"), asyncio.CancelledError()]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("ending", ENDINGS, ids=["failed", "cancelled"])
def test_a_run_that_fails_or_is_cancelled_midway_is_interrupted(ending):
    async def run() -> None:
        async with run_state.tracked_run("broken", SCENARIO):
            partial = cut_off(example("broken"))
            await asyncio.to_thread(Trace.store, partial, source=Trace.Source.RECORDED)
            raise ending

    with pytest.raises(type(ending)):
        asyncio.run(run())

    assert Trace.objects.get(recording_id="broken").status == Trace.Status.INTERRUPTED
    assert not run_state.held_open("broken")


@pytest.mark.django_db(transaction=True)
def test_a_run_that_fails_before_recording_anything_leaves_nothing():
    async def run() -> None:
        async with run_state.tracked_run("nothing", SCENARIO):
            raise RuntimeError("the subject did not start")

    with pytest.raises(RuntimeError):
        asyncio.run(run())

    assert not Trace.objects.filter(recording_id="nothing").exists()


def test_without_tracing_a_run_stores_nothing(monkeypatch):
    # (The tracer's settings are read once per process.)
    monkeypatch.setattr(run_state, "get_config", lambda: {"ENABLED": False})
    run_state.open_run("untraced", SCENARIO)
    assert not Trace.objects.filter(recording_id="untraced").exists()


def test_a_run_already_stored_is_not_emptied_by_opening_it_again():
    Trace.store(cut_off(example("again")), source=Trace.Source.RECORDED)
    run_state.open_run("again", SCENARIO)
    assert Trace.objects.get(recording_id="again").request_count == 4


# -- start-up ------------------------------------------------------------------------------


def parts(recording_id: str) -> list[dict[str, Any]]:
    """Two workers' parts of one run, as lab.py's WSGI runs store them."""
    document = cut_off(example(recording_id))
    halves = (document["requests"][:2], document["requests"][2:])
    found = []
    for pid, requests in zip((101, 102), halves, strict=True):
        ids = {r["id"] for r in requests}
        events = [e for e in document["events"] if e["request"] in ids]
        found.append({**document, "id": f"{recording_id}-w{pid}", "requests": requests,
                      "events": events})  # fmt: skip
    return found


def test_start_up_marks_the_dead_servers_runs_interrupted_and_merges_their_parts(ended_process):
    stored_by("live-cut", ended_process)
    run_state.open_run("lab-cut", SCENARIO)  # the lab's empty trace, then its parts
    Trace.objects.filter(recording_id="lab-cut").update(recorder=ended_process)
    for part in parts("lab-cut"):
        stored_by(part["id"], ended_process, part)
    stored_by("stray-w7", ended_process, cut_off(example("stray-w7")))
    going_on = stored_by("going-on", lifeline.identity())
    finished = Trace.store(example("finished"), source=Trace.Source.RECORDED)

    recovered = run_state.recover()

    recorded = Trace.objects.filter(source=Trace.Source.RECORDED)
    statuses = dict(recorded.values_list("recording_id", "status"))
    assert statuses == {
        "live-cut": "interrupted",
        "lab-cut": "interrupted",
        "stray-w7": "interrupted",  # a part of no stored run stays, interrupted
        "going-on": "recording",  # its recorder still runs
        "finished": "complete",
    }
    lab = Trace.objects.get(recording_id="lab-cut")
    assert lab.request_count == 4 and lab.header["server"]["processes"] == 2
    assert sorted(recovered.interrupted) == ["lab-cut", "live-cut", "stray-w7"]
    assert recovered.message() == "At start-up: marked 3 traces of runs it cut off as interrupted."
    assert going_on.pk and finished.pk
    assert run_state.recover().message() == ""  # nothing left to do


def test_the_migration_marks_recordings_stored_mid_run_before_it_as_interrupted():
    migration = importlib.import_module("visualizer.traces.migrations.0007_trace_status")
    cut = Trace.store(cut_off(example("old-cut")), source=Trace.Source.RECORDED)
    whole = Trace.store(example("old-whole"), source=Trace.Source.RECORDED)
    imported = Trace.store(cut_off(example("old-import")), source=Trace.Source.IMPORTED)
    Trace.objects.update(status=Trace.Status.COMPLETE)  # as the field's default set them

    migration.mark_cut_off_recordings(apps, None)

    ours = Trace.objects.exclude(source=Trace.Source.EXAMPLE)
    statuses = dict(ours.values_list("recording_id", "status"))
    assert statuses == {
        cut.recording_id: "interrupted",
        whole.recording_id: "complete",
        imported.recording_id: "complete",
    }


# -- what the pages say --------------------------------------------------------------------


def test_the_library_and_the_player_say_a_run_was_interrupted(client, ended_process):
    stored_by("cut", ended_process)
    stored_by("going", lifeline.identity())
    Trace.store(example("whole"), source=Trace.Source.RECORDED)

    library = client.get("/traces/").content.decode()
    player = client.get("/traces/cut/", follow=True).content.decode()
    whole = client.get("/traces/whole/", follow=True).content.decode()

    def row(recording_id: str) -> str:
        start = library.index(f'<tr id="trace-{recording_id}">')
        return library[start : library.index("</tr>", start)]

    assert "Interrupted" in row("cut")
    assert "Recording now" in row("going") and "Interrupted" not in row("going")
    assert "Interrupted" not in row("whole") and "Recording now" not in row("whole")
    assert run_state.INTERRUPTED_TEXT in player
    assert run_state.INTERRUPTED_TEXT not in whole


def test_the_library_leaves_out_the_parts_of_a_lab_run_going_on(client):
    run_state.open_run("lab-run", SCENARIO)
    for part in parts("lab-run"):
        stored_by(part["id"], lifeline.identity(), part)

    library = client.get("/traces/").content.decode()

    assert 'id="trace-lab-run"' in library and "lab-run-w101" not in library


def test_a_live_page_reconnecting_to_a_cut_off_run_hears_it_ended(ended_process):
    stored_by("cut", ended_process)
    Trace.store(example("whole"), source=Trace.Source.RECORDED)

    cut = snapshot_of(SCENARIO, "cut")
    whole = snapshot_of(SCENARIO, "whole")

    assert cut is not None and run_state.INTERRUPTED_TEXT in cut
    assert 'id="run-status"' in cut and 'data-running="false"' in cut
    assert whole is not None and 'id="run-status"' not in whole


HTMX = {"HTTP_HX_REQUEST": "true"}


def poll(client: Any, recording_id: str, **headers: str) -> Any:
    return client.get(f"/lab/runs/{recording_id}/?recording={recording_id}", **headers)


def test_the_lab_page_of_a_run_cut_off_says_so_and_stops_polling(client, ended_process):
    stored_by("cut", ended_process)

    polled = poll(client, "cut", **HTMX)
    page = poll(client, "cut")

    text = polled.content.decode()
    assert polled.status_code == 200 and "HX-Redirect" not in polled.headers
    assert "This run was interrupted" in text and "hx-trigger" not in text
    assert "4 requests" in text and 'href="/traces/cut/"' in text
    assert page.status_code == 200 and "This run was interrupted" in page.content.decode()


def test_the_lab_page_follows_a_run_another_live_process_records(client):
    stored_by("theirs", lifeline.identity())

    polled = poll(client, "theirs", **HTMX).content.decode()

    assert "another server process" in polled and 'hx-trigger="every 500ms"' in polled


def test_the_lab_page_of_a_run_gone_from_the_library_says_so(client):
    polled = poll(client, "deleted", **HTMX).content.decode()
    page = poll(client, "deleted")

    assert "no longer on this server" in polled and "hx-trigger" not in polled
    assert page.status_code == 404


def test_the_lab_results_of_a_cut_off_run_say_they_are_partial(client, ended_process):
    stored_by("cut", ended_process)
    results = client.get("/lab/?recording=cut").content.decode()
    assert "was interrupted" in results and "only the requests recorded until then" in results
