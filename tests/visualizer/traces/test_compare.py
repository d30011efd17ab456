"""Two recordings side by side, aligned by phase, with the bars and the verdict of each and
their differences in words; picked from the library, the player and the lab."""

from __future__ import annotations

import copy
import html
import json
import re

import pytest
from django.test import Client

from tracer.breakdown import breakdowns
from visualizer.traces.compare import compare, phases_of
from visualizer.traces.library import EXAMPLES_DIR, import_trace, load_examples
from visualizer.traces.narration import ms
from visualizer.traces.time_went import WHOLE, time_went

pytestmark = pytest.mark.django_db

CPU, IO, SYNC = (
    "example-async-cpu-4-requests",
    "example-async-io-4-requests",
    "example-sync-io-4-requests",
)


def example(name: str) -> dict:
    return json.loads((EXAMPLES_DIR / f"{name}.json").read_bytes())


def longest_in(document: dict, part: str):
    return max(breakdowns(document), key=lambda found: found.parts[part])


def part_of(document: dict, request: str, part: str) -> int:
    return next(b for b in breakdowns(document) if b.request == request).parts[part]


def test_each_phase_is_read_from_the_requests_own_steps():
    document = example("async-io-1-request")
    request = document["requests"][0]
    phases = phases_of(request["id"], request["received_ns"], document["events"])
    by_kind = {e["kind"]: e["t_ns"] for e in reversed(document["events"])}
    assert phases.at_ms["received"] == 0
    assert (
        phases.at_ms["first pause"] == (by_kind["await.suspended"] - request["received_ns"]) / 1e6
    )
    assert phases.at_ms["response"] == request["duration_ns"] / 1e6

    sync = example("sync-io-1-request")  # a plain def view pauses in its blocking call
    request = sync["requests"][0]
    blocking = next(e for e in sync["events"] if e["kind"] == "call.blocking")
    phases = phases_of(request["id"], request["received_ns"], sync["events"])
    assert phases.at_ms["resumed"] == (blocking["t_ns"] - request["received_ns"]) / 1e6


def test_the_phase_table_lines_up_both_sides_phase_by_phase():
    a, b = example("async-cpu-4-requests"), example("async-io-1-request")
    comparison = compare(a, b)
    slowest = max(a["requests"], key=lambda r: r["duration_ns"])["id"]
    # A's first request and its slowest, then B's one request, which is both.
    assert comparison.columns == [("A", "r1", False), ("A", slowest, True), ("B", "r1", False)]
    rows = dict(comparison.phase_rows)
    assert list(rows) == [
        "received",
        "type check",
        "view started",
        "first pause (an await) or blocking call",
        "resumed (or the call returned)",
        "response",
    ]
    assert [at for at, _ in rows["response"]] == [
        next(r for r in a["requests"] if r["id"] == rid)["duration_ns"] / 1e6
        for rid in ("r1", slowest)
    ] + [b["requests"][0]["duration_ns"] / 1e6]
    # The CPU view never awaits: its first stop is the call that computes on the loop.
    blocking = next(e for e in a["events"] if e["kind"] == "call.blocking")
    said = [paused_in for _, paused_in in rows["first pause (an await) or blocking call"]]
    assert said == [
        f"blocked in {blocking['callable']}() (computing), holding the event loop",
        f"blocked in {blocking['callable']}() (computing), holding the event loop",
        "paused at an await",
    ]


def test_how_the_first_requests_first_stopped_is_said_when_it_differs():
    io, sync = example("async-io-1-request"), example("sync-io-1-request")
    blocking = next(e for e in sync["events"] if e["kind"] == "call.blocking")
    held = "the event loop" if blocking["on_event_loop"] else "its thread"
    assert (
        f"In A, r1 first paused at an await; in B, r1 first blocked in "
        f"{blocking['callable']}() ({blocking['cause']}), holding {held}."
    ) in compare(io, sync).differences
    assert not any(line.startswith("In A, ") for line in compare(io, io).differences)


def test_both_sides_bars_are_drawn_on_one_time_axis():
    a, b = example("async-cpu-4-requests"), example("async-io-4-requests")
    comparison = compare(a, b)
    longest = max(found.duration_ns for d in (a, b) for found in breakdowns(d))
    for side, document in ((comparison.a, a), (comparison.b, b)):
        durations = {found.request: found.duration_ns for found in breakdowns(document)}
        for bar in side.time_went.bars:
            assert abs(bar.length - durations[bar.request] * WHOLE / longest) <= 1
    # On its own page a recording's longest request fills the width.
    assert max(bar.length for bar in time_went(a).bars) == WHOLE
    assert max(bar.length for bar in comparison.a.time_went.bars) < WHOLE


