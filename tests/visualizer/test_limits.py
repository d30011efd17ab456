"""The limits on what one visitor, and everyone together, can start."""

from __future__ import annotations

import threading

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.files.uploadhandler import FileUploadHandler

from visualizer.limits import ConcurrencyLimit, LimitReached, RateLimit, client_of


def test_a_client_gets_its_share_and_no_more():
    limit = ConcurrencyLimit("lab runs", per_client=1, total=3)
    limit.acquire("a")

    with pytest.raises(
        LimitReached, match=r"You already have as many lab runs going on as one visitor may \(1\)"
    ):
        limit.acquire("a")
    limit.acquire("b")
    assert limit.running == 2


def test_everyone_together_gets_the_total_and_no_more():
    limit = ConcurrencyLimit("lab runs", per_client=2, total=2)
    limit.acquire("a")
    limit.acquire("b")

    with pytest.raises(LimitReached, match="as many lab runs as it allows"):
        limit.acquire("c")


def test_a_place_is_given_back_when_the_work_ends_even_if_it_failed():
    limit = ConcurrencyLimit("lab runs", per_client=1, total=1)
    with pytest.raises(RuntimeError), limit.hold("a"):
        raise RuntimeError("the run failed")

    with limit.hold("a"):
        assert limit.running == 1
    assert limit.running == 0


