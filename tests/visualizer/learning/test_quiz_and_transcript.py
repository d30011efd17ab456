"""The quiz and the transcript come from the trace: change the trace, and they change."""

from __future__ import annotations

import json
import re

import pytest
from django.test import Client

from tests.fixtures import VERSION_1_EXAMPLES
from visualizer.learning.quiz import NEVER_PAUSES, quiz_for
from visualizer.learning.transcript import build_transcript
from visualizer.traces.library import EXAMPLES_DIR, import_trace, load_examples
from visualizer.traces.sources import DocumentSource

EXAMPLES = EXAMPLES_DIR


def example(name: str) -> dict:
    return json.loads((EXAMPLES / f"{name}.json").read_bytes())


def questions(document: dict) -> dict:
    return {q.key: q for q in quiz_for(DocumentSource(document))[1]}


def answer_of(question) -> str:
    return question.choices[question.answer]


def test_the_pause_answer_is_the_requests_first_await():
    document = example("async-io-4-requests")
    first = next(
        e for e in document["events"] if e["kind"] == "await.suspended" and e["request"] == "r1"
    )
    pause = questions(document)["pause"]
    assert answer_of(pause) == f"Step {first['seq']}"
    assert NEVER_PAUSES in pause.choices and len(set(pause.choices)) == len(pause.choices)
    assert pause.step == first["seq"]

    document["events"] = [e for e in document["events"] if not e["kind"].startswith("await.")]
    assert answer_of(questions(document)["pause"]) == NEVER_PAUSES


def test_the_value_answer_is_what_the_tracker_shows():
    document = example("sync-io-1-request")
    value = questions(document)["value"]
    name = value.prompt.split("what does ")[1].split(" hold")[0]
    event = document["events"][value.step - 1]
    assert answer_of(value) == event["locals"][name]

    for e in document["events"]:
        if e["seq"] >= value.step and name in e["locals"]:
            e["locals"][name] = "'changed in the trace'"
    assert answer_of(questions(document)["value"]) == "'changed in the trace'"


def test_the_waiting_answer_is_a_request_held_up_by_the_stall():
    # A recording kept as it was made: which request waited is its own.
    document = json.loads((VERSION_1_EXAMPLES / "async-cpu-4-requests.json").read_bytes())
    waited = questions(document)["waited"]
    assert answer_of(waited) == "r2" and "r1" in waited.choices
    assert "count_primes" in waited.prompt

    # Without a stall, a trace of worker threads asks which thread ran the view instead.
    sync = questions(example("sync-io-4-requests"))
    assert "waited" not in sync
    focus, _ = quiz_for(DocumentSource(example("sync-io-4-requests")))
    handoff = next(
        e
        for e in example("sync-io-4-requests")["events"]
        if e["kind"] == "thread.handoff" and e["request"] == focus
    )
    assert answer_of(sync["thread"]) == handoff["to_thread"]


@pytest.mark.django_db
def test_the_quiz_page_checks_answers_and_links_to_the_step():
    load_examples()
    url = "/traces/example-async-io-4-requests/quiz/"
    pause = questions(example("async-io-4-requests"))["pause"]
    wrong = (pause.answer + 1) % len(pause.choices)

    blank = Client().get(url).content.decode()
    right = Client().get(url, {"q-pause": pause.answer}).content.decode()
    not_quite = Client().get(url, {"q-pause": wrong, "q-value": "99"}).content.decode()
    presenter = Client().get(url, {"presenter": "1"}).content.decode()

    assert "Check my answers" in blank and "Right." not in blank
    assert "Right." in right and f"?step={pause.step}" in right
    assert "Not quite." in not_quite
    assert f"The answer is <code>{answer_of(pause)}</code>" in not_quite
    assert not_quite.count('role="status"') == 1  # 99 is not a choice: not answered
    assert "Reveal the answer" in presenter and "Reveal the answer" not in blank
    assert 'href="?presenter=1">Presenter mode' in blank and "nothing is collected" in presenter
    assert Client().get(url, {"q-pause": "²"}).status_code == 200  # not a digit 0-9
    assert Client().get("/lab/", {"requests": "²", "predict_wall_ms": "²"}).status_code == 200


