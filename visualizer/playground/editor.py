"""What the scenario page's "Edit this view" panel shows: the code to edit, the run's
fields, the playground's mode, and any problems of the last try, each at its line."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.template.loader import render_to_string

from tracer.events import EditedCode
from visualizer.playground.checks import ALLOWED_MODULES, MAX_SOURCE_BYTES, Problem
from visualizer.playground.editable import starting_code
from visualizer.playground.forms import EditForm
from visualizer.playground.sandbox import ModeState, current_mode
from visualizer.playground.suggestions import (
    Suggestion,
    get_suggestion,
    suggested_code,
    suggestion_problem,
    suggestions_for,
)
from visualizer.scenarios.catalog import Scenario, get_scenario
from visualizer.traces.pages import RUN_DEFAULTS


@dataclass(frozen=True)
class ProblemLine:
    """A problem, with the text of its line (what the page shows without JavaScript)."""

    problem: Problem
    text: str


@dataclass(frozen=True)
class ClassCode:
    """The code a class's followers see in their read-only editor: the page's, or the
    instructor's as they type it (``typed``), not run yet."""

    scenario: str
    text: str
    typed: bool = False

    @property
    def lines(self) -> list[str]:
        return self.text.splitlines()


def class_code_frame(scenario: object, text: object) -> str:
    """The followers' read-only editor with the instructor's code as they type it, for
    the class socket to send (rendered once, escaped); ValueError says what is wrong."""
    if not isinstance(scenario, str) or get_scenario(scenario) is None:
        raise ValueError("The code must name a scenario of this site.")
    if not isinstance(text, str):
        raise ValueError("The code must be text.")
    size = len(text.encode(errors="replace"))
    if size > MAX_SOURCE_BYTES:
        raise ValueError(
            f"The code is {size:,} bytes; at most {MAX_SOURCE_BYTES:,}: the class sees it "
            "once it is shorter."
        )
    code = ClassCode(scenario, text, typed=True)
    return render_to_string("playground/editor.html#class_code", {"class_code": code, "oob": True})


@dataclass
class Editor:
    form: EditForm
    mode: ModeState
    problems: list[ProblemLine] = field(default_factory=list)
    stopped: str = ""
    # The code shown is the code of the recording on the page (an edited run).
    edited: bool = False
    # The scenario's suggested edits, and the one whose code is shown, if one is.
    suggestions: tuple[Suggestion, ...] = ()
    suggestion: Suggestion | None = None
    # Why the suggested edit the address asked for is not shown.
    suggestion_error: str = ""
    # On a class follower's page: the code the instructor has typed there (not run yet).
    instructor_typed: str | None = None

    @property
    def view_name(self) -> str:
        return self.form.scenario.view.__name__

    @property
    def open(self) -> bool:
        return bool(
            self.problems or self.stopped or self.edited or self.suggestion or self.suggestion_error
        )

    @property
    def class_code(self) -> ClassCode:
        """The code a follower's read-only editor starts with: what the instructor has
        typed on this page, if anything, else this page's."""
        if self.instructor_typed is not None:
            return ClassCode(self.form.scenario.slug, self.instructor_typed, typed=True)
        return ClassCode(self.form.scenario.slug, str(self.form["source"].value() or ""))

    @property
    def suggested_codes(self) -> dict[str, str]:
        """Each suggested edit's code, for the enhanced editor to load without a reload."""
        scenario = self.form.scenario
        return {s.slug: suggested_code(scenario, s.slug) for s in self.suggestions}

    @property
    def allowed_modules(self) -> list[str]:
        return [module for module in ALLOWED_MODULES if module != "__future__"]

    @property
    def error_lines(self) -> str:
        """The lines with a problem, for the enhanced editor to mark."""
        lines = sorted({p.problem.line for p in self.problems if p.problem.line})
        return ",".join(str(line) for line in lines)


def editor_for(
    scenario: Scenario,
    code: EditedCode | None = None,
    *,
    form: EditForm | None = None,
    problems: list[Problem] | None = None,
    stopped: str = "",
    suggestion: str | None = None,
) -> Editor:
    """The panel: with ``suggestion`` (the address's ``?suggestion=``), that suggested
    edit's code; for a recording of an edited run of this scenario, its code and errors;
    after a failed try, what was sent and what went wrong; else the scenario's own code."""
    edited = code is not None and code["view"] == scenario.view.__name__
    chosen = get_suggestion(scenario, suggestion) if suggestion else None
    suggestion_error = ""
    if suggestion and chosen is None:
        problem = suggestion_problem(scenario.slug, suggestion)
        suggestion_error = f"Not loaded: {problem}. The code below is not changed."
    if chosen is not None:
        edited = False
    if form is None:
        if chosen is not None:
            source = suggested_code(scenario, chosen.slug)
        elif code is not None and edited:
            source = code["text"]
        else:
            source = starting_code(scenario)
        form = EditForm(scenario, initial={**RUN_DEFAULTS, "source": source})
    if problems is None and code is not None and edited:
        problems = [Problem(error["line"], error["message"]) for error in code["errors"]]
        stopped = stopped or code.get("stopped", "")
    text = str(form["source"].value() or "").splitlines()
    return Editor(
        form=form,
        mode=current_mode(),
        problems=[ProblemLine(p, _line(text, p.line)) for p in problems or []],
        stopped=stopped,
        edited=edited,
        suggestions=suggestions_for(scenario),
        suggestion=chosen,
        suggestion_error=suggestion_error,
    )


def _line(lines: list[str], number: int | None) -> str:
    if number is None or not 1 <= number <= len(lines):
        return ""
    return lines[number - 1]
