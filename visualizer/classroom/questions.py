"""Class predictions: the instructor asks the class a question on the page it shows, the
followers answer on their own devices, the instructor's screen counts the answers as they
come, and the reveal says what the trace answers and how many were right.

The questions are those the site already asks: the lab's predictions before a run (how
the requests will run, where the view pauses, how long the run takes; answered by the
recording the class shows at the reveal) and the quiz on a recording (answered by it).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import IntegrityError, transaction
from django.db.models import Count
from django.http import QueryDict
from django.template.loader import render_to_string
from django.urls import resolve

from visualizer.classroom.models import ClassAnswer, ClassQuestion, ClassSession
from visualizer.lab.metrics import lab_metrics
from visualizer.lab.predictions import NO_PAUSE, OVERLAP_CHOICES, pause_choices, reveal
from visualizer.learning.quiz import quiz_for
from visualizer.scenarios.catalog import Scenario, get_scenario
from visualizer.traces.library import trace_document
from visualizer.traces.narration import plural
from visualizer.traces.sources import TraceSource, find_source
from visualizer.traces.steps import whole_number

STUDENT_COOKIE = "class-student"  # a random id per follower's browser: one answer each
STUDENT_ID = re.compile(r"[A-Za-z0-9_-]{16,64}")
# "How long will it take?" answered by range, so that answers can be counted.
WALL_CHOICES = (
    ("under-500", "under 0.5 s", 0, 500),
    ("500-1000", "0.5 to 1 s", 500, 1000),
    ("1000-2000", "1 to 2 s", 1000, 2000),
    ("2000-4000", "2 to 4 s", 2000, 4000),
    ("4000-8000", "4 to 8 s", 4000, 8000),
    ("over-8000", "8 s or more", 8000, None),
)
COMMON_WRONG_SHARE = 0.2  # a wrong choice at least this many chose is labelled common


class AnswerRefused(Exception):
    """An answer, or an instructor's step, that is not taken; the text says why."""


@dataclass(frozen=True)
class Offer:
    """A question the instructor may ask on a page. ``right`` is empty for a prediction,
    whose answer the recording shown at the reveal gives."""

    kind: str
    prompt: str
    choices: list[tuple[str, str]]
    right: list[str] = field(default_factory=list)
    explanation: str = ""
    step: int | None = None


def offers_for(url: str) -> list[Offer]:
    """The questions that can be asked on this page (a path checked by followable_url)."""
    page = _page(url)
    offers = _predictions(page.scenario)
    if page.source is not None:
        _, quiz = quiz_for(page.source)
        offers += [
            Offer(
                f"quiz-{question.key}",
                question.prompt,
                [(str(index), text) for index, text in enumerate(question.choices)],
                [str(question.answer)],
                question.explanation,
                question.step,
            )
            for question in quiz
        ]
    return offers


def _predictions(scenario: Scenario | None) -> list[Offer]:
    offers = [
        Offer(
            "predict-overlap",
            "The requests are sent at once. How will they run?",
            list(OVERLAP_CHOICES.items()),
        ),
        Offer(
            "predict-wall",
            "How long will all the requests take, from the first sent to the last answered?",
            [(key, label) for key, label, _, _ in WALL_CHOICES],
        ),
    ]
    if scenario is not None:
        offers.insert(
            1,
            Offer(
                "predict-pause",
                f"Where does the view of {scenario.title} pause?",
                list(pause_choices(scenario).items()),
            ),
        )
    return offers


@dataclass(frozen=True)
class Page:
    """What a followed page shows: its scenario (if known) and the recording (if any)."""

    path: str
    query: QueryDict
    scenario: Scenario | None
    recording_id: str | None
    source: TraceSource | None


