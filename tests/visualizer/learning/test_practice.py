"""The practice question bank: complete questions, valid links, and look-ups."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import pytest

from visualizer.lab.forms import MAX_LAB_REQUESTS, MAX_THREADS, MAX_WORKERS
from visualizer.learning.practice import (
    LEVELS,
    QUESTIONS,
    PracticeQuestion,
    get_question,
    questions_at,
)
from visualizer.scenarios.catalog import SCENARIOS
from visualizer.scenarios.scenario_views import MAX_CPU_WORK, MAX_DELAY_MS, MAX_FILE_KB

each_question = pytest.mark.parametrize(
    "question", QUESTIONS, ids=[question.slug for question in QUESTIONS]
)
LAB_LIMITS = {
    "requests": (1, MAX_LAB_REQUESTS),
    "delay_ms": (0, MAX_DELAY_MS),
    "work": (0, MAX_CPU_WORK),
    "size_kb": (0, MAX_FILE_KB),
    "workers": (1, MAX_WORKERS),
    "threads": (1, MAX_THREADS),
}


def test_it_has_at_least_15_questions_and_4_per_level():
    assert len(QUESTIONS) >= 15
    for level in LEVELS:
        assert len(questions_at(level)) >= 4, level


@each_question
def test_it_gives_every_question_a_known_level(question: PracticeQuestion):
    assert question.level in LEVELS


@each_question
def test_it_gives_every_question_a_prompt_hint_solution_and_mistakes(question: PracticeQuestion):
    assert question.prompt.strip()
    assert question.hint.strip()
    assert 2 <= len(question.solution) <= 5
    assert all(step.strip() for step in question.solution)
    assert 1 <= len(question.mistakes) <= 3
    assert all(mistake.strip() for mistake in question.mistakes)


@each_question
def test_it_offers_three_or_four_choices_with_exactly_one_correct(question: PracticeQuestion):
    assert 3 <= len(question.choices) <= 4
    assert sum(choice.correct for choice in question.choices) == 1
    assert len({choice.text for choice in question.choices}) == len(question.choices)


@each_question
def test_it_explains_every_choice(question: PracticeQuestion):
    for choice in question.choices:
        assert choice.text.strip()
        assert choice.why.strip(), choice.text


def test_it_uses_unique_url_safe_slugs():
    slugs = [question.slug for question in QUESTIONS]
    assert len(slugs) == len(set(slugs))
    for slug in slugs:
        assert re.fullmatch(r"[a-z0-9-]+", slug), slug


@each_question
def test_it_links_try_it_only_to_real_scenario_and_lab_pages(question: PracticeQuestion):
    if question.try_it == "":
        return
    page = re.match(r"/scenarios/([a-z0-9-]+)/", question.try_it)
    if page:
        assert page.group(1) in SCENARIOS
        return
    assert question.try_it.startswith("/lab/?")
    query = parse_qs(urlsplit(question.try_it).query)
    assert query["scenario"][0] in SCENARIOS


@each_question
def test_it_keeps_lab_links_within_the_lab_limits(question: PracticeQuestion):
    if not question.try_it.startswith("/lab/?"):
        return
    query = {name: values[0] for name, values in parse_qs(urlsplit(question.try_it).query).items()}
    scenario = SCENARIOS[query.pop("scenario")]
    assert query.pop("server", "asgi") in ("asgi", "wsgi")
    # A parameter the scenario's view does not read would be silently ignored.
    allowed = {"requests", "workers", "threads", *scenario.parameters}
    for name, value in query.items():
        assert name in allowed, name
        low, high = LAB_LIMITS[name]
        assert low <= int(value) <= high, name


def test_it_finds_a_question_by_slug():
    for question in QUESTIONS:
        assert get_question(question.slug) is question


def test_it_finds_no_question_for_an_unknown_slug():
    assert get_question("no-such-question") is None
    assert get_question("") is None


def test_it_lists_the_questions_of_a_level_in_bank_order():
    for level in LEVELS:
        expected = [question for question in QUESTIONS if question.level == level]
        assert questions_at(level) == expected
    assert sum(len(questions_at(level)) for level in LEVELS) == len(QUESTIONS)


def test_it_lists_no_questions_for_an_unknown_level():
    assert questions_at("expert") == []
