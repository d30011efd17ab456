"""Practice questions on when async makes a Django view serve more requests, and when not.

The questions are data: one TOML file a level in ``visualizer/learning/practice_bank/`` (how to add
one: docs/practice-bank.md). This module reads them once, at import (the app imports it
when Django starts), and checks every entry on the way in, so a bad one stops the start
with a message that names its file, its question and the field, rather than showing a
broken page to a student.
"""

from __future__ import annotations

import random
import re
import tomllib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from importlib.resources import files
from importlib.resources.abc import Traversable
from typing import Any, NoReturn
from urllib.parse import urlencode


@dataclass(frozen=True)
class Choice:
    text: str
    correct: bool
    why: str  # one sentence: why this choice is right or wrong


@dataclass(frozen=True)
class EditLink:
    url: str  # the scenario page, the edit's code in its editor
    title: str  # the suggested edit's title


@dataclass(frozen=True)
class PracticeQuestion:
    slug: str  # url-safe and unique
    level: str  # one of LEVELS: the name of the file it is in
    prompt: str
    choices: tuple[Choice, ...]  # 3 or 4, exactly one correct
    hint: str
    solution: tuple[str, ...]  # 2-5 steps
    mistakes: tuple[str, ...]  # the common mistakes the question targets, 1-3
    try_it: str = ""  # a page of this site that shows the answer on real runs, or ""
    # The scenario page with a suggested edit's code in its editor.
    edit: EditLink | None = None
    # The tests in tests/visualizer/learning/test_practice_truth.py that check its facts.
    checks: tuple[str, ...] = ()


LEVELS = ("easy", "medium", "hard")
BANK = files("visualizer.learning") / "practice_bank"

# The rules test_practice.py also holds the bank to, kept here so a bad entry fails at load.
CHOICES, SOLUTION_STEPS, MISTAKES = (3, 4), (2, 5), (1, 3)
SLUG = re.compile(r"[a-z0-9-]+")
QUESTION_KEYS = (
    "slug",
    "prompt",
    "hint",
    "solution",
    "mistakes",
    "try_it",
    "edit",
    "checks",
    "choice",
)
EDIT_KEYS = ("scenario", "suggestion")
CHOICE_KEYS = ("text", "correct", "why")


class BankError(ValueError):
    """A bad entry in the bank; the message names the file, the question and the field."""


@dataclass(frozen=True)
class _Place:
    """Where in the bank a value comes from, for the error message."""

    file: str
    question: str = ""  # "'slug'", or "3" (its position) while the slug is not known

    def fail(self, field: str, problem: str) -> NoReturn:
        where = f"practice bank {self.file}"
        if self.question:
            where += f", question {self.question}"
        raise BankError(f"{where}: {field}: {problem}" if field else f"{where}: {problem}")

    def get(self, table: Mapping[str, Any], key: str, field: str) -> Any:
        if key not in table:
            self.fail(field, "missing")
        return table[key]

    def text(self, field: str, value: object) -> str:
        """A text. Line breaks and runs of spaces fold into one space, so that a long
        text can be wrapped over lines in a TOML multi-line string."""
        if not isinstance(value, str):
            self.fail(field, f"must be a string, not {_kind(value)}")
        folded = " ".join(value.split())
        if not folded:
            self.fail(field, "must not be empty")
        return folded

    def array(self, field: str, value: object, sizes: tuple[int, int] | None = None) -> list[Any]:
        if not isinstance(value, list):
            self.fail(field, f"must be an array, not {_kind(value)}")
        if sizes and not sizes[0] <= len(value) <= sizes[1]:
            self.fail(field, f"{sizes[0]} to {sizes[1]} needed, found {len(value)}")
        return value

    def table(self, field: str, value: object, keys: tuple[str, ...]) -> dict[str, Any]:
        if not isinstance(value, dict):
            self.fail(field, f"must be a table, not {_kind(value)}")
        # A misspelt key would otherwise be dropped without a word.
        for key in value:
            if key not in keys:
                inner = f"{field}.{key}" if field else key
                self.fail(inner, f"not a known field (known: {', '.join(keys)})")
        return value


