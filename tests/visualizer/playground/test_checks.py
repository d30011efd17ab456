"""The checks made in the server before edited code may run: nothing of it executes."""

from __future__ import annotations

import asyncio

import pytest

from visualizer.playground import runs
from visualizer.playground.checks import MAX_SOURCE_BYTES, Problem, check_source
from visualizer.playground.editable import starting_code
from visualizer.scenarios.catalog import SCENARIOS
from visualizer.scenarios.runs import RunRequest

VIEW = "async def async_sleep(request):\n    return None\n"


@pytest.mark.parametrize("slug", SCENARIOS)
def test_every_scenarios_own_code_passes(slug):
    scenario = SCENARIOS[slug]
    code = starting_code(scenario)
    assert check_source(code, scenario.view.__name__) == []
    assert f"def {scenario.view.__name__}(request: HttpRequest)" in code


def test_a_syntax_error_is_reported_at_its_line():
    source = "import asyncio\n\n" + VIEW + "    if True\n        pass\n"
    assert check_source(source, "async_sleep") == [Problem(5, "expected ':' (column 12)")]


@pytest.mark.parametrize(
    ("statement", "module"),
    [
        ("import os", "os"),
        ("import subprocess as sp", "subprocess"),
        ("from os import path", "os"),
        ("import urllib", "urllib"),
        ("from importlib import import_module", "importlib"),
        ("from django.db.backends import utils", None),  # django.db is allowed, and below it
        ("from urllib import request", None),
        ("import urllib.request", None),
        ("from asgiref.sync import sync_to_async", None),
    ],
)
def test_imports_are_checked_against_the_allow_list(statement, module):
    source = f"import asyncio\n{statement}\n\n" + VIEW
    problems = check_source(source, "async_sleep")
    if module is None:
        assert problems == []
    else:
        assert problems == [
            Problem(
                2,
                f"import of {module} is not allowed here (the modules the playground allows "
                "are listed below the editor).",
            )
        ]


def test_an_import_inside_a_function_is_checked_too():
    source = "async def async_sleep(request):\n    import ctypes\n    return None\n"
    [problem] = check_source(source, "async_sleep")
    assert problem.line == 2 and "ctypes" in problem.message


def test_a_relative_import_is_refused():
    assert check_source("from . import models\n" + VIEW, "async_sleep") == [
        Problem(1, "Relative imports are not allowed.")
    ]


def test_the_view_must_be_defined():
    assert check_source("async def other(request):\n    pass\n", "async_sleep") == [
        Problem(None, "The code must define the view function async_sleep.")
    ]


def test_code_over_the_size_limit_is_not_even_parsed():
    source = VIEW + "(" * MAX_SOURCE_BYTES
    assert check_source(source, "async_sleep") == [
        Problem(None, f"The code is {len(source):,} bytes; at most {MAX_SOURCE_BYTES:,}.")
    ]


@pytest.mark.parametrize(
    "source",
    ["x = 1\0\n", "x = " + "-" * 60_000 + "1\n", "x = " + "[" * 300 + "]" * 300 + "\n"],
    ids=["null byte", "deep unary", "deep brackets"],
)
def test_hostile_syntax_is_refused_without_breaking_the_check(source):
    [problem] = check_source(source + VIEW, "async_sleep")
    assert problem.message


def test_code_that_fails_a_check_is_never_sent_to_a_worker(monkeypatch):
    def no_worker(*args, **kwargs):
        raise AssertionError("a worker was started")

    monkeypatch.setattr(runs, "run_worker", no_worker)
    source = "import os\n\n" + VIEW.replace("return None", "os.system('true')")
    result = asyncio.run(
        runs.run_edited(SCENARIOS["async-sleep"], source, RunRequest(1, {"delay_ms": 0}))
    )
    assert result.document is None
    assert [problem.line for problem in result.problems] == [1]
