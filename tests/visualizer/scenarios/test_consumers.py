"""The scenario page's WebSocket, through Channels' own test client."""

from __future__ import annotations

import json

import pytest
from channels.testing import WebsocketCommunicator

from tracer.django_integration import get_tracer
from visualizer.routing import websocket_application

# Snapshots look the recording up in the database too (from a worker thread).
pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True)]

ORIGIN = (b"origin", b"http://localhost")


def connect(slug: str = "async-io", query: str = "", origin=ORIGIN) -> WebsocketCommunicator:
    headers = [(b"host", b"localhost")] + ([origin] if origin else [])
    path = f"/ws/scenarios/{slug}/" + (f"?{query}" if query else "")
    return WebsocketCommunicator(websocket_application(), path, headers=headers)


async def test_it_answers_malformed_messages_with_an_error_frame_and_stays_open():
    client = connect()
    connected, _ = await client.connect()
    assert connected
    cases = [
        ("not json", "must be JSON objects"),
        ("[1, 2]", "must be JSON objects"),
        (json.dumps({"action": "explode"}), "Unknown action"),
        (json.dumps({"action": "run", "requests": "many"}), "requests must be a whole number"),
        (json.dumps({"action": "run", "requests": 500}), "from 1 to 20"),
        (json.dumps({"action": "run", "delay_ms": -5}), "delay_ms must be"),
        (json.dumps({"action": "run", "evil": 1}), "Unexpected fields for run: evil"),
        (json.dumps({"action": "sync", "recording": "../../etc"}), "valid recording id"),
        ("x" * 5000, "at most 4096 bytes"),
    ]
    for message, expected in cases:
        await client.send_to(text_data=message)
        frame = await client.receive_from()
        assert 'id="ws-error"' in frame and 'role="alert"' in frame
        assert expected in frame, (message, frame)
    await client.send_to(bytes_data=b"\x00\x01")
    assert "must be text" in await client.receive_from()
    assert await client.receive_nothing()
    await client.disconnect()


async def test_a_bad_message_from_one_client_leaves_another_streaming():
    good, bad = connect(), connect()
    await good.connect()
    await bad.connect()
    await bad.send_to(text_data="{")
    assert "ws-error" in await bad.receive_from()

    recording = get_tracer().store.get_or_create("live-shared")
    await good.send_to(text_data=json.dumps({"action": "sync", "recording": recording.id}))
    snapshot = await good.receive_from()
    assert 'id="player"' in snapshot and "live-shared" in snapshot
    await good.disconnect()
    await bad.disconnect()


async def test_it_sends_a_snapshot_of_the_recording_on_connect():
    recording = get_tracer().store.get_or_create("snapshot-me")
    client = connect(query=f"recording={recording.id}")
    connected, _ = await client.connect()
    assert connected
    frame = await client.receive_from()
    assert 'id="player" data-recording="snapshot-me"' in frame
    assert 'id="live-marker"' in frame
    await client.disconnect()


async def test_it_refuses_cross_origin_connections():
    client = connect(origin=(b"origin", b"http://evil.example"))
    connected, _ = await client.connect()
    assert not connected


async def test_it_refuses_an_unknown_scenario():
    client = connect(slug="no-such-scenario")
    connected, code = await client.connect()
    assert not connected
    assert code == 4404


@pytest.mark.parametrize(
    "path", ["/ws/nothing/", "/ws/class/%3Cscript%3E/", "/ws/class/<script>/", "/ws/scenarios/%00/"]
)
async def test_an_unknown_or_odd_socket_path_is_closed_as_not_found(path):
    headers = [(b"host", b"localhost"), ORIGIN]
    client = WebsocketCommunicator(websocket_application(), path, headers=headers)
    connected, _ = await client.connect()
    assert connected
    assert (await client.receive_output())["code"] == 4404


@pytest.mark.parametrize("action", [["run"], {"run": 1}, 7, None, True])
async def test_a_message_whose_action_is_not_text_gets_an_error_frame(action):
    client = connect()
    await client.connect()
    await client.send_to(text_data=json.dumps({"action": action}))
    assert "Unknown action" in await client.receive_from()
    recording = get_tracer().store.get_or_create("still-open")
    await client.send_to(text_data=json.dumps({"action": "sync", "recording": recording.id}))
    assert 'id="player"' in await client.receive_from()
    await client.disconnect()


async def test_a_page_following_a_run_that_left_nothing_hears_it_is_gone():
    """A page still saying "Running" for a run its server stopped before storing anything
    is told, when it reconnects, that the run is gone."""
    client = connect(query="recording=live-nothing-left")
    await client.connect()

    frame = await client.receive_from()

    assert 'id="run-status"' in frame and 'data-running="false"' in frame
    assert "There is no recording live-nothing-left on this server" in frame
    await client.disconnect()
