"""Class sessions: starting, joining, following, and who may drive."""

from __future__ import annotations

import copy
import html
import json
import logging
import re

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client

from tests.visualizer.classroom.frames import decode
from tracer.validation import validate_trace
from visualizer.classroom.models import ClassSession
from visualizer.classroom.session import (
    DRIVE_COOKIE,
    FOLLOW_COOKIE,
    followable_url,
    normalize_code,
    start_session,
)
from visualizer.playground.sandbox import LISTEN_ENV
from visualizer.playground.suggestions import suggested_code
from visualizer.routing import websocket_application
from visualizer.scenarios.catalog import SCENARIOS
from visualizer.traces.library import load_examples
from visualizer.traces.models import Trace

EXAMPLE = "/scenarios/async-io/?recording=example-async-io-4-requests"
ORIGIN = (b"origin", b"http://localhost")


@pytest.fixture
def examples(transactional_db):
    load_examples()


def socket(code: str, *, secret: str | None = None, version: int | None = None, origin=ORIGIN):
    headers = [(b"host", b"localhost"), origin]
    if secret:
        headers.append((b"cookie", f"{DRIVE_COOKIE}={code}:{secret}".encode()))
    path = f"/ws/class/{code}/" + (f"?v={version}" if version is not None else "")
    return WebsocketCommunicator(websocket_application(), path, headers=headers)


async def joined(communicator: WebsocketCommunicator) -> WebsocketCommunicator:
    connected, _ = await communicator.connect()
    assert connected
    return communicator


async def next_frame(communicator: WebsocketCommunicator) -> dict:
    """The next frame that is not a follower count (the instructor gets those too)."""
    while True:
        frame = decode(await communicator.receive_from())
        if "followers" not in frame:
            return frame


async def drive(instructor: WebsocketCommunicator, url: str) -> None:
    await instructor.send_to(text_data=json.dumps({"action": "drive", "url": url}))


@pytest.mark.asyncio
async def test_the_instructor_sees_how_many_follow(examples, monkeypatch):
    monkeypatch.setattr("visualizer.classroom.consumers.COUNT_EVERY", 0.05)
    session, secret = await sync_to_async(start_session)(EXAMPLE)
    instructor = await joined(socket(session.code, secret=secret))
    assert decode(await instructor.receive_from()) == {"followers": 0}

    followers = [await joined(socket(session.code, version=session.version)) for _ in range(2)]
    counts = [decode(await instructor.receive_from(timeout=3))["followers"]]
    while counts[-1] != 2:
        counts.append(decode(await instructor.receive_from(timeout=3))["followers"])
    await followers[0].disconnect()
    assert decode(await instructor.receive_from(timeout=3)) == {"followers": 1}
    for communicator in (instructor, followers[1]):
        await communicator.disconnect()


def test_it_accepts_only_pages_a_class_can_follow():
    assert followable_url("/scenarios/async-io/?step=3") == "/scenarios/async-io/?step=3"
    assert followable_url("/lab/") == "/lab/"
    for url, reason in [
        ("https://elsewhere.example/scenarios/async-io/", "path on this site"),
        ("//elsewhere.example/lab/", "path on this site"),
        ("/traces/", "scenario, a trace or the lab"),
        ("/nowhere/", "not a page"),
        ("/lab/?" + "x" * 2000, "at most"),
        (42, "non-empty string"),
    ]:
        with pytest.raises(ValueError, match=reason):
            followable_url(url)


def test_join_codes_are_read_leniently():
    assert normalize_code("abc-234") == "ABC234"
    assert normalize_code(" ab c234 ") == "ABC234"
    assert normalize_code("ABC10O") is None  # 0, 1 and O are never in a code
    assert normalize_code("ABC") is None


@pytest.mark.asyncio
async def test_followers_get_the_instructors_step_and_only_the_instructor_drives(examples, caplog):
    session, secret = await sync_to_async(start_session)(f"{EXAMPLE}&step=1")
    instructor = await joined(socket(session.code, secret=secret))
    follower = await joined(socket(session.code, version=session.version))
    assert await follower.receive_nothing()  # up to date: nothing to send

    await drive(instructor, f"{EXAMPLE}&step=2")
    frame = decode(await follower.receive_from())
    assert frame["version"] == session.version + 1
    assert frame["action"] == "swap"
    assert 'id="player"' in frame["html"] and "<strong>2</strong>" in frame["html"]
    assert await next_frame(instructor) == frame  # rendered once, sent to all

    with caplog.at_level(logging.WARNING, logger="visualizer.classroom.consumers"):
        await drive(follower, f"{EXAMPLE}&step=5")
        refused = decode(await follower.receive_from())
    assert refused == {"status": "Only the instructor can drive this class."}
    assert "refused a drive message" in caplog.text
    stored = await ClassSession.objects.aget(pk=session.pk)
    assert stored.url.endswith("step=2") and stored.version == session.version + 1

    # Another page (here, presenter mode) is loaded rather than swapped.
    await drive(instructor, f"{EXAMPLE}&step=2&presenter=1")
    assert decode(await follower.receive_from())["action"] == "load"
    await drive(instructor, "/lab/")
    assert decode(await follower.receive_from())["action"] == "load"
    for communicator in (instructor, follower):
        await communicator.disconnect()