def _page(url: str) -> Page:
    parts = urlsplit(url)
    match = resolve(parts.path)
    query = QueryDict(parts.query)
    recording_id = match.kwargs.get("recording_id") or query.get("recording") or None
    source = find_source(recording_id) if recording_id else None
    scenario = get_scenario(match.kwargs.get("slug", ""))
    if scenario is None and source is not None:
        scenario = get_scenario(source.scenario_slug)
    if scenario is None and match.url_name == "lab":
        scenario = get_scenario(query.get("scenario", ""))
    return Page(parts.path, query, scenario, recording_id, source)


def ask(session: ClassSession, kind: str) -> ClassQuestion:
    """Put one of the page's questions to the class; one asked before is closed."""
    offer = next((o for o in offers_for(session.url) if o.kind == kind), None)
    if offer is None:
        raise AnswerRefused("That question cannot be asked on the page the class shows.")
    with transaction.atomic():
        session.questions.filter(status=ClassQuestion.Status.OPEN).update(
            status=ClassQuestion.Status.CLOSED
        )
        return ClassQuestion.objects.create(
            session=session,
            kind=offer.kind,
            prompt=offer.prompt,
            choices=offer.choices,
            url=session.url,
            right=offer.right,
            explanation=offer.explanation,
            step=offer.step,
        )


def current_question(session: ClassSession) -> ClassQuestion | None:
    """The question the class sees now: the last one asked."""
    return session.questions.order_by("-pk").first()


def close(question: ClassQuestion) -> None:
    if question.status == ClassQuestion.Status.OPEN:
        question.status = ClassQuestion.Status.CLOSED
        question.save(update_fields=["status"])


def reveal_answer(question: ClassQuestion, shown_url: str) -> str:
    """Close the question and find its right answer; returns the page that shows it (the
    step of the answer, on the page the class shows)."""
    if not question.right:
        _answer_prediction(question, shown_url)
    question.status = ClassQuestion.Status.REVEALED
    question.save(update_fields=["status", "right", "explanation", "step"])
    return _with_step(shown_url if question.kind.startswith("predict-") else question.url, question)


def _answer_prediction(question: ClassQuestion, shown_url: str) -> None:
    page = _page(shown_url)
    document = trace_document(page.recording_id) if page.recording_id else None
    if document is None:
        raise AnswerRefused(
            "The class shows no recording to answer this from: run the requests (or open "
            "a recording) first, then reveal."
        )
    asked = _page(question.url).scenario
    recorded = document["scenario"]["slug"] if document["scenario"] else None
    if question.kind == "predict-pause" and asked and recorded != asked.slug:
        raise AnswerRefused(
            f"The recording the class shows is not of {asked.title}, which the question is about."
        )
    truth = reveal(document, None, None)
    last = len(document["events"]) or None
    if question.kind == "predict-overlap":
        question.right = [truth.overlap]
        question.explanation = " ".join(truth.reasons) or (
            f"They ran {OVERLAP_CHOICES[truth.overlap]}."
        )
        question.step = last
    elif question.kind == "predict-pause":
        question.right = [str(pause.line) for pause in truth.pauses] or [NO_PAUSE]
        question.explanation = (
            " ".join(
                f"The view paused at line {pause.line} (await {pause.awaiting}), first at "
                f"step {pause.step}."
                for pause in truth.pauses
            )
            or "The view never paused at an await: it ran straight through."
        )
        question.step = min((pause.step for pause in truth.pauses), default=last)
    else:
        wall_ms = lab_metrics(document).wall_ms
        question.right = [_wall_choice(wall_ms)]
        requests = plural(len(document["requests"]), "request")
        question.explanation = f"The {requests} took {wall_ms:.0f} ms in all."
        question.step = last


def _wall_choice(wall_ms: float) -> str:
    for key, _, low, high in WALL_CHOICES:
        if low <= wall_ms and (high is None or wall_ms < high):
            return key
    return WALL_CHOICES[-1][0]


