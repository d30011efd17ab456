"""Class predictions: the instructor asks, followers answer once each, the instructor's
histogram counts them as they come, and the reveal says who was right, as a share."""

from __future__ import annotations

import json
import re

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client

from tests.visualizer.classroom.frames import decode
from visualizer.classroom.models import ClassAnswer, ClassQuestion, ClassSession
from visualizer.classroom.questions import (
    STUDENT_COOKIE,
    AnswerRefused,
    AnswerSent,
    ask,
    close,
    histogram,
    offers_for,
    record_answers,
)
from visualizer.classroom.session import DRIVE_COOKIE, start_session
from visualizer.lab.predictions import OVERLAP_CHOICES, reveal
from visualizer.routing import websocket_application
from visualizer.traces.library import load_examples, trace_document

RECORDING = "example-async-io-4-requests"
EXAMPLE = f"/scenarios/async-io/?recording={RECORDING}"
HTMX_HEADERS = {"HX-Request": "true", "HX-Trigger": None, "HX-Current-URL": "http://x/"}


@pytest.fixture
def examples(transactional_db):
    load_examples()


def socket(code: str, *, secret: str | None = None, student: str | None = None):
    headers = [(b"host", b"localhost"), (b"origin", b"http://localhost")]
    cookies = []
    if secret:
        cookies.append(f"{DRIVE_COOKIE}={code}:{secret}")
    if student:
        cookies.append(f"{STUDENT_COOKIE}={student}")
    if cookies:
        headers.append((b"cookie", "; ".join(cookies).encode()))
    session_version = ClassSession.objects.get(code=code).version
    path = f"/ws/class/{code}/?v={session_version}"
    return WebsocketCommunicator(websocket_application(), path, headers=headers)


async def joined(code: str, **kwargs) -> WebsocketCommunicator:
    communicator = await sync_to_async(socket)(code, **kwargs)
    connected, _ = await communicator.connect()
    assert connected
    return communicator


def answer_message(asked: ClassQuestion, choice: object, **extra: object) -> str:
    # As htmx's ws-send sends the follower's form: its values, and the headers.
    values = {"action": "answer", "question": str(asked.pk), "choice": choice}
    return json.dumps({**values, "csrfmiddlewaretoken": "x", "HEADERS": HTMX_HEADERS, **extra})


async def histogram_with(instructor: WebsocketCommunicator, answers: int) -> str:
    """The instructor's frames until one counts this many answers."""
    while True:
        frame = await instructor.receive_from(timeout=5)
        counted = re.search(r'id="class-histogram" class="histogram" data-answers="(\d+)"', frame)
        if counted and int(counted[1]) == answers:
            return frame


def test_it_offers_the_labs_predictions_and_the_quiz_of_the_recording_shown(examples):
    on_recording = [offer.kind for offer in offers_for(f"{EXAMPLE}&step=2")]
    assert on_recording[:3] == ["predict-overlap", "predict-pause", "predict-wall"]
    assert "quiz-pause" in on_recording
    # Before any run, on the lab: how they run, and how long (the view is not chosen yet).
    assert [offer.kind for offer in offers_for("/lab/")] == ["predict-overlap", "predict-wall"]
    pause = next(o for o in offers_for("/scenarios/async-io/") if o.kind == "predict-pause")
    assert pause.right == [] and ("none", pause.choices[-1][1]) == pause.choices[-1]