def _kind(value: object) -> str:
    kinds = {dict: "a table", list: "an array", str: "a string", bool: "a boolean"}
    return kinds.get(type(value), "a number" if isinstance(value, int | float) else "a date")


def _scenario(slug: str) -> str:
    return f"/scenarios/{slug}/"


def _lab(
    slug: str,
    *,
    requests: int,
    server: str = "asgi",
    workers: int = 1,
    threads: int = 1,
    **view_parameters: int,
) -> str:
    """A lab link set up to run ``requests`` concurrent requests of a scenario."""
    query = {
        "scenario": slug,
        "requests": requests,
        **view_parameters,
        "server": server,
        "workers": workers,
        "threads": threads,
    }
    return f"/lab/?{urlencode(query)}"


def _try_it(place: _Place, value: object) -> str:
    """``{ scenario = "x" }`` -> the scenario's page; ``{ lab = "x", requests = 20, ... }``
    -> the lab set up for it: ``server`` is "asgi" (the default) or "wsgi", and every other
    key (workers, threads, and the view's parameters such as delay_ms) a whole number."""
    if not isinstance(value, dict):
        place.fail("try_it", f"must be a table, not {_kind(value)}")
    if ("scenario" in value) == ("lab" in value):
        place.fail("try_it", "needs either scenario or lab")
    if "scenario" in value:
        link = place.table("try_it", value, ("scenario",))
        return _scenario(place.text("try_it.scenario", link["scenario"]))
    slug = place.text("try_it.lab", value["lab"])
    server = value.get("server", "asgi")
    if server not in ("asgi", "wsgi"):
        place.fail("try_it.server", f"must be asgi or wsgi, not {server!r}")
    numbers: dict[str, int] = {}
    for key, number in value.items():
        if key in ("lab", "server"):
            continue
        if type(number) is not int:  # not isinstance: a bool is an int to it
            place.fail(f"try_it.{key}", f"must be a whole number, not {_kind(number)}")
        numbers[key] = number
    if "requests" not in numbers:
        place.fail("try_it.requests", "missing")
    return _lab(slug, server=server, **numbers)


def _edit(place: _Place, value: object) -> EditLink:
    """``{ scenario = "x", suggestion = "y" }`` -> scenario x's page with its suggested edit
    y in the editor (visualizer/playground/suggestions.py); an unknown one is an error."""
    # Imported here: the suggestions read the scenarios' code, which needs Django set up.
    from visualizer.playground.suggestions import get_suggestion, suggestion_problem
    from visualizer.scenarios.catalog import SCENARIOS

    link = place.table("edit", value, EDIT_KEYS)
    scenario = place.text("edit.scenario", place.get(link, "scenario", "edit.scenario"))
    suggestion = place.text("edit.suggestion", place.get(link, "suggestion", "edit.suggestion"))
    problem = suggestion_problem(scenario, suggestion)
    if problem:
        place.fail("edit", problem)
    chosen = get_suggestion(SCENARIOS[scenario], suggestion)
    assert chosen is not None
    url = f"{_scenario(scenario)}?{urlencode({'suggestion': suggestion})}#edit"
    return EditLink(url, chosen.title)


def _checks(place: _Place, value: object) -> tuple[str, ...]:
    names = place.array("checks", value)
    for index, name in enumerate(names):
        if not (isinstance(name, str) and name.isidentifier()):
            place.fail(f"checks[{index}]", f"must be a test's name, not {name!r}")
    return tuple(names)


def _choices(place: _Place, value: object) -> tuple[Choice, ...]:
    choices: list[Choice] = []
    for index, entry in enumerate(place.array("choice", value, CHOICES)):
        field = f"choice[{index}]"
        table = place.table(field, entry, CHOICE_KEYS)
        correct = table.get("correct", False)
        if not isinstance(correct, bool):
            place.fail(f"{field}.correct", f"must be true or false, not {_kind(correct)}")
        text = place.text(f"{field}.text", place.get(table, "text", f"{field}.text"))
        if any(choice.text == text for choice in choices):
            place.fail(f"{field}.text", "the same as another choice's")
        why = place.text(f"{field}.why", place.get(table, "why", f"{field}.why"))
        choices.append(Choice(text, correct, why))
    right = sum(choice.correct for choice in choices)
    if right != 1:
        place.fail("choice", f"exactly one needs correct = true, found {right}")
    return tuple(choices)