def test_the_differences_are_read_from_the_two_breakdowns():
    a, b = example("async-cpu-4-requests"), example("async-io-4-requests")
    said = compare(a, b).differences
    slowest_a = max(r["duration_ns"] for r in a["requests"])
    slowest_b = max(r["duration_ns"] for r in b["requests"])
    assert said[0] == f"The slowest request took {ms(slowest_a)} in A and {ms(slowest_b)} in B."
    within = [
        max(r["finished_ns"] for r in d["requests"]) - min(r["received_ns"] for r in d["requests"])
        for d in (a, b)
    ]
    assert said[1] == (
        f"All 4 of A's requests were answered within {ms(within[0])} of the first arriving; "
        f"all 4 of B's within {ms(within[1])}."
    )
    # The CPU run's requests wait for the loop in turn: the one that waited longest, and
    # what the request of the same name waited in the I/O run.
    waited = longest_in(a, "loop_wait")
    line = next(line for line in said if "for the event loop" in line)
    assert line.startswith(
        f"{waited.request} waited {ms(waited.parts['loop_wait'])} for the event loop in A, "
        f"{ms(part_of(b, waited.request, 'loop_wait'))} in B"
    )
    # The I/O run waits at its await, the CPU run never does: B spent more, so B leads.
    awaited = longest_in(b, "awaiting_io")
    assert (
        f"{awaited.request} waited {ms(awaited.parts['awaiting_io'])} at an await (I/O, a timer "
        f"or another task) in B, {ms(part_of(a, awaited.request, 'awaiting_io'))} in A."
    ) in said

    # Swapped, the same figures are said of the other letters.
    swapped = compare(b, a).differences
    assert swapped[0] == f"The slowest request took {ms(slowest_b)} in A and {ms(slowest_a)} in B."
    assert any(
        s.startswith(
            f"{waited.request} waited {ms(waited.parts['loop_wait'])} for the event loop in B, "
        )
        for s in swapped
    )


def test_a_request_the_other_side_does_not_have_is_not_matched_by_name():
    a, b = example("async-cpu-4-requests"), example("async-io-4-requests")
    renamed = copy.deepcopy(b)
    for item in (*renamed["requests"], *renamed["events"]):
        if item.get("id", "").startswith("r"):
            item["id"] = "q" + item["id"][1:]
        if (item.get("request") or "").startswith("r"):
            item["request"] = "q" + item["request"][1:]
    waited = longest_in(a, "loop_wait")
    most = longest_in(renamed, "loop_wait")
    assert most.request.startswith("q")
    assert (
        f"{waited.request} waited {ms(waited.parts['loop_wait'])} for the event loop in A, "
        f"in B its longest there, {most.request}, {ms(most.parts['loop_wait'])}."
    ) in compare(a, renamed).differences


def test_a_real_cpu_run_and_io_run_differ_in_waiting_for_the_loop(async_cpu_run, async_io_run):
    said = compare(async_cpu_run, async_io_run).differences
    waited = longest_in(async_cpu_run, "loop_wait")
    assert any(
        line.startswith(
            f"{waited.request} waited {ms(waited.parts['loop_wait'])} for the event loop in A, "
            f"{ms(part_of(async_io_run, waited.request, 'loop_wait'))} in B"
        )
        for line in said
    ), said


def test_a_real_wsgi_1x1_run_is_said_to_queue_where_asgi_does_not(wsgi_sync_io_run, sync_io_run):
    said = compare(wsgi_sync_io_run, sync_io_run).differences
    queued = max(breakdowns(wsgi_sync_io_run), key=lambda b: b.waiting_to_be_served_ns or 0)
    same = next(b for b in breakdowns(sync_io_run) if b.request == queued.request)
    assert any(
        line.startswith(
            f"{queued.request} waited {ms(queued.waiting_to_be_served_ns)} before the server "
            f"took it in A, {ms(same.waiting_to_be_served_ns)} in B"
        )
        for line in said
    ), said


def test_the_compare_page_shows_the_bars_and_verdict_of_each_side():
    load_examples()
    answer = Client().get(f"/traces/compare/?a={CPU}&b={IO}")
    page = answer.content.decode()
    assert answer.status_code == 200
    for key, document in (
        ("A", example("async-cpu-4-requests")),
        ("B", example("async-io-4-requests")),
    ):
        went = time_went(document)
        sides = page.split('id="side-')
        side = sides[1] if key == "A" else sides[2]
        assert f'id="time-went-{key}"' in side
        assert side.count('class="time-bar"') == len(went.bars) == 4
        assert went.verdict is not None
        for sentence in went.verdict.sentences:
            assert f"<p>{html.escape(sentence)}</p>" in side
    # One table for both sides, a row a phase.
    assert page.count('<table class="compare-phases">') == 1
    assert '<th scope="col">A: r1</th>' in page and '<th scope="col">B: r1</th>' in page
    for line in compare(
        example("async-cpu-4-requests"), example("async-io-4-requests")
    ).differences:
        assert f"<li>{html.escape(line)}</li>" in page