@pytest.mark.django_db
def test_values_from_an_imported_trace_are_shown_as_text():
    document = example("sync-io-1-request")
    for event in document["events"]:
        if "data" in event.get("locals", {}):
            event["locals"]["data"] = "<script>alert(1)</script>"
    document["id"] = "hostile-quiz"
    import_trace(json.dumps(document).encode())

    quiz = Client().get("/traces/hostile-quiz/quiz/").content.decode()
    transcript = Client().get("/traces/hostile-quiz/transcript/").content.decode()
    for page in (quiz, transcript):
        assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in quiz


def test_the_transcript_tells_every_step_in_order():
    document = example("async-io-1-request")
    transcript = build_transcript(DocumentSource(document))

    assert [s.number for s in transcript.steps] == [e["seq"] for e in document["events"]]
    markdown = transcript.markdown()
    assert markdown.startswith("# Transcript: Async view awaiting I/O")
    numbered = re.findall(r"^(\d+)\. ", markdown, flags=re.MULTILINE)
    assert numbered == [str(e["seq"]) for e in document["events"]]
    assert "## Key moments" in markdown and "frees the event loop" in markdown

    document["events"][0]["path"] = "/run/changed/"
    assert "/run/changed/" in build_transcript(DocumentSource(document)).markdown()


@pytest.mark.django_db
def test_the_transcript_is_a_page_and_a_markdown_download():
    load_examples()
    page = Client().get("/traces/example-sync-io-1-request/transcript/")
    download = Client().get("/traces/example-sync-io-1-request/transcript.md")

    assert "has reached Django" in page.content.decode()
    assert download["Content-Type"].startswith("text/markdown")
    assert "attachment" in download["Content-Disposition"]
    assert download.content.decode().count("\n1. ") == 1
    assert Client().get("/traces/nothing-here/transcript/").status_code == 404


def test_the_quiz_is_about_the_first_request_whose_view_ran():
    document = example("async-io-4-requests")
    document["events"] = [
        e for e in document["events"] if e["request"] != "r1" or e["kind"] == "request.received"
    ]
    focus, found = quiz_for(DocumentSource(document))
    assert focus == "r2" and found


def test_a_request_sent_during_a_stall_waited_for_it():
    from visualizer.traces.moments import requests_held_up

    document = example("async-cpu-4-requests")
    stall = next(e for e in document["events"] if e["kind"] == "loop.blocked")
    end = stall["started_ns"] + stall["duration_ns"]
    late = {"id": "r9", "received_ns": end + 1_000_000, "finished_ns": end + 90_000_000}
    assert "r9" not in requests_held_up(stall, [late])
    # Sent while the loop was stalled: Django saw it only afterwards, but it waited.
    assert requests_held_up(stall, [{**late, "client_sent_ns": end - 5_000_000}]) == ["r9"]


def test_a_request_queued_behind_another_is_the_answer_when_the_server_had_no_thread_free():
    document = example("sync-io-4-requests")
    focus, _ = quiz_for(DocumentSource(document))
    mine = next(r for r in document["requests"] if r["id"] == focus)
    other = next(r for r in document["requests"] if r["id"] != focus)
    for request in document["requests"]:  # all sent at once, as the lab does
        request["client_sent_ns"] = mine["received_ns"] - 1_000_000
    assert "queued" not in questions(document)  # the others were served meanwhile

    # As on WSGI with one thread: the other request got in only once this one was done.
    other["received_ns"] = mine["finished_ns"] + 2_000_000
    queued = questions(document)["queued"]
    assert answer_of(queued) == other["id"] and focus in queued.choices
    assert f"it waited {(other['received_ns'] - other['client_sent_ns']) / 1e6:.0f} ms" in (
        queued.explanation
    )
    first_event = next(e for e in document["events"] if e["request"] == other["id"])
    assert queued.step == first_event["seq"]