def test_concurrent_acquires_never_exceed_the_total():
    limit = ConcurrencyLimit("runs", per_client=100, total=5)
    granted = []

    def try_one(index: int) -> None:
        try:
            limit.acquire(f"client-{index % 7}")
            granted.append(index)
        except LimitReached:
            pass

    threads = [threading.Thread(target=try_one, args=(i,)) for i in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(granted) == 5 == limit.running


def test_a_rate_limit_counts_a_window_per_client():
    limit = RateLimit("imports", count=2, seconds=60)
    limit.check("a", now=0)
    limit.check("a", now=10)

    with pytest.raises(LimitReached, match=r"At most 2 imports every 60 s.*in 50 s"):
        limit.check("a", now=10)
    limit.check("b", now=10)
    limit.check("a", now=61)


def test_the_client_is_the_peer_address():
    assert client_of({"client": ("203.0.113.9", 5555)}) == "203.0.113.9"
    assert client_of({}) == "unknown"


# -- the limits as the pages apply them ------------------------------------------------


@pytest.fixture
def fresh_limits(settings):
    from visualizer.limits import limits

    settings.LIMIT_LAB_RUNS_PER_CLIENT, settings.LIMIT_LAB_RUNS = 1, 3
    settings.LIMIT_LIVE_RUNS_PER_CLIENT, settings.LIMIT_LIVE_RUNS = 2, 8
    limits.cache_clear()
    yield settings
    limits.cache_clear()


@pytest.mark.django_db
def test_a_second_lab_run_of_one_visitor_is_refused_with_the_reason(fresh_limits, client):
    from visualizer.limits import limits

    limits().lab_runs.acquire("127.0.0.1")  # this visitor's run going on
    form = {"scenario": "async-io", "requests": "2", "delay_ms": "10"}

    answer = client.post("/lab/run/", form)

    assert answer.status_code == 429
    assert (
        "You already have as many lab runs going on as one visitor may (1)"
        in answer.content.decode()
    )
    assert limits().lab_runs.running == 1


@pytest.mark.django_db
def test_a_lab_run_asking_for_too_much_cpu_work_is_refused(fresh_limits, client):
    form = {"scenario": "async-cpu", "requests": "200", "work": "100000"}

    answer = client.post("/lab/run/", form)

    assert answer.status_code == 429
    assert "make 20,000,000 in all" in answer.content.decode()


@pytest.mark.django_db
def test_imports_past_the_rate_are_refused_and_store_nothing(fresh_limits, client):
    from visualizer.traces.models import Trace

    fresh_limits.LIMIT_IMPORTS_PER_MINUTE = 2
    before = Trace.objects.count()
    answers = [
        client.post("/traces/import/", {"file": SimpleUploadedFile("t.json", b"{}")})
        for _ in range(3)
    ]

    assert [a.status_code for a in answers] == [400, 400, 429]
    assert "At most 2 imports every 60 s" in answers[2].content.decode()
    assert Trace.objects.count() == before


class UploadSpy(FileUploadHandler):
    """An upload handler that notes each time Django starts parsing an upload."""

    parsed: list[int] = []

    def handle_raw_input(self, input_data, META, content_length, boundary, encoding=None):
        UploadSpy.parsed.append(content_length)

    def receive_data_chunk(self, raw_data, start):
        return raw_data

    def file_complete(self, file_size):
        return None


@pytest.fixture
def upload_spy(fresh_limits):
    UploadSpy.parsed = []
    fresh_limits.FILE_UPLOAD_HANDLERS = [
        "tests.visualizer.test_limits.UploadSpy",
        *fresh_limits.FILE_UPLOAD_HANDLERS,
    ]
    return UploadSpy.parsed


def a_trace_file(size: int) -> SimpleUploadedFile:
    return SimpleUploadedFile("t.json", b" " * size, content_type="application/json")


@pytest.mark.django_db
def test_an_upload_over_the_size_is_refused_by_its_length_before_it_is_read(
    fresh_limits, upload_spy, client
):
    fresh_limits.TRACE_IMPORT_MAX_BYTES, fresh_limits.UPLOAD_MAX_BYTES = 1000, 1500

    answer = client.post("/traces/import/", {"file": a_trace_file(2000)})

    assert answer.status_code == 413
    assert "a trace file may have at most 1000 bytes" in answer.content.decode()
    assert upload_spy == []


@pytest.mark.django_db
def test_an_import_past_the_rate_is_refused_before_the_upload_is_read(
    fresh_limits, upload_spy, client
):
    fresh_limits.LIMIT_IMPORTS_PER_MINUTE = 1
    client.post("/traces/import/", {"file": a_trace_file(10)})
    assert len(upload_spy) == 1

    answer = client.post("/traces/import/", {"file": a_trace_file(10)})

    assert answer.status_code == 429
    assert len(upload_spy) == 1


@pytest.mark.django_db
def test_an_upload_of_more_than_one_file_is_refused_with_the_bound_it_passed(fresh_limits, client):
    from visualizer.traces.models import Trace

    before = Trace.objects.count()
    answer = client.post("/traces/import/", {"file": [a_trace_file(10), a_trace_file(10)]})

    assert answer.status_code == 400
    assert "DATA_UPLOAD_MAX_NUMBER_FILES" in answer.content.decode()
    assert Trace.objects.count() == before


@pytest.mark.django_db
def test_imports_at_once_are_limited_in_all(fresh_limits, upload_spy, client):
    from visualizer.limits import limits

    fresh_limits.LIMIT_IMPORTS_AT_ONCE = 2
    limits.cache_clear()
    for visitor in ("198.51.100.1", "198.51.100.2"):  # their imports going on
        limits().imports_at_once.acquire(visitor)

    answer = client.post("/traces/import/", {"file": a_trace_file(10)})

    assert answer.status_code == 429
    assert "as many imports as it allows (2)" in answer.content.decode()
    assert upload_spy == []


@pytest.mark.asyncio
@pytest.mark.django_db
async def test_a_direct_request_past_the_visitors_limit_is_refused_before_the_subject_is_asked(
    fresh_limits, async_client, monkeypatch
):
    from visualizer.limits import limits
    from visualizer.scenarios import views

    async def no_subject() -> str:
        raise AssertionError("the subject was asked")

    monkeypatch.setattr(views, "subject_base_url", no_subject)
    fresh_limits.LIMIT_VIEW_REQUESTS_PER_CLIENT = 1
    limits.cache_clear()
    limits().view_requests.acquire("127.0.0.1")  # this visitor's request in flight

    answer = await async_client.get("/run/async-cpu/?work=2000000")

    assert answer.status_code == 429
    said = answer.content.decode()
    assert said.startswith("Not run: You already have as many requests to the scenario views")
    assert limits().view_requests.running == 1


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_a_live_run_past_the_visitors_limit_gets_an_error_frame(fresh_limits):
    import json

    from channels.testing import WebsocketCommunicator

    from visualizer.limits import limits
    from visualizer.routing import websocket_application

    headers = [(b"host", b"localhost"), (b"origin", b"http://localhost")]
    socket = WebsocketCommunicator(websocket_application(), "/ws/scenarios/async-io/", headers)
    socket.scope["client"] = ("198.51.100.7", 4000)
    assert (await socket.connect())[0]
    await socket.receive_nothing()
    for _ in range(2):
        limits().live_runs.acquire("198.51.100.7")

    await socket.send_to(text_data=json.dumps({"action": "run", "requests": 1}))

    frame = await socket.receive_from()
    assert (
        "You already have as many runs from a scenario page going on as one visitor may (2)"
        in frame
    )
    assert limits().live_runs.running == 2
    await socket.disconnect()