def _with_step(url: str, question: ClassQuestion) -> str:
    parts = urlsplit(url)
    if question.step is None or resolve(parts.path).url_name == "lab":
        return url
    query = QueryDict(parts.query, mutable=True)
    query["step"] = str(question.step)
    return f"{parts.path}?{query.urlencode()}"


@dataclass(frozen=True)
class AnswerSent:
    """A follower's answer as it came: from which class and browser, and its fields."""

    session_id: int
    student: str | None
    values: Mapping[str, Any]


def record_answer(session_id: int, student: str | None, values: Mapping[str, Any]) -> ClassAnswer:
    """Take a follower's answer (the fields ``question`` and ``choice``, as sent).
    AnswerRefused says why one is not taken."""
    (outcome,) = record_answers([AnswerSent(session_id, student, values)])
    if isinstance(outcome, AnswerRefused):
        raise outcome
    return outcome


def record_answers(sent: list[AnswerSent]) -> list[ClassAnswer | AnswerRefused]:
    """Take answers that came together (a class answering at once), in one transaction:
    the stored answer for each, or why it was refused (in the same order)."""
    numbers = [_question_number(answer.values) for answer in sent]
    questions = ClassQuestion.objects.in_bulk({n for n in numbers if n is not None})
    students = {answer.student for answer in sent if answer.student}
    answered = set(
        ClassAnswer.objects.filter(question__in=questions, student__in=students).values_list(
            "question_id", "student"
        )
    )
    outcomes: list[ClassAnswer | AnswerRefused] = []
    for answer, number in zip(sent, numbers, strict=True):
        try:
            question = questions.get(number) if number is not None else None
            outcome = _checked(answer, number, question)
            if (outcome.question_id, outcome.student) in answered:
                raise AnswerRefused("You have already answered this question.")
            answered.add((outcome.question_id, outcome.student))
            outcomes.append(outcome)
        except AnswerRefused as refusal:
            outcomes.append(refusal)
    taken = [outcome for outcome in outcomes if isinstance(outcome, ClassAnswer)]
    try:
        with transaction.atomic():
            ClassAnswer.objects.bulk_create(taken)
    except IntegrityError:
        # The same browser answering on two server processes at once: one by one.
        return [_stored_alone(outcome) for outcome in outcomes]
    return outcomes


def _question_number(values: Mapping[str, Any]) -> int | None:
    number = values.get("question")
    return whole_number(number) if isinstance(number, str) else None


def _checked(sent: AnswerSent, number: int | None, question: ClassQuestion | None) -> ClassAnswer:
    if sent.student is None or not STUDENT_ID.fullmatch(sent.student):
        raise AnswerRefused(
            "This browser has not joined the class: open the class's page (its join link) "
            "first, then answer."
        )
    if number is None:
        raise AnswerRefused("question must be the number of a question of this class.")
    if question is None or question.session_id != sent.session_id:
        raise AnswerRefused("There is no such question in this class.")
    if question.status != ClassQuestion.Status.OPEN:
        raise AnswerRefused("This question is closed: answers are no longer taken.")
    choice = sent.values.get("choice")
    if not isinstance(choice, str) or choice not in question.choice_keys:
        raise AnswerRefused("Choose one of the answers offered.")
    return ClassAnswer(question=question, student=sent.student, choice=choice)


def _stored_alone(outcome: ClassAnswer | AnswerRefused) -> ClassAnswer | AnswerRefused:
    if isinstance(outcome, AnswerRefused):
        return outcome
    try:
        with transaction.atomic():
            outcome.save(force_insert=True)
    except IntegrityError:
        return AnswerRefused("You have already answered this question.")
    return outcome


def answer_of(question: ClassQuestion, student: str | None) -> str | None:
    """The label of the answer this browser gave, if it gave one."""
    if not student:
        return None
    answer = question.answers.filter(student=student).first()
    return question.label_of(answer.choice) if answer else None


@dataclass(frozen=True)
class Bar:
    key: str
    label: str
    count: int
    percent: float  # of the answers
    right: bool  # known only once revealed
    common_wrong: bool