@pytest.mark.asyncio
async def test_a_follower_who_reconnects_lands_on_the_current_step(examples):
    session, secret = await sync_to_async(start_session)(f"{EXAMPLE}&step=1")
    instructor = await joined(socket(session.code, secret=secret))
    for step in (2, 3, 4):
        await drive(instructor, f"{EXAMPLE}&step={step}")
        await next_frame(instructor)

    # The follower's page showed version 1; it missed three moves while away.
    follower = await joined(socket(session.code, version=session.version))
    frame = decode(await follower.receive_from())
    assert frame["version"] == session.version + 3
    # The page is loaded again at the current step (the server cannot know which page
    # the follower shows, so it does not swap a step into it).
    assert frame["action"] == "load" and frame["url"].endswith("step=4")
    assert await follower.receive_nothing()
    for communicator in (instructor, follower):
        await communicator.disconnect()


@pytest.mark.asyncio
async def test_bad_messages_get_an_error_and_change_nothing(examples):
    session, secret = await sync_to_async(start_session)(EXAMPLE)
    instructor = await joined(socket(session.code, secret=secret))
    wrong_secret = await joined(socket(session.code, secret="guessed", version=session.version))
    cases = [
        ("not json", "must be JSON objects"),
        (json.dumps({"action": "run"}), "Unknown action"),
        (json.dumps({"action": ["drive"]}), "Unknown action"),
        (json.dumps({"action": "drive", "url": ["/lab/"]}), "url must be a non-empty string"),
        (json.dumps({"action": "drive", "url": "/lab/", "extra": 1}), "Unexpected fields"),
        (json.dumps({"action": "drive", "url": "https://evil.example/"}), "path on this site"),
        (json.dumps({"action": "drive", "url": "/class/start/"}), "scenario, a trace or"),
        ("x" * 5000, "at most 4096 bytes"),
    ]
    for message, expected in cases:
        await instructor.send_to(text_data=message)
        answer = await next_frame(instructor)
        assert expected in answer.get("status", ""), (message, answer)
    await drive(wrong_secret, "/lab/")
    assert "Only the instructor" in decode(await wrong_secret.receive_from())["status"]
    assert (await ClassSession.objects.aget(pk=session.pk)).version == session.version
    for communicator in (instructor, wrong_secret):
        await communicator.disconnect()


@pytest.mark.asyncio
async def test_it_refuses_cross_origin_and_unknown_classes(examples):
    session, _ = await sync_to_async(start_session)(EXAMPLE)
    connected, _ = await socket(session.code, origin=(b"origin", b"http://evil.example")).connect()
    assert not connected
    # An unknown class is accepted, then closed with 4404, so the page can stop retrying.
    unknown = socket("NOSUCH")
    connected, _ = await unknown.connect()
    assert connected
    assert decode(await unknown.receive_from()) == {"status": "This class session does not exist."}
    assert await unknown.receive_output() == {"type": "websocket.close", "code": 4404}


def test_the_instructor_starts_shows_the_card_and_ends_the_class(examples):
    instructor = Client(enforce_csrf_checks=False)
    started = instructor.post("/class/start/", {"url": f"{EXAMPLE}&step=3"})
    session = ClassSession.objects.get()
    assert started.status_code == 302 and started["Location"] == f"/class/{session.code}/card/"
    cookie = started.cookies[DRIVE_COOKIE]
    assert cookie["httponly"] and cookie.value.startswith(f"{session.code}:")
    assert session.is_driver(cookie.value.split(":", 1)[1])

    card = instructor.get(started["Location"]).content.decode()
    assert session.code in card and "<svg" in card and f"/class/{session.code}/" in card

    page = instructor.get(EXAMPLE).content.decode()
    assert f'data-class-drive="{session.code}"' in page and "End the class" in page

    student = Client()
    assert student.post(f"/class/{session.code}/end/").status_code == 403
    ended = instructor.post(f"/class/{session.code}/end/")
    assert ended.status_code == 302
    session.refresh_from_db()
    assert not session.live
    assert student.get(f"/class/{session.code}/").status_code == 410


