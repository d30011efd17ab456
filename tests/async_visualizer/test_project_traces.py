"""The test project (tests/project, package ``shop``) traced end to end under Daphne: its own
function, class-based, async class-based and decorated views, and django-ninja's async API
endpoints, each asserted by the awaits, hand-offs and stalls its trace records."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tracer.django_integration import recording_header_value
from tracer.validation import validate_trace
from visualizer.server_process import TEST_PROJECT_DIR, ProjectServer

STAFF_SESSION = """
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
from django.contrib.sessions.backends.db import SessionStore
user = get_user_model().objects.create_user({name!r}, password="unused", is_staff={staff})
session = SessionStore()
session[SESSION_KEY] = str(user.pk)
session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
session[HASH_SESSION_KEY] = user.get_session_auth_hash()
session.create()
print(session.session_key)
"""


def session_of(server: ProjectServer, name: str, *, staff: bool) -> str:
    """A signed-in session of a new user of the project, made in its database."""
    done = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", STAFF_SESSION.format(name=name, staff=staff)],
        cwd=TEST_PROJECT_DIR,
        env=server.env,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def shop() -> Iterator[tuple[ProjectServer, str]]:
    with ProjectServer() as server:
        yield server, session_of(server, "staff", staff=True)


def record(
    shop: tuple[ProjectServer, str], path: str, requests: int = 1, post: Any = None
) -> dict[str, Any]:
    """Send ``requests`` concurrent requests to ``path``, recorded together; return the
    trace document the staff page exports."""
    server, session = shop
    recording_id = uuid.uuid4().hex[:16]
    headers = {"X-Trace-Recording": recording_header_value(recording_id)}

    async def send_all() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as client:
            return list(
                await asyncio.gather(
                    *(
                        client.get(path, headers=headers)
                        if post is None
                        else client.post(path, headers=headers, json=post)
                        for _ in range(requests)
                    )
                )
            )

    for response in asyncio.run(send_all()):
        assert response.status_code == 200, response.text
    exported = httpx.get(
        f"{server.base_url}/__visualizer__/{recording_id}/trace.json",
        cookies={"sessionid": session},
        timeout=30,
    )
    assert exported.status_code == 200
    document: dict[str, Any] = validate_trace(exported.json())  # type: ignore[assignment]
    assert len(document["requests"]) == requests
    return document


def of_kind(document: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [event for event in document["events"] if event["kind"] == kind]


def test_it_records_the_async_class_based_views_awaits_and_orm_handoffs(shop: Any) -> None:
    document = record(shop, "/orders/async/", requests=2)
    (checked, _) = of_kind(document, "view.type_checked")
    assert checked["view"] == "shop.views.AsyncOrderView"
    assert checked["is_async"] and checked["runs_on"] == "event_loop"
    awaited = [event["awaiting"] for event in of_kind(document, "await.suspended")]
    assert awaited.count("asyncio.sleep(0.05)") == 2
    assert awaited.count("sync_to_async(orders_as_list)()") == 2
    assert awaited.count("Order.objects.acount()") == 2
    assert len(of_kind(document, "await.resumed")) == 6
    # The handler suspends and resumes: it does not return a coroutine at once.
    returned = of_kind(document, "view.returned")
    assert [event["returned"] for event in returned] == ["<JsonResponse status=200>"] * 2
    assert all(event["function"] == "get" for event in returned)
    hops = of_kind(document, "thread.hop")
    assert {hop["purpose"] for hop in hops} >= {"database", "other"}
    assert not of_kind(document, "thread.handoff")  # the handler runs on the loop


def test_it_records_the_sync_class_based_view_handed_to_a_worker_thread(shop: Any) -> None:
    document = record(shop, "/orders/")
    (checked,) = of_kind(document, "view.type_checked")
    assert checked["view"] == "shop.views.OrderListView"
    assert not checked["is_async"] and checked["runs_on"] == "worker_thread"
    (handoff,) = of_kind(document, "thread.handoff")
    (started,) = of_kind(document, "view.started")
    assert started["function"] == "get" and started["thread"] == handoff["to_thread"]
    assert started["thread"] != "MainThread"
    assert [event["returned"] for event in of_kind(document, "view.returned")] == [
        "<TemplateResponse status=200>"
    ]


def test_it_finds_the_stall_in_a_helper_of_a_decorated_async_view(shop: Any) -> None:
    document = record(shop, "/orders/sleepy/")
    (checked,) = of_kind(document, "view.type_checked")
    assert checked["view"] == "shop.views.sleepy_orders"
    assert checked["is_async"] and checked["function"] == "sleepy_orders"
    # A busy machine can add short stalls of its own (the OS taking the core): the view's
    # is the one time.sleep caused.
    (stall,) = [e for e in of_kind(document, "loop.blocked") if e["culprit"] == "time.sleep"]
    assert stall["duration_ns"] >= 100_000_000
    blocking = {
        event["function"]: event
        for event in of_kind(document, "call.blocking")
        if event["callable"] in ("time.sleep", "pause_the_loop")
    }
    # The helper's own call (DEPTH 1) and the view's call of the helper.
    assert blocking["pause_the_loop"]["callable"] == "time.sleep"
    assert blocking["sleepy_orders"]["callable"] == "pause_the_loop"
    assert all(event["on_event_loop"] for event in blocking.values())


def test_it_traces_the_django_ninja_async_endpoint(shop: Any) -> None:
    document = record(shop, "/api/orders", requests=3)
    assert {event["view"] for event in of_kind(document, "view.type_checked")} == {
        "shop.api.list_orders"
    }
    awaited = [event["awaiting"] for event in of_kind(document, "await.suspended")]
    assert awaited.count("slow_lookup(0.02)") == 3
    # The helper's own await is the view's: reported once, by the view's frame.
    suspended = of_kind(document, "await.suspended")
    assert not [event for event in suspended if event["function"] == "slow_lookup"]
    assert any(hop["purpose"] == "database" for hop in of_kind(document, "thread.hop"))


def test_it_names_the_django_ninja_operation_of_the_requests_method(shop: Any) -> None:
    document = record(shop, "/api/orders", post={"customer": "<b>new</b>", "total_cents": 7})
    (checked,) = of_kind(document, "view.type_checked")
    assert checked["view"] == "shop.api.create_order"
    assert checked["function"] == "create_order"
    assert [event["awaiting"] for event in of_kind(document, "await.suspended")] == [
        "Order.objects.acreate(**payload.model_dump())"
    ]


def test_it_traces_a_view_behind_djangos_decorator(shop: Any) -> None:
    document = record(shop, "/orders/total/")
    (checked,) = of_kind(document, "view.type_checked")
    assert checked["view"] == "shop.views.order_total"
    assert of_kind(document, "view.started")[0]["function"] == "order_total"


def test_it_answers_as_it_would_untraced(shop: Any) -> None:
    server, _ = shop
    response = httpx.get(f"{server.base_url}/orders/sleepy/", timeout=30)
    assert response.text == "slept"
    assert response.headers["X-Timed"] == "1" and response.headers["X-Shop"] == "1"
    orders = httpx.get(f"{server.base_url}/api/orders", timeout=30).json()
    assert orders[0] == {"customer": "customer 1", "total_cents": 100}


def test_it_shows_the_recordings_to_staff_only(shop: Any) -> None:
    server, staff = shop
    record(shop, "/orders/async/")
    anonymous = httpx.get(f"{server.base_url}/__visualizer__/", timeout=30)
    assert anonymous.status_code == 302 and "login" in anonymous.headers["location"]
    visitor = session_of(server, "visitor", staff=False)
    refused = httpx.get(
        f"{server.base_url}/__visualizer__/", cookies={"sessionid": visitor}, timeout=30
    )
    assert refused.status_code == 403
    page = httpx.get(f"{server.base_url}/__visualizer__/", cookies={"sessionid": staff}, timeout=30)
    assert page.status_code == 200 and "shop.views.AsyncOrderView" in page.text


def test_it_shows_a_recordings_table_and_breakdown(shop: Any) -> None:
    server, staff = shop
    document = record(shop, "/orders/async/")
    page = httpx.get(
        f"{server.base_url}/__visualizer__/{document['id']}/",
        cookies={"sessionid": staff},
        timeout=30,
    )
    assert page.status_code == 200
    assert "Pauses at line" in page.text and "Where the time went" in page.text
    # Rendered from the trace, escaped.
    assert "&lt;JsonResponse status=200&gt;" in page.text


def test_trace_url_prints_the_table_and_exports(shop: Any, tmp_path: Any) -> None:
    server, _ = shop
    export = tmp_path / "trace.json"
    done = subprocess.run(
        [
            sys.executable, "manage.py", "trace_url", "/orders/async/",
            "--requests", "3", "--export", str(export),
        ],
        cwd=TEST_PROJECT_DIR,
        env=server.env,
        capture_output=True,
        text=True,
        timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "Execution table" in done.stdout and "Where the time went" in done.stdout
    assert re.search(r"Pauses at line \d+: await asyncio.sleep\(0.05\)", done.stdout)
    document = validate_trace(json.loads(export.read_text()))
    assert len(document["requests"]) == 3


def test_trace_url_refuses_a_bad_request_count(shop: Any) -> None:
    server, _ = shop
    done = subprocess.run(
        [sys.executable, "manage.py", "trace_url", "/orders/", "--requests", "0"],
        cwd=TEST_PROJECT_DIR,
        env=server.env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert "--requests must be from 1 to 200" in done.stderr


@pytest.mark.django_db
def test_a_project_trace_opens_in_the_player(shop: Any, client: Any) -> None:
    from visualizer.traces.library import import_trace

    document = record(shop, "/orders/sleepy/")
    trace = import_trace(json.dumps(document).encode())
    page = client.get(f"/traces/{trace.recording_id}/?step={len(document['events'])}")
    assert page.status_code == 200
    text = page.content.decode()
    # The player's pieces: the picture, the key moments, where the time went.
    assert "The whole recording in time" in text
    assert "pause_the_loop blocks the event loop for" in text
    assert "The event loop stalls for" in text
    assert "Where the time went" in text


def test_it_traces_views_named_by_the_decorator(shop: Any) -> None:
    document = record(shop, "/ping/")
    (checked,) = of_kind(document, "view.type_checked")
    assert checked["view"] == "shop.extra.ping"
    assert [event["awaiting"] for event in of_kind(document, "await.suspended")] == [
        "wait_a_little()"
    ]
    receipt = record(shop, "/receipt/")
    assert of_kind(receipt, "view.type_checked")[0]["view"] == "shop.extra.Receipt"
    assert of_kind(receipt, "view.started")[0]["function"] == "get"


def recording_page(shop: Any, recording_id: str, query: str = "") -> httpx.Response:
    server, staff = shop
    return httpx.get(
        f"{server.base_url}/__visualizer__/{recording_id}/{query}",
        cookies={"sessionid": staff},
        timeout=30,
    )


def picture_text(page: str) -> list[str]:
    """The picture's sentences (what a screen reader reads of it)."""
    (listed,) = re.findall(r"<ul[^>]*data-picture-text>(.*?)</ul>", page, re.S)
    return re.findall(r"<li>(.*?)</li>", listed, re.S)