@dataclass(frozen=True)
class Histogram:
    """The answers so far, counted by choice (no names)."""

    question: ClassQuestion
    bars: list[Bar]
    total: int

    @property
    def revealed(self) -> bool:
        return self.question.status == ClassQuestion.Status.REVEALED

    @property
    def right_count(self) -> int:
        return sum(bar.count for bar in self.bars if bar.right)

    @property
    def right_percent(self) -> float:
        return self.right_count / self.total * 100 if self.total else 0.0


def histogram(question: ClassQuestion, counts: Mapping[str, int] | None = None) -> Histogram:
    """The answers to the question counted by choice (``counts``, else as stored)."""
    if counts is None:
        counts = dict(
            question.answers.values_list("choice")
            .annotate(n=Count("pk"))
            .values_list("choice", "n")
        )
    total = sum(counts.values())
    revealed = question.status == ClassQuestion.Status.REVEALED
    wrong_counts = [counts.get(key, 0) for key in question.choice_keys if key not in question.right]
    most_wrong = max(wrong_counts, default=0)
    bars = []
    for key, label in question.choices:
        count = counts.get(key, 0)
        right = revealed and key in question.right
        common = (
            revealed
            and not right
            and count > 0
            and (count == most_wrong or count >= COMMON_WRONG_SHARE * total)
        )
        bars.append(Bar(key, label, count, count / total * 100 if total else 0.0, right, common))
    return Histogram(question, bars, total)


@dataclass
class LiveCount:
    """An instructor connection's count of one question's answers while they come: read
    from the database once, then kept from the answers it hears of. Each answer is known
    by its id, so one both read and heard of counts once."""

    question: ClassQuestion
    choices: dict[int, str]  # answer id -> choice

    @classmethod
    def read(cls, question_id: int) -> LiveCount:
        question = ClassQuestion.objects.get(pk=question_id)
        return cls(question, dict(question.answers.values_list("pk", "choice")))

    def add(self, answer_id: int, choice: str) -> None:
        self.choices[answer_id] = choice

    def frame(self) -> str:
        """The instructor's histogram, drawn without asking the database."""
        counts: dict[str, int] = {}
        for choice in self.choices.values():
            counts[choice] = counts.get(choice, 0) + 1
        counted = histogram(self.question, counts)
        return render_to_string("classroom/question.html#results", {"histogram": counted})


def instructor_group(code: str) -> str:
    """The instructor's connections to a class: they hear of each answer."""
    return f"class-{code}-instructor"


def answered_message(answer: ClassAnswer) -> dict[str, Any]:
    """What the instructor's connections hear of an answer (no name: its id and choice)."""
    return {
        "type": "class.answered",
        "question": answer.question_id,
        "answer": answer.pk,
        "choice": answer.choice,
    }


def tell_instructor(code: str, answer: ClassAnswer) -> None:
    """From a view: a follower has answered (the instructor's histogram is drawn again)."""
    layer = get_channel_layer()
    if layer is not None:
        async_to_sync(layer.group_send)(instructor_group(code), answered_message(answer))


def question_frame(question: ClassQuestion) -> str:
    """The question as every follower sees it now, rendered once for the class. A new
    question also clears the line that said a follower's answer to the one before."""
    context = {
        "question": question,
        "histogram": histogram(question),
        "code": question.session.code,
    }
    frame = render_to_string("classroom/question.html#follower", context)
    if question.status == ClassQuestion.Status.OPEN:
        frame += render_to_string("classroom/question.html#my_answer", {})
    return frame


def answered_frame(code: str, question: ClassQuestion, label: str) -> str:
    """What a follower who has just answered sees: their answer, and no form."""
    context = {"question": question, "my_answer": label, "code": code}
    return render_to_string("classroom/question.html#follower", context) + render_to_string(
        "classroom/question.html#my_answer", context
    )
