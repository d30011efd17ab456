"""bench.common.tile: the benches' way to make a long trace out of a short real one."""

from __future__ import annotations

from bench.common import tile

DOCUMENT = {
    "id": "short",
    "requests": [
        {"id": "r1", "received_ns": 100, "finished_ns": 400, "loop_steps": [[150, 200]]},
    ],
    "events": [
        {"seq": 1, "t_ns": 100, "request": "r1", "kind": "request.received"},
        {"seq": 2, "t_ns": 300, "request": "r1", "kind": "await.resumed", "started_ns": 150},
        {"seq": 3, "t_ns": 400, "request": None, "kind": "loop.blocked"},
    ],
}


def test_tile_repeats_the_run_with_new_ids_later_times_and_one_sequence():
    tiled = tile(DOCUMENT, 7)
    assert [e["seq"] for e in tiled["events"]] == list(range(1, 8))
    assert [r["id"] for r in tiled["requests"]] == ["r1", "r2", "r3"]
    assert [e["request"] for e in tiled["events"]] == ["r1", "r1", None, "r2", "r2", None, "r3"]
    span = 400 - 100 + 1_000_000
    second = tiled["requests"][1]
    assert (second["received_ns"], second["finished_ns"]) == (100 + span, 400 + span)
    assert second["loop_steps"] == [[150 + span, 200 + span]]
    assert tiled["events"][4]["started_ns"] == 150 + span
    assert DOCUMENT["requests"][0]["id"] == "r1"  # the original is left as it was
