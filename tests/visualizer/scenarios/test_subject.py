"""The traced views run in a subject process of their own, beside the UI process."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from websockets.sync.client import connect

from tests.conftest import BUSY_MACHINE_MS
from tracer import events
from tracer.django_integration import recording_header_value
from tracer.recorder import RecordingStore
from tracer.sinks import EventMirror, StreamSink
from visualizer.server_process import DaphneServer


@contextmanager
def server_of_its_own() -> Iterator[DaphneServer]:
    with (
        tempfile.TemporaryDirectory(prefix="visualizer-subject-") as data_dir,
        DaphneServer(env={"TRACING_ENABLED": "true", "DATA_DIR": data_dir}) as server,
    ):
        yield server


@pytest.fixture(scope="module")
def own_server() -> Iterator[DaphneServer]:
    """A server of this module's own: a test kills its subject (which comes back)."""
    with server_of_its_own() as server:
        yield server


@pytest.fixture
def server_to_kill() -> Iterator[DaphneServer]:
    """A server for one test, which kills it: whatever runs after needs one that lives."""
    with server_of_its_own() as server:
        yield server


def children(pid: int) -> list[int]:
    """The processes whose parent is ``pid``."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            # The fields after the command (which may hold spaces) start with state, ppid.
            if int(stat.rpartition(")")[2].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def subject_pid(server: DaphneServer) -> int:
    assert server.process is not None
    found = children(server.process.pid)
    assert len(found) == 1, found
    return found[0]


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state != "Z"


def wait_for(condition, timeout: float = 30) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


def test_a_run_from_the_scenario_page_streams_live_and_nothing_else_stalls_it(traced_server):
    url = traced_server.base_url.replace("http://", "ws://") + "/ws/scenarios/async-io/"
    frames: list[tuple[int, str]] = []
    done = threading.Event()
    pages: list[int] = []

    def browse() -> None:
        # Other visitors meanwhile: the UI's own work while the run goes on.
        with httpx.Client(base_url=traced_server.base_url, timeout=60) as client:
            while not done.is_set():
                for page in ("/scenarios/async-io/", "/traces/"):
                    pages.append(client.get(page).status_code)

    visitor = threading.Thread(target=browse)
    with connect(url, origin=traced_server.base_url, open_timeout=10) as socket:
        socket.send(json.dumps({"action": "run", "requests": 4, "delay_ms": 1500}))
        visitor.start()
        try:
            while True:
                frame = socket.recv(timeout=60)
                frames.append((time.monotonic_ns(), str(frame)))
                if "Finished:" in frame or "The run failed" in frame:
                    break
        finally:
            done.set()
            visitor.join()
    assert "Finished: 4 requests" in frames[-1][1], frames[-1][1]
    assert pages and set(pages) == {200}
    recording = re.search(r'data-recording="(live-[0-9a-f]+)"', frames[0][1])[1]
    document = httpx.get(f"{traced_server.base_url}/recordings/{recording}.json").json()

    assert len(document["requests"]) == 4
    assert all(r["status"] == 200 for r in document["requests"])
    # Nothing outside the requests held the loop the views ran on, and no code computed on
    # it. (On a machine loaded by other work the loop's thread can still be off the CPU
    # past the threshold now and then: preempted, or waiting.)
    stalls = [
        e
        for e in document["events"]
        if e["kind"] == "loop.blocked"
        # A busy machine also stretches a quick step of Django's past the threshold
        # (tens of ms); the page's work, when it shared the loop, held it far longer.
        and e["duration_ns"] >= BUSY_MACHINE_MS * 1_000_000
        and (e["request"] is None or e["cause"] not in ("preempted", "waiting"))
    ]
    assert stalls == [], stalls
    # The views ran in another process than the one that served the page.
    assert document["server"]["pid"] != traced_server.process.pid
    # Rows came while the requests were still going on, not after the run.
    rows = [at for at, frame in frames if 'hx-swap-oob="beforeend:#rows"' in frame]
    last_finished = max(r["finished_ns"] for r in document["requests"])
    assert rows and rows[0] < last_finished


def test_a_blocked_subject_leaves_the_ui_answering(traced_server):
    base = traced_server.base_url
    blocking: dict[str, int] = {}

    def block() -> None:
        headers = {"X-Trace-Recording": recording_header_value("blocker")}
        response = httpx.get(f"{base}/run/async-sleep/?delay_ms=3000", headers=headers, timeout=60)
        blocking["status"] = response.status_code
        blocking["done"] = time.monotonic_ns()

    sender = threading.Thread(target=block)
    sender.start()
    try:
        # The subject has taken the request: its loop is asleep in the view now.
        assert wait_for(lambda: httpx.get(f"{base}/recordings/blocker.json").status_code == 200)
        answered = {}
        for page in ("/", "/traces/"):
            response = httpx.get(f"{base}{page}", timeout=60)
            assert response.status_code == 200
            answered[page] = time.monotonic_ns()
    finally:
        sender.join()
    assert blocking["status"] == 200
    assert all(at < blocking["done"] for at in answered.values()), (answered, blocking)
    # The stall was the subject's, and the trace says so.
    document = httpx.get(f"{base}/recordings/blocker.json").json()
    assert any(e["kind"] == "loop.blocked" for e in document["events"])


def test_a_killed_subject_is_started_again_for_the_next_run(own_server):
    before = subject_pid(own_server)
    os.kill(before, signal.SIGKILL)
    assert wait_for(lambda: not alive(before))

    with httpx.Client(base_url=own_server.base_url, timeout=60) as client:
        page = client.get("/scenarios/async-io/")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)[1]
        response = client.post(
            "/scenarios/async-io/run/",
            data={"csrfmiddlewaretoken": token, "requests": "2", "delay_ms": "10"},
            headers={"Referer": str(page.url)},
        )
    assert response.status_code == 302, response.text
    after = subject_pid(own_server)
    assert after != before
    # The README's address works too, through the UI.
    answer = httpx.get(f"{own_server.base_url}/run/async-io/?delay_ms=10", timeout=60)
    assert answer.status_code == 200 and answer.json()["data"]["waited_ms"] == 10


def test_the_subject_exits_when_the_ui_is_killed(server_to_kill):
    pid = subject_pid(server_to_kill)
    assert server_to_kill.process is not None
    server_to_kill.process.kill()
    server_to_kill.process.wait()
    assert wait_for(lambda: not alive(pid))


@contextmanager
def streamed(mirror: EventMirror) -> Iterator[tuple[RecordingStore, StreamSink]]:
    """A store whose recordings a sink streams to ``mirror``, once they are connected."""
    recorded = RecordingStore()
    sink = StreamSink(mirror.listen())
    sink.attach(recorded)
    sink.start()
    try:
        assert mirror.wait_for_sink(0, 10)
        yield recorded, sink
    finally:
        sink.close()


def test_a_mirror_holds_what_the_sink_recorded_after_a_flush():
    mirrored, synced = RecordingStore(), []
    mirror = EventMirror(mirrored, on_sync=lambda recording: synced.append(recording.id))
    with streamed(mirror) as (recorded, sink):
        recording = recorded.get_or_create("run1")
        recording.scenario = {"slug": "async-io"}
        request = recording.new_request("GET", "/run/async-io/", time.monotonic_ns())
        for step in range(50):
            request.emit(events.view_started(request.origin(location=(None, None, step)), step))
        request.status, request.finished_ns = 200, time.monotonic_ns()
        recording.sample_threads(request.finished_ns, 7)

        assert mirror.flush(10)
        assert mirrored.get("run1").document() == recording.document()
        assert sink.sync("run1", 10)
        assert synced == ["run1"]


def test_a_recording_whose_requests_ended_is_sent_again_when_it_grows():
    # The sink stops comparing a recording once all its requests have ended; an event of a
    # request added later must bring the mirror up to date again.
    mirrored = RecordingStore()
    mirror = EventMirror(mirrored)
    with streamed(mirror) as (recorded, _):
        recording = recorded.get_or_create("run1")
        for number in range(2):
            request = recording.new_request("GET", "/run/async-io/", time.monotonic_ns())
            request.ended = False
            request.emit(events.view_started(request.origin(location=(None, None, 1)), 1))
            assert mirror.flush(10)
            # Changed after its last event, then ended: the mirror gets the final figures.
            request.status, request.finished_ns = 200, time.monotonic_ns()
            request.tracer_ns = 1234
            request.end()
            assert mirror.flush(10)
            document = mirrored.get("run1").document()
            assert len(document["requests"]) == number + 1
            assert document == recording.document()


def test_a_mirror_hears_only_a_sink_that_gives_its_token():
    mirror = EventMirror(RecordingStore(), token="right")
    stranger = StreamSink(mirror.listen(), token="wrong").start()
    try:
        assert not mirror.wait_for_sink(0, 2)
        assert not mirror.connected
    finally:
        stranger.close()
    sink = StreamSink(mirror.address, token="right").start()
    try:
        assert mirror.wait_for_sink(0, 10)
    finally:
        sink.close()


def test_both_ends_of_the_stream_send_small_lines_at_once():
    # With Nagle's algorithm on, a batch sent before the last was acknowledged waits for
    # the other side's delayed ACK: tens of ms on every live row of it.
    mirror = EventMirror(RecordingStore())
    with streamed(mirror) as (_, sink):
        for end in (sink._sock, mirror._conn):
            assert end is not None
            assert end.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