def test_it_shows_the_picture_time_strip_and_key_moments_of_a_recording(shop: Any) -> None:
    document = record(shop, "/orders/sleepy/")
    stall = of_kind(document, "loop.blocked")[0]
    page = recording_page(shop, document["id"], f"?step={stall['seq']}")
    assert page.status_code == 200
    text = page.text
    assert 'id="picture"' in text and "The server at this step" in text
    assert any("The event loop: r1 holds it" in said for said in picture_text(text))
    assert "The whole recording in time" in text and "data-strip-step=" in text
    assert "The event loop stalls for" in text
    assert "pause_the_loop blocks the event loop for" in text
    # Each key moment links to its step on this page; the current step is marked.
    assert f'href="/__visualizer__/{document["id"]}/?step={stall["seq"]}"' in text
    assert f'<tr id="step-{stall["seq"]}" aria-current="step">' in text


def test_its_steps_move_the_picture(shop: Any) -> None:
    document = record(shop, "/orders/async/")
    last = len(document["events"])
    first = recording_page(shop, document["id"])
    end = recording_page(shop, document["id"], f"?step={last}")
    assert first.status_code == end.status_code == 200
    assert picture_text(first.text) != picture_text(end.text)
    assert "1 request answered so far." in picture_text(end.text)
    assert "answered so far" not in " ".join(picture_text(first.text))
    assert "?step=2" in first.text and 'rel="prev"' not in first.text
    assert f'?step={last - 1}" rel="prev"' in end.text and 'rel="next"' not in end.text


