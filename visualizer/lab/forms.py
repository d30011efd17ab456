"""The lab's form: a run of a scenario (visualizer/scenarios/forms.py) with more requests,
on a server of the student's choosing. ``manage.py trace`` takes the same values."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django import forms

from visualizer.scenarios.catalog import Scenario
from visualizer.scenarios.forms import PARAMETERS, RunForm, WholeNumberField

MAX_LAB_REQUESTS = 200
MAX_THREADS = 64
MAX_WORKERS = 8
SERVERS = {"asgi": "ASGI (Daphne)", "wsgi": "WSGI (gunicorn)"}
# The lab form's numbers when nothing else is asked for.
NUMBER_DEFAULTS = {"requests": 20, "delay_ms": 300, "work": 20000, "workers": 1, "threads": 1}
LAB_PARAMETERS = ("delay_ms", "work")
ORDER = tuple(PARAMETERS)


class LabForm(RunForm):
    def __init__(
        self,
        scenario: Scenario,
        data: Mapping[str, Any] | None = None,
        *,
        initial: Mapping[str, Any] | None = None,
    ) -> None:
        # The page offers the I/O and CPU parameters whatever the scenario chosen.
        super().__init__(
            scenario,
            data,
            max_requests=MAX_LAB_REQUESTS,
            initial=initial,
            shown=sorted({*LAB_PARAMETERS, *scenario.parameters}, key=ORDER.index),
        )
        self.fields["server"] = forms.ChoiceField(
            choices=SERVERS.items(),
            required=False,
            error_messages={"invalid_choice": "server must be asgi or wsgi."},
        )
        self.fields["workers"] = WholeNumberField("workers", 1, MAX_WORKERS, label="WSGI workers")
        self.fields["threads"] = WholeNumberField("threads", 1, MAX_THREADS, label="threads each")

    def checked_lab(self) -> tuple[int, dict[str, int], str, int, int]:
        """The request count (blank: the lab's default), the view's parameters, the server,
        its threads and workers; ValueError says what is wrong."""
        _, params = self.checked()
        data = self.cleaned_data
        return (
            data["requests"] or NUMBER_DEFAULTS["requests"],
            params,
            data["server"] or "asgi",
            data["threads"] or NUMBER_DEFAULTS["threads"],
            data["workers"] or NUMBER_DEFAULTS["workers"],
        )