def test_a_student_joins_by_code_and_follows_the_instructors_page(examples):
    session, _ = start_session(f"{EXAMPLE}&step=3")
    student = Client()

    assert student.get("/join/", {"code": session.code.lower()})["Location"] == (
        f"/class/{session.code}/"
    )
    unknown = student.get("/join/", {"code": "<b>nope</b>"})
    assert unknown.status_code == 404
    assert "No class is running" in unknown.content.decode()
    assert "<b>nope" not in unknown.content.decode()

    followed = student.get(f"/class/{session.code}/")
    page = followed.content.decode()
    assert followed.status_code == 200
    assert f'data-class-follow="{session.code}"' in page
    assert f'data-class-version="{session.version}"' in page
    assert "<strong>3</strong>" in page  # the instructor's step
    assert "Explore on my own" in page
    # The class socket drives this page, not the run's.
    assert f'ws-connect="/ws/class/{session.code}/?v={session.version}"' in page
    assert "/ws/scenarios/" not in page
    assert followed.cookies[FOLLOW_COOKIE].value == session.code

    # Exploring on their own, they are offered to follow again.
    exploring = student.get("/lab/").content.decode()
    assert f'href="/class/{session.code}/"' in exploring and "Follow class" in exploring


@pytest.mark.django_db(transaction=True)
def test_a_move_never_overwrites_the_end_or_another_move():
    session, _ = start_session(EXAMPLE)
    stale = ClassSession.objects.get(pk=session.pk)  # read before the others change it

    assert session.move_to(f"{EXAMPLE}&step=2") == EXAMPLE
    assert stale.move_to(f"{EXAMPLE}&step=3") == f"{EXAMPLE}&step=2"  # sees the first move
    assert stale.version == session.version + 1
    assert stale.move_to(f"{EXAMPLE}&step=3") is None  # nothing changed

    session.end()
    assert stale.move_to("/lab/") is None
    stored = ClassSession.objects.get(pk=session.pk)
    assert stored.url.endswith("step=3") and not stored.live


def test_numbers_in_odd_digits_are_not_answers():
    from visualizer.traces.steps import whole_number

    assert whole_number("12") == 12
    assert whole_number("²") is None and whole_number("\u0661") is None and whole_number("") is None
    assert whole_number(None) is None and whole_number("-1") is None


@pytest.mark.asyncio
async def test_a_lab_run_is_not_shown_to_a_class_that_has_ended_or_left_the_lab(examples):
    import asyncio

    from visualizer.classroom.session import mirror_lab_run
    from visualizer.lab.runs import LabProgress, LabRun
    from visualizer.scenarios.catalog import SCENARIOS

    session, _ = await sync_to_async(start_session)("/lab/")
    follower = await joined(socket(session.code, version=session.version))
    never_done = asyncio.create_task(asyncio.sleep(3600))
    progress = LabProgress(LabRun.from_values(SCENARIOS["async-io"], {}), "r", "/lab/?x")
    progress.task = never_done

    mirror = asyncio.create_task(mirror_lab_run(progress, session.code))
    frame = decode(await follower.receive_from())
    assert 'data-mirrored="true"' in frame["progress"]

    await sync_to_async(session.end)()
    await asyncio.wait_for(mirror, timeout=5)  # stops on its own
    never_done.cancel()
    await follower.disconnect()


@pytest.mark.django_db
def test_a_class_can_be_started_from_presenter_mode(client):
    for url in ("/scenarios/async-io/?presenter=1", "/lab/?presenter=1"):
        html = client.get(url).content.decode()
        form = re.search(r'<form class="([^"]*)" method="post" action="/class/start/"', html)
        assert form is not None, url
        assert "not-presenter" not in form[1]


def test_a_follower_sees_the_instructors_edited_run_and_no_run_of_its_own(
    examples, settings, monkeypatch
):
    # The playground runs code here (local mode: no bubblewrap needed to show a page).
    settings.PLAYGROUND = "local"
    monkeypatch.setenv(LISTEN_ENV, "127.0.0.1")
    example = Trace.objects.get(recording_id="example-async-io-4-requests")
    document = copy.deepcopy(dict(example.document()))
    code = suggested_code(SCENARIOS["async-io"], "blocking-client")
    document.update(id="pgfollowed1")
    document["code"] = {"file": "edited_view.py", "view": "async_io", "text": code, "errors": []}
    Trace.store(validate_trace(document), source=Trace.Source.RECORDED)
    url = "/scenarios/async-io/?recording=pgfollowed1&step=2"
    session, _ = start_session(url)

    page = Client().get(f"/class/{session.code}/").content.decode()

    assert "The edited code that ran" in page
    assert html.escape("data = fetch_data_blocking(delay_ms)") in page
    assert "You follow the class: the instructor edits and runs the code" in page
    assert 'id="edit-form"' not in page and "Run the edited code" not in page
    # Its read-only editor shows the code of the page, escaped, for the typing to replace.
    assert '<div id="class-code" class="class-code-view" data-scenario="async-io">' in page
    assert html.escape("data = fetch_data_blocking(delay_ms)") in page.split('id="class-code"')[1]
    assert 'action="/scenarios/async-io/edit/"' not in page
    # The instructor, on the same page, has the editor with that code.
    own = Client().get(url).content.decode()
    assert 'id="edit-form"' in own and "You follow the class" not in own