def _question(place: _Place, level: str, value: object) -> PracticeQuestion:
    if not isinstance(value, dict):
        place.fail("", f"must be a table, not {_kind(value)}")
    slug = place.text("slug", place.get(value, "slug", "slug"))
    if not SLUG.fullmatch(slug):
        place.fail("slug", f"only a-z, 0-9 and - are allowed, not {slug!r}")
    place = _Place(place.file, repr(slug))
    table = place.table("", value, QUESTION_KEYS)

    def text(key: str) -> str:
        return place.text(key, place.get(table, key, key))

    def texts(key: str, sizes: tuple[int, int]) -> tuple[str, ...]:
        items = place.array(key, place.get(table, key, key), sizes)
        return tuple(place.text(f"{key}[{index}]", item) for index, item in enumerate(items))

    return PracticeQuestion(
        slug=slug,
        level=level,
        prompt=text("prompt"),
        choices=_choices(place, place.get(table, "choice", "choice")),
        hint=text("hint"),
        solution=texts("solution", SOLUTION_STEPS),
        mistakes=texts("mistakes", MISTAKES),
        try_it=_try_it(place, table["try_it"]) if "try_it" in table else "",
        edit=_edit(place, table["edit"]) if "edit" in table else None,
        checks=_checks(place, table["checks"]) if "checks" in table else (),
    )


def _read_level(entry: Traversable, level: str) -> Iterator[PracticeQuestion]:
    place = _Place(entry.name)
    try:
        with entry.open("rb") as handle:
            data = tomllib.load(handle)
    except tomllib.TOMLDecodeError as error:
        place.fail("", f"not valid TOML: {error}")
    place.table("", data, ("question",))
    if "question" not in data:
        place.fail("", "no [[question]] tables")
    for number, table in enumerate(place.array("question", data["question"]), start=1):
        yield _question(_Place(entry.name, str(number)), level, table)


def load_bank(
    folder: Traversable = BANK, *, checks: Mapping[str, Callable[..., object]] | None = None
) -> tuple[PracticeQuestion, ...]:
    """Every question in ``folder``'s level files, level by level, each file in its own
    order. With ``checks`` (name -> test function), a check a question names must be there."""
    found = {entry.name: entry for entry in folder.iterdir() if entry.name.endswith(".toml")}
    names = ", ".join(f"{level}.toml" for level in LEVELS)
    for name in found:
        if name.removesuffix(".toml") not in LEVELS:
            _Place(name).fail("", f"not a level; a level's file is one of {names}")
    questions: list[PracticeQuestion] = []
    file_of: dict[str, str] = {}
    for level in LEVELS:
        entry = found.get(f"{level}.toml")
        if entry is None:
            continue
        for question in _read_level(entry, level):
            place = _Place(entry.name, repr(question.slug))
            if question.slug in file_of:
                place.fail("slug", f"already the slug of a question in {file_of[question.slug]}")
            for name in question.checks:
                if checks is not None and name not in checks:
                    place.fail("checks", f"no truth check named {name!r}")
            file_of[question.slug] = entry.name
            questions.append(question)
    if not questions:
        _Place(str(folder)).fail("", f"no questions (expected {names})")
    return tuple(questions)


QUESTIONS: tuple[PracticeQuestion, ...] = load_bank()

_BY_SLUG = {question.slug: question for question in QUESTIONS}


def display_order(question: PracticeQuestion) -> list[int]:
    """The order to show a question's choices in: fixed for each question (so a page
    reads the same every time) but not the bank's, where the right answer comes first."""
    order = list(range(len(question.choices)))
    random.Random(question.slug).shuffle(order)
    return order


def get_question(slug: str) -> PracticeQuestion | None:
    return _BY_SLUG.get(slug)


def questions_at(level: str) -> list[PracticeQuestion]:
    """The questions of one level, in bank order (none for an unknown level)."""
    return [question for question in QUESTIONS if question.level == level]
