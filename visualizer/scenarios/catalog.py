"""The scenarios: which real view each one runs, what it teaches (read from scenarios.toml),
and its source code."""

from __future__ import annotations

import inspect
import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from typing import Any, NoReturn

from django.urls import reverse

from tracer.instrumentation import register_view
from visualizer.scenarios import scenario_views as views


@dataclass(frozen=True)
class Scenario:
    slug: str
    title: str
    summary: str
    view: Callable[..., Any]
    # Functions the view calls, shown below it.
    helpers: tuple[Callable[..., Any], ...]
    # Query parameters the view reads, and their meaning.
    parameters: tuple[str, ...]
    # The summary card: the few sentences a student should keep.
    keep: tuple[str, ...] = ()

    @property
    def run_url(self) -> str:
        """Where the real view answers."""
        return reverse(f"run-{self.slug}")

    def source(self) -> str:
        """The real source of the view and its helpers, as the server runs it."""
        return "\n\n".join(inspect.getsource(function) for function in (self.view, *self.helpers))

    def source_start_line(self) -> int:
        return inspect.getsourcelines(self.view)[1]


# The table itself is data: scenarios.toml beside this module.
TABLE = resources.files("visualizer.scenarios") / "scenarios.toml"
SLUG = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
FIELDS = ("slug", "title", "summary", "view", "helpers", "parameters", "keep")


class CatalogError(ValueError):
    """A bad entry in scenarios.toml; the message names the file, the scenario and the
    field."""


def _fail(where: str, field: str, problem: str) -> NoReturn:
    raise CatalogError(f"{TABLE.name}, {where}: {field}: {problem}")


def _text(where: str, field: str, value: object) -> str:
    if not isinstance(value, str) or not value.split():
        _fail(where, field, "must be a non-empty string")
    return " ".join(value.split())


def _texts(where: str, field: str, value: object) -> tuple[str, ...]:
    if not isinstance(value, list):
        _fail(where, field, "must be a list of strings")
    return tuple(_text(where, f"{field}[{index}]", item) for index, item in enumerate(value))


def _function(where: str, field: str, name: object) -> Callable[..., Any]:
    function = getattr(views, name, None) if isinstance(name, str) else None
    if not inspect.isfunction(function) or function.__module__ != views.__name__:
        _fail(where, field, f"{name!r} is not a function of {views.__name__}")
    return function


def _scenario(number: int, table: object) -> Scenario:
    where = f"scenario {number}"
    if not isinstance(table, dict):
        _fail(where, "", "must be a table")
    if isinstance(table.get("slug"), str):
        where = f"scenario {table['slug']!r}"
    unknown = sorted(set(table) - set(FIELDS))
    if unknown:
        _fail(where, unknown[0], f"not a field (the fields are {', '.join(FIELDS)})")
    for name in FIELDS[:5]:
        if name not in table:
            _fail(where, name, "missing")
    slug = _text(where, "slug", table["slug"])
    if not SLUG.fullmatch(slug):
        _fail(where, "slug", "lower-case letters, digits and single hyphens only")
    helpers = table["helpers"]
    if not isinstance(helpers, list):
        _fail(where, "helpers", "must be a list of function names")
    return Scenario(
        slug=slug,
        title=_text(where, "title", table["title"]),
        summary=_text(where, "summary", table["summary"]),
        view=_function(where, "view", table["view"]),
        helpers=tuple(
            _function(where, f"helpers[{index}]", name) for index, name in enumerate(helpers)
        ),
        parameters=_texts(where, "parameters", table.get("parameters", [])),
        keep=_texts(where, "keep", table.get("keep", [])),
    )


def load_scenarios(text: str) -> dict[str, Scenario]:
    """The scenarios a scenarios.toml text describes, in its order (CatalogError if any
    entry is bad)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise CatalogError(f"{TABLE.name}: not valid TOML: {error}") from None
    entries = data.get("scenario")
    if set(data) != {"scenario"} or not isinstance(entries, list) or not entries:
        raise CatalogError(f"{TABLE.name}: must hold [[scenario]] tables and nothing else")
    scenarios: dict[str, Scenario] = {}
    for number, table in enumerate(entries, start=1):
        scenario = _scenario(number, table)
        if scenario.slug in scenarios:
            _fail(f"scenario {number}", "slug", f"{scenario.slug!r} is already used")
        scenarios[scenario.slug] = scenario
    return scenarios


SCENARIOS: dict[str, Scenario] = load_scenarios(TABLE.read_text(encoding="utf-8"))


def get_scenario(slug: str) -> Scenario | None:
    return SCENARIOS.get(slug)


def register_scenario_views() -> None:
    """Mark every scenario view for tracing (instrumented once tracing is enabled)."""
    for scenario in SCENARIOS.values():
        register_view(scenario.view, slug=scenario.slug, title=scenario.title)