async def send_code(communicator: WebsocketCommunicator, text: str, scenario="async-io") -> None:
    message = {"action": "code", "scenario": scenario, "text": text}
    await communicator.send_to(text_data=json.dumps(message))


@pytest.mark.asyncio
async def test_followers_see_the_instructors_code_as_it_is_typed_escaped(examples, caplog):
    session, secret = await sync_to_async(start_session)(f"{EXAMPLE}&step=1")
    instructor = await joined(socket(session.code, secret=secret))
    followers = [await joined(socket(session.code, version=session.version)) for _ in range(2)]
    typed = 'async def async_io(request):\n    return "</pre><script>alert(1)</script>"\n'

    await send_code(instructor, typed)

    frames = [decode(await follower.receive_from()) for follower in followers]
    assert frames[0] == frames[1]  # rendered once, sent to all
    shown = frames[0]["code"]
    assert 'data-scenario="async-io" hx-swap-oob="true"' in shown
    assert "<script>" not in shown and "</pre><script>" not in shown
    assert html.escape('return "</pre><script>alert(1)</script>"') in shown
    assert "as they type it (not run yet)" in shown
    # Nothing moved: the class's page and version are as they were.
    await sync_to_async(session.refresh_from_db)()
    assert session.version == 1 and session.url == f"{EXAMPLE}&step=1"

    # A follower's code is refused and reaches no one; it is logged.
    with caplog.at_level(logging.WARNING, logger="visualizer.classroom.consumers"):
        await send_code(followers[0], "import os")
        refused = decode(await followers[0].receive_from())
    assert refused == {"status": "Only the instructor's code is shown to the class."}
    assert "refused code from a follower" in caplog.text
    assert await followers[1].receive_nothing()

    # Too long, not text, or of no scenario: refused, said to the instructor.
    await send_code(instructor, "x" * (64 * 1024 + 1))
    assert "at most 65,536" in (await next_frame(instructor))["status"]
    await send_code(instructor, "pass", scenario="../../etc")
    assert "name a scenario" in (await next_frame(instructor))["status"]
    await instructor.send_to(
        text_data=json.dumps({"action": "code", "scenario": "async-io", "text": ["pass"]})
    )
    assert "must be text" in (await next_frame(instructor))["status"]
    # Only code may be long: another message stays within 4,096 bytes.
    await drive(instructor, f"{EXAMPLE}&step=2&" + "x" * 5000)
    assert "at most 4096 bytes" in (await next_frame(instructor))["status"]
    assert await followers[1].receive_nothing()
    for communicator in (instructor, *followers):
        await communicator.disconnect()


@pytest.mark.asyncio
async def test_a_follower_who_joins_later_sees_the_code_typed_on_the_page_until_it_moves(examples):
    session, secret = await sync_to_async(start_session)(f"{EXAMPLE}&step=1")
    instructor = await joined(socket(session.code, secret=secret))
    typed = 'async def async_io(request):\n    return "<b>typed</b>"\n'
    await send_code(instructor, typed)
    await instructor.receive_nothing()  # sent to followers only: none yet

    def class_code_of_page() -> str:
        page = Client().get(f"/class/{session.code}/").content.decode()
        found = re.search(r'<div id="class-code".*?</div>', page, re.S)
        assert found, "a follower's page has the read-only editor"
        return found[0]

    joined_later = await sync_to_async(class_code_of_page)()
    assert "as they type it (not run yet)" in joined_later
    assert html.escape('return "<b>typed</b>"') in joined_later
    assert "<b>typed</b>" not in joined_later

    # The instructor moves on: the typed code was for the page before.
    await drive(instructor, f"{EXAMPLE}&step=2")
    await next_frame(instructor)
    moved_on = await sync_to_async(class_code_of_page)()
    assert "The code of this page" in moved_on and "typed" not in moved_on.split("</p>", 1)[1]
    await instructor.disconnect()