@pytest.mark.asyncio
async def test_followers_answer_once_each_and_the_instructor_sees_them_counted(examples):
    session, secret = await sync_to_async(start_session)(f"{EXAMPLE}&step=1")
    question = await sync_to_async(ask)(session, "predict-overlap")
    instructor = await joined(session.code, secret=secret)
    students = [f"student-{n:012d}" for n in range(3)]
    followers = [await joined(session.code, student=student) for student in students]

    for follower, choice in zip(followers, ["together", "together", "one-by-one"], strict=True):
        await follower.send_to(text_data=answer_message(question, choice))
        mine = await follower.receive_from()
        assert f"Your answer: {OVERLAP_CHOICES[choice]}." in mine
        assert "Your answer is in" in mine and "Send my answer" not in mine
    frame = await histogram_with(instructor, 3)
    bars = dict(re.findall(r'data-choice="([^"]+)">.*?class="bar-count">(\d+)<', frame, re.S))
    assert bars == {"together": "2", "partly": "0", "one-by-one": "1"}
    assert "right" not in re.sub(r"<[^>]+>", " ", frame).split()  # nothing revealed yet

    # Once each; a bad answer is refused with the reason and counts nothing.
    first = followers[0]
    cases = [
        (answer_message(question, "partly"), "You have already answered this question."),
        (answer_message(question, "sideways"), "Choose one of the answers offered."),
        (answer_message(question, 3), "Choose one of the answers offered."),
        (answer_message(question, "partly", question="x1"), "question must be the number"),
        (answer_message(question, "partly", question="999999"), "no such question"),
        (answer_message(question, "partly", name="Ann"), "Unexpected fields for answer: name"),
        (answer_message(question, "partly", HEADERS="HX-Request"), "HEADERS must be an object"),
        (json.dumps({"action": "answer", "question": str(question.pk)}), "Choose one of"),
    ]
    for message, expected in cases:
        await first.send_to(text_data=message)
        assert expected in decode(await first.receive_from())["status"], message
    await instructor.send_to(text_data=answer_message(question, "partly"))
    assert "does not answer" in decode(await next_status(instructor))["status"]
    stranger = await joined(session.code)  # no student id: never joined by the page
    await stranger.send_to(text_data=answer_message(question, "partly"))
    assert "has not joined the class" in decode(await stranger.receive_from())["status"]
    assert await ClassAnswer.objects.filter(question=question).acount() == 3

    # A closed question takes no more answers.
    late = await joined(session.code, student="student-late-000000")
    await sync_to_async(close)(question)
    await late.send_to(text_data=answer_message(question, "partly"))
    assert decode(await late.receive_from()) == {
        "status": "This question is closed: answers are no longer taken."
    }
    for communicator in (instructor, stranger, late, *followers):
        await communicator.disconnect()


async def next_status(communicator: WebsocketCommunicator) -> str:
    """The next status line (the instructor also gets counts and histograms)."""
    while True:
        frame = await communicator.receive_from(timeout=5)
        if frame.startswith('<p id="class-status"'):
            return frame


def start_class_as_instructor(url: str) -> tuple[Client, ClassSession]:
    instructor = Client()
    instructor.post("/class/start/", {"url": url})
    return instructor, ClassSession.objects.get()