@pytest.mark.parametrize("step", ["0", "-1", "x", "9999", "1.5", "٣", "9" * 5000])
def test_it_refuses_a_step_that_is_not_in_the_recording(shop: Any, step: str) -> None:
    document = record(shop, "/orders/total/")
    page = recording_page(shop, document["id"], f"?step={step}")
    assert page.status_code == 400
    assert f"from 1 to {len(document['events'])}" in page.text


def trace_url(shop: Any, *arguments: str) -> subprocess.CompletedProcess[str]:
    server, _ = shop
    return subprocess.run(
        [sys.executable, "manage.py", "trace_url", *arguments],
        cwd=TEST_PROJECT_DIR,
        env=server.env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_trace_url_posts_a_body(shop: Any) -> None:
    done = trace_url(
        shop, "/api/orders", "--method", "POST", "--data", '{"customer": "c", "total_cents": 7}'
    )
    assert done.returncode == 0, done.stderr
    assert "Request received: POST /api/orders" in done.stdout
    assert "Order.objects.acreate(**payload.model_dump())" in done.stdout
    assert "Response starts: status 200" in done.stdout


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--data", "{}"], "--data needs --method POST, PUT, PATCH"),
        (["--method", "POST", "--content-type", "text/plain"], "--content-type needs --data"),
        (["--method", "POST", "--data", "x", "--content-type", "a\nb"], "printable ASCII"),
    ],
)
def test_trace_url_refuses_a_body_it_cannot_send(
    shop: Any, arguments: list[str], message: str
) -> None:
    done = trace_url(shop, "/api/orders", *arguments)
    assert done.returncode == 2
    assert message in done.stderr