def test_the_compare_page_works_without_javascript_and_escapes_names():
    load_examples()
    from visualizer.traces.models import Trace

    Trace.objects.filter(recording_id=SYNC).update(name="<script>alert(1)</script>")
    page = Client().get("/traces/compare/").content.decode()
    assert '<form method="get" action="/traces/compare/"' in page
    assert '<select name="a" required>' in page and "&lt;script&gt;alert(1)" in page
    assert "<script>alert(1)" not in page

    html_page = Client().get(f"/traces/compare/?a={SYNC}&b={IO}").content.decode()
    assert "What differs" in html_page and "<script>alert(1)" not in html_page
    # The permalink chooses its two recordings in the form again.
    assert f'<option value="{SYNC}" selected>' in html_page
    assert f'<option value="{IO}" selected>' in html_page


def test_bad_picks_are_refused_with_a_sentence_and_keep_the_form():
    load_examples()
    missing = Client().get(f"/traces/compare/?a={SYNC}&b=<b>nope")
    text = missing.content.decode()
    assert missing.status_code == 404
    assert "No recording &#x27;&lt;b&gt;nope&#x27; in the library: choose another." in text
    assert "<b>nope" not in text and f'<option value="{SYNC}" selected>' in text
    # The form keeps what was chosen, the unknown id too, to be corrected.
    assert (
        '<option value="&lt;b&gt;nope" selected>not in the library (&lt;b&gt;nope)</option>' in text
    )

    same = Client().get(f"/traces/compare/?a={IO}&b={IO}")
    assert same.status_code == 400
    assert f"A and B are the same recording (&#x27;{IO}&#x27;): choose two different ones." in (
        same.content.decode()
    )

    half = Client().get(f"/traces/compare/?a={IO}").content.decode()
    assert "Choose recording B too, to compare with A." in half and "What differs" not in half


def compare_form_of(page: str) -> str:
    start = page.index('<form method="get" action="/traces/compare/"')
    return page[start : page.index("</form>", start)]


@pytest.mark.parametrize(
    "url", [f"/traces/{IO}/", f"/scenarios/async-io/?recording={IO}"], ids=["player", "scenario"]
)
def test_the_player_offers_to_compare_its_recording_with_another(url):
    load_examples()
    form = compare_form_of(Client().get(url, follow=True).content.decode())
    assert f'<input type="hidden" name="a" value="{IO}">' in form
    assert "Compare with…" in form and '<select name="b" required>' in form
    offered = re.findall(r'<option value="([^"]+)"', form)
    assert CPU in offered and SYNC in offered and IO not in offered
    # Submitting it (a GET form) is the comparison's permalink.
    answer = Client().get("/traces/compare/", {"a": IO, "b": CPU})
    assert answer.status_code == 200 and "What differs" in answer.content.decode()


def test_an_embedded_player_has_no_compare_form():
    load_examples()
    page = Client().get(f"/traces/{IO}/?embed=1", follow=True).content.decode()
    assert "/traces/compare/" not in page


def test_the_library_picks_two_recordings_to_compare():
    load_examples()
    form = compare_form_of(Client().get("/traces/").content.decode())
    assert '<select name="a" required>' in form and '<select name="b" required>' in form
    assert f'<option value="{CPU}">' in form


def test_the_lab_links_its_two_runs_to_the_compare_page():
    load_examples()
    two = Client().get(f"/lab/?recording={CPU}&compare={IO}").content.decode()
    assert (
        f'<a href="/traces/compare/?a={CPU}&amp;b={IO}">Compare these two side by side</a>' in two
    )
    one = Client().get(f"/lab/?recording={CPU}").content.decode()
    assert "Compare these two side by side" not in one


def test_everything_read_from_an_imported_trace_is_escaped():
    load_examples()
    hostile = example("sync-io-1-request")
    hostile["id"] = "hostile-trace"
    hostile["scenario"] = None  # a view this server does not have: its own player page
    blocking = next(e for e in hostile["events"] if e["kind"] == "call.blocking")
    blocking["callable"] = "<b>evil</b>"
    import_trace(json.dumps(hostile).encode(), name="<i>named</i>")

    page = Client().get(f"/traces/compare/?a=hostile-trace&b={IO}").content.decode()
    assert "In A, r1 first blocked in &lt;b&gt;evil&lt;/b&gt;() (waiting)" in page
    assert "&lt;i&gt;named&lt;/i&gt;" in page
    assert "<b>evil" not in page and "<i>named" not in page

    # Its player (no scenario page to redirect to) offers the comparison too.
    player = Client().get("/traces/hostile-trace/")
    assert player.status_code == 200
    form = compare_form_of(player.content.decode())
    assert '<input type="hidden" name="a" value="hostile-trace">' in form
    assert f'<option value="{IO}">' in form


def test_a_recording_compared_with_a_copy_of_itself_differs_in_nothing():
    document = example("async-io-4-requests")
    copied = dict(document, id="copy")
    said = compare(document, copied).differences
    slowest = ms(max(r["duration_ns"] for r in document["requests"]))
    # The figures of both are said, the same; no part or phase is said to differ.
    assert said[0] == f"The slowest request took {slowest} in A and {slowest} in B."
    assert len(said) == 2 and said[1].startswith("All 4 of A's requests")
