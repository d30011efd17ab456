"""A class across two Daphne processes sharing a database and Redis (the real one on
127.0.0.1): followers on either process follow the instructor."""

from __future__ import annotations

import json
import re
import tempfile
from collections.abc import Iterator

import httpx
import pytest
from django.core.management import CommandError, call_command
from websockets.sync.client import ClientConnection, connect

from tests.visualizer.classroom.frames import decode
from visualizer.classroom.session import DRIVE_COOKIE
from visualizer.server_process import DaphneServer

REDIS_URL = "redis://127.0.0.1:6379/0"
EXAMPLE = "/scenarios/async-io/?recording=example-async-io-4-requests"


@pytest.fixture(scope="module")
def two_servers() -> Iterator[tuple[DaphneServer, DaphneServer]]:
    with tempfile.TemporaryDirectory(prefix="class-redis-") as data_dir:
        env = {"TRACING_ENABLED": "false", "DATA_DIR": data_dir, "REDIS_URL": REDIS_URL}
        with DaphneServer(env=env) as first, DaphneServer(env=env) as second:
            yield first, second


def start_class(server: DaphneServer) -> tuple[str, str, int]:
    """Start a class on a scenario step as an instructor's browser would: its code, the
    instructor's cookie and the session's version."""
    with httpx.Client(base_url=server.base_url) as browser:
        page = browser.get(f"{EXAMPLE}&step=1").text
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)[1]
        started = browser.post(
            "/class/start/",
            data={"csrfmiddlewaretoken": token, "url": f"{EXAMPLE}&step=1"},
            headers={"Referer": f"{server.base_url}{EXAMPLE}"},
        )
        assert started.status_code == 302, started.text
        code = started.headers["location"].split("/")[2]
        followed = browser.get(f"/class/{code}/").text
        version = int(re.search(r'data-class-version="(\d+)"', followed)[1])
        return code, started.cookies[DRIVE_COOKIE], version


def class_socket(
    server: DaphneServer, code: str, query: str = "", cookie: str = ""
) -> ClientConnection:
    url = server.base_url.replace("http://", "ws://") + f"/ws/class/{code}/{query}"
    headers = {"Cookie": f'{DRIVE_COOKIE}="{cookie}"'} if cookie else {}
    return connect(url, origin=server.base_url, additional_headers=headers, open_timeout=10)


def next_frame(connection: ClientConnection) -> dict:
    """The next frame that is not a follower count (the instructor gets those too)."""
    while True:
        frame = decode(connection.recv(timeout=10))
        if "followers" not in frame:
            return frame


def test_followers_on_both_processes_follow_an_instructor_on_one(two_servers):
    first, second = two_servers
    code, cookie, version = start_class(first)

    with (
        class_socket(first, code, cookie=cookie) as instructor,
        class_socket(first, code, f"?v={version}") as near,
        class_socket(second, code, f"?v={version}") as far,
    ):
        for step in (2, 3):
            instructor.send(json.dumps({"action": "drive", "url": f"{EXAMPLE}&step={step}"}))
            for follower in (near, far):
                frame = decode(follower.recv(timeout=10))
                assert frame["version"] == version + step - 1
                assert frame["action"] == "swap" and f"<strong>{step}</strong>" in frame["html"]

        far.send(json.dumps({"action": "drive", "url": f"{EXAMPLE}&step=9"}))
        assert "Only the instructor" in decode(far.recv(timeout=10))["status"]

    # A follower who comes back to the other process lands on the current step.
    with class_socket(second, code, f"?v={version}") as back:
        frame = decode(back.recv(timeout=10))
        assert frame["version"] == version + 2 and frame["url"].endswith("step=3")


def test_several_processes_need_redis(settings):
    settings.REDIS_URL = ""
    with pytest.raises(CommandError, match="REDIS_URL"):
        call_command("serve", processes=2)


def test_a_class_survives_a_server_restart():
    with tempfile.TemporaryDirectory(prefix="class-restart-") as data_dir:
        env = {"TRACING_ENABLED": "false", "DATA_DIR": data_dir}
        with DaphneServer(env=env) as before:
            code, cookie, version = start_class(before)
            with class_socket(before, code, cookie=cookie) as instructor:
                instructor.send(json.dumps({"action": "drive", "url": f"{EXAMPLE}&step=5"}))
                assert next_frame(instructor)["version"] == version + 1

        # A follower whose page showed the first version lands on step 5, and the
        # instructor's browser still drives.
        with (
            DaphneServer(env=env) as after,
            class_socket(after, code, f"?v={version}") as follower,
        ):
            frame = decode(follower.recv(timeout=10))
            assert frame["version"] == version + 1 and frame["url"].endswith("step=5")
            with class_socket(after, code, cookie=cookie) as instructor:
                instructor.send(json.dumps({"action": "drive", "url": f"{EXAMPLE}&step=6"}))
                assert "<strong>6</strong>" in decode(follower.recv(timeout=10))["html"]


def test_a_class_watches_its_instructors_lab_run_as_it_goes(traced_server):
    """The lab run the instructor starts is shown to the class while it runs (one
    server process, the in-memory channel layer)."""
    with httpx.Client(base_url=traced_server.base_url, timeout=60) as browser:
        page = browser.get("/lab/").text
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)[1]
        referer = {"Referer": f"{traced_server.base_url}/lab/"}
        started = browser.post(
            "/class/start/", data={"csrfmiddlewaretoken": token, "url": "/lab/"}, headers=referer
        )
        code = started.headers["location"].split("/")[2]
        version = int(
            re.search(r'data-class-version="(\d+)"', browser.get(f"/class/{code}/").text)[1]
        )
        with class_socket(traced_server, code, f"?v={version}") as follower:
            form = {
                "csrfmiddlewaretoken": token,
                "scenario": "async-io",
                "requests": "4",
                "delay_ms": "1500",
            }
            # The instructor's own page gets its progress panel (its class bar is not in
            # it: an async view must not ask the database for it).
            own = browser.post("/lab/run/", data=form, headers={**referer, "HX-Request": "true"})
            frame = decode(follower.recv(timeout=10))
            assert own.status_code == 200 and "Running now" in own.text

    panel = frame["progress"]
    assert "Running now" in panel and "(Your instructor's run.)" in panel
    assert "hx-get" not in panel  # followers do not poll the server themselves