@pytest.mark.django_db
def test_the_home_page_offers_a_quiz_on_each_bundled_example():
    load_examples()
    home = Client().get("/").content.decode()
    for path in EXAMPLES.glob("*.json"):
        assert f"/traces/example-{path.stem}/quiz/" in home


def test_no_thread_queue_question_for_a_view_on_the_event_loop():
    document = example("async-cpu-4-requests")
    focus, _ = quiz_for(DocumentSource(document))
    mine = next(r for r in document["requests"] if r["id"] == focus)
    for request in document["requests"]:
        request["client_sent_ns"] = mine["received_ns"] - 1_000_000
        if request["id"] != focus:
            request["received_ns"] = mine["finished_ns"] + 1_000_000
    assert "queued" not in questions(document)


@pytest.mark.django_db
def test_the_quiz_of_a_long_trace_shows_a_bounded_table_with_the_steps_it_asks_about():
    document = example("async-io-1-request")
    events = document["events"]
    pause = next(i for i, e in enumerate(events) if e["kind"] == "await.suspended")
    # The request pauses and resumes 2,000 times more before its view returns.
    extra = [dict(events[pause + offset]) for _ in range(2000) for offset in (0, 1)]
    document["events"] = events[: pause + 2] + extra + events[pause + 2 :]
    for seq, event in enumerate(document["events"], start=1):
        event["seq"] = seq
    document["id"] = "long-quiz"
    import_trace(json.dumps(document).encode())
    questions = quiz_for(DocumentSource(document))[1]

    page = Client().get("/traces/long-quiz/quiz/").content.decode()

    table = page[page.index('<table class="execution">') : page.index("</table>")]
    assert table.count("<tr>") - 1 <= 200 + len(questions)
    assert f"first 200 of {len(document['events'])} steps" in page
    for question in questions:
        assert f'?step={question.step}">{question.step}</a>' in table
    assert len(page) < 300_000


def test_the_transcript_says_where_each_requests_time_went():
    document = example("async-cpu-4-requests")
    transcript = build_transcript(DocumentSource(document))
    assert transcript.time_went is not None
    assert transcript.time_went.verdict is not None
    markdown = transcript.markdown()
    assert "## Where the time went" in markdown
    for request in document["requests"]:
        assert f"- {request['id']} (arrived at " in markdown
    assert transcript.time_went.verdict.sentences[0] in markdown


def execution_header(page: str) -> list[str]:
    head = re.search(r'<table class="execution">.*?<thead>(.*?)</thead>', page, re.S)
    assert head
    return re.findall(r'<th scope="col">([^<]*)</th>', head[1])


@pytest.mark.django_db
def test_the_quiz_hides_what_gives_its_answers_away_until_they_are_answered():
    load_examples()
    url = "/traces/example-sync-io-4-requests/quiz/"
    asked = questions(example("sync-io-4-requests"))
    assert {"pause", "value", "thread"} <= set(asked)
    all_answered = {f"q-{key}": 0 for key in asked}

    blank = Client().get(url).content.decode()
    pause_only = Client().get(url, {"q-pause": 0}).content.decode()
    done = Client().get(url, all_answered).content.decode()

    # Unanswered, the table shows neither the actions (where the view pauses, who hands it
    # to which thread) nor the threads, and the tracker (the value asked) is not shown.
    assert execution_header(blank) == ["Step", "Since the run began", "Since its request arrived"]
    assert "Variable tracker of request" not in blank
    assert 'id="quiz-hidden"' in blank
    handoff = next(
        e for e in example("sync-io-4-requests")["events"] if e["kind"] == "thread.handoff"
    )
    assert (
        handoff["to_thread"]
        not in re.search(r'<table class="execution">.*?</table>', blank, re.S)[0]
    )
    # Answering the pause question alone leaves the actions hidden: the thread question's
    # answer is in them too.
    unanswered = ["Step", "Since the run began", "Since its request arrived"]
    assert execution_header(pause_only) == unanswered
    assert execution_header(done) == [
        "Step",
        "Action",
        "Thread",
        "Since the run began",
        "Since its request arrived",
    ]
    assert "Variable tracker of request" in done and 'id="quiz-hidden"' not in done
