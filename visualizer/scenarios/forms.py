"""What a visitor asks to run, as Django forms: the one way in for every input that sets up
a run (the scenario page's form, its WebSocket, the lab, ``manage.py trace``), so that each
limit is written once and a bad value gets the same message everywhere."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from django import forms
from django.core.exceptions import ValidationError

from visualizer.scenarios.catalog import Scenario
from visualizer.scenarios.scenario_views import MAX_CPU_WORK, MAX_DELAY_MS, MAX_FILE_KB

MAX_RUN_REQUESTS = 20

# The scenario views' parameters: the label of each, and its largest value.
PARAMETERS: dict[str, tuple[str, int]] = {
    "delay_ms": ("I/O delay (ms)", MAX_DELAY_MS),
    "work": ("CPU work (primes below)", MAX_CPU_WORK),
    "size_kb": ("File size (KB)", MAX_FILE_KB),
}


class WholeNumberField(forms.IntegerField):
    """A whole number from ``low`` to ``high``, written in ASCII digits (or a JSON number).
    Whatever is wrong with a value, the message names the field and its range."""

    def __init__(self, name: str, low: int, high: int, **options: Any) -> None:
        self.message = f"{name} must be a whole number from {low} to {high}."
        options.setdefault("required", False)
        super().__init__(
            min_value=low,
            max_value=high,
            error_messages={c: self.message for c in ("invalid", "min_value", "max_value")},
            **options,
        )
        self.widget.attrs["required"] = True

    def to_python(self, value: Any) -> int | None:
        if isinstance(value, str):
            value = value.strip()
            if value and not (value.isascii() and value.isdigit() and len(value) <= 12):
                raise ValidationError(self.message, code="invalid")
        elif value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise ValidationError(self.message, code="invalid")
        number: int | None = super().to_python(value)
        return number


class RunForm(forms.Form):
    """A run of a scenario: how many concurrent requests, and the view's parameters (blank:
    one request, the view's own defaults)."""

    def __init__(
        self,
        scenario: Scenario,
        data: Mapping[str, Any] | None = None,
        *,
        max_requests: int = MAX_RUN_REQUESTS,
        initial: Mapping[str, Any] | None = None,
        shown: Sequence[str] | None = None,
    ) -> None:
        """``shown``: the parameters to have fields for, to render a form that offers
        them all (the lab's); the scenario's own are read and checked all the same."""
        super().__init__(data, initial=dict(initial or {}))
        self.scenario = scenario
        self.fields["requests"] = WholeNumberField(
            "requests", 1, max_requests, label="Concurrent requests"
        )
        for name in shown if shown is not None else scenario.parameters:
            label, high = PARAMETERS[name]
            self.fields[name] = WholeNumberField(name, 0, high, label=label)

    def error_text(self) -> str:
        """Every problem, one sentence each (what the WebSocket and the CLI say)."""
        return " ".join(str(message) for errors in self.errors.values() for message in errors)

    def checked(self) -> tuple[int, dict[str, int]]:
        """The request count and the view's parameters given; ValueError says what is
        wrong."""
        if not self.is_valid():
            raise ValueError(self.error_text())
        requests = self.cleaned_data["requests"] or 1
        params = {
            name: value
            for name in self.scenario.parameters
            if (value := self.cleaned_data.get(name)) is not None
        }
        return requests, params