def test_the_reveal_says_who_was_right_as_a_share_without_javascript(examples):
    instructor, session = start_class_as_instructor(f"{EXAMPLE}&step=1")
    page = instructor.get(f"{EXAMPLE}&step=1").content.decode()
    assert 'name="kind"' in page and "How will they run?" in page

    assert (
        Client().post(f"/class/{session.code}/ask/", {"kind": "predict-overlap"}).status_code == 403
    )
    refused = instructor.post(f"/class/{session.code}/ask/", {"kind": "predict-nothing"})
    assert refused.status_code == 400 and "cannot be asked" in refused.content.decode()
    asked = instructor.post(f"/class/{session.code}/ask/", {"kind": "predict-overlap"})
    assert asked.status_code == 302
    question = ClassQuestion.objects.get()

    truth = reveal(trace_document(RECORDING), None, None).overlap
    wrong = next(key for key in OVERLAP_CHOICES if key != truth)
    students = [Client() for _ in range(3)]
    for student, choice in zip(students, [truth, truth, wrong], strict=True):
        form = student.get(f"/class/{session.code}/").content.decode()
        assert f'name="question" value="{question.pk}"' in form and "Send my answer" in form
        answered = student.post(
            f"/class/{session.code}/answer/", {"question": question.pk, "choice": choice}
        )
        assert answered.status_code == 302
        after = student.get(f"/class/{session.code}/").content.decode()
        assert f"Your answer: {OVERLAP_CHOICES[choice]}." in after
        assert "Send my answer" not in after
    again = students[0].post(
        f"/class/{session.code}/answer/", {"question": question.pk, "choice": wrong}
    )
    assert again.status_code == 400
    assert "You have already answered this question." in again.content.decode()

    shown = instructor.get(f"{EXAMPLE}&step=1").content.decode()
    assert 'data-answers="3"' in shown and "Reveal the answer" in shown
    revealed = instructor.post(f"/class/{session.code}/reveal/", {"question": question.pk})
    assert revealed.status_code == 302
    session.refresh_from_db()
    assert revealed["Location"] == session.url and "step=" in session.url

    counted = histogram(ClassQuestion.objects.get())
    assert counted.right_count == 2 and round(counted.right_percent) == 67
    bars = {bar.key: bar for bar in counted.bars}
    assert bars[truth].right and bars[wrong].common_wrong and not bars[wrong].right
    page = instructor.get(session.url).content.decode()
    assert "3 answers: 2 right (67 %)" in page and "common wrong answer" in page
    closed = students[2].post(
        f"/class/{session.code}/answer/", {"question": question.pk, "choice": truth}
    )
    assert "This question is closed" in closed.content.decode()


def test_a_quiz_question_reveals_by_moving_the_class_to_its_step(examples):
    instructor, session = start_class_as_instructor(f"{EXAMPLE}&step=1")
    instructor.post(f"/class/{session.code}/ask/", {"kind": "quiz-pause"})
    question = ClassQuestion.objects.get()
    assert question.right and question.step
    instructor.post(f"/class/{session.code}/reveal/", {"question": question.pk})
    session.refresh_from_db()
    assert session.url.endswith(f"step={question.step}")
    assert question.explanation in instructor.get(session.url).content.decode()


def test_a_prediction_needs_a_recording_to_be_revealed(examples):
    instructor, session = start_class_as_instructor("/lab/")
    instructor.post(f"/class/{session.code}/ask/", {"kind": "predict-wall"})
    question = ClassQuestion.objects.get()
    refused = instructor.post(f"/class/{session.code}/reveal/", {"question": question.pk})
    assert refused.status_code == 400 and "no recording" in refused.content.decode()
    question.refresh_from_db()
    assert question.status == ClassQuestion.Status.OPEN


def test_answers_that_come_together_are_checked_each_and_stored_together(examples):
    session, _ = start_session(f"{EXAMPLE}&step=1")
    other, _ = start_session(f"{EXAMPLE}&step=1")
    question = ask(session, "predict-overlap")
    elsewhere = ask(other, "predict-overlap")

    def sent(student: str, asked: ClassQuestion, choice: str) -> AnswerSent:
        return AnswerSent(session.pk, student, {"question": str(asked.pk), "choice": choice})

    outcomes = record_answers(
        [
            sent("student-aaaaaaaaaaaa", question, "together"),
            sent("student-aaaaaaaaaaaa", question, "partly"),
            sent("student-bbbbbbbbbbbb", elsewhere, "partly"),
            sent("short", question, "partly"),
            sent("student-cccccccccccc", question, "partly"),
        ]
    )
    refused = [str(o) if isinstance(o, AnswerRefused) else o.choice for o in outcomes]
    assert refused == [
        "together",
        "You have already answered this question.",
        "There is no such question in this class.",
        refused[3],
        "partly",
    ]
    assert "has not joined the class" in refused[3]
    assert sorted(question.answers.values_list("choice", flat=True)) == ["partly", "together"]
    assert not elsewhere.answers.exists()
