"""The edit form: the code of the view, and the run's values (the scenario page's RunForm,
with the playground's own request limit)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django import forms

from visualizer.playground.checks import MAX_SOURCE_BYTES
from visualizer.scenarios.catalog import Scenario
from visualizer.scenarios.forms import RunForm

# Its fields' names and ids start with this: the scenario page's Run form has the same
# fields beside it.
PREFIX = "edit"
MAX_EDITED_REQUESTS = 10


class EditForm(RunForm):
    def __init__(
        self,
        scenario: Scenario,
        data: Mapping[str, Any] | None = None,
        *,
        initial: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(scenario, data, max_requests=MAX_EDITED_REQUESTS, initial=initial)
        self.prefix = PREFIX
        # Named apart from the Run form's fields beside them (for screen readers too).
        for field in self.fields.values():
            field.label = f"{field.label}, edited run"
        self.fields["source"] = forms.CharField(
            label="The view's code",
            strip=False,
            max_length=MAX_SOURCE_BYTES,
            error_messages={
                "required": "The code is empty.",
                "max_length": f"The code is longer than {MAX_SOURCE_BYTES:,} characters.",
            },
            widget=forms.Textarea(
                attrs={
                    "rows": 24,
                    "cols": 88,
                    "spellcheck": "false",
                    "autocapitalize": "off",
                    "autocomplete": "off",
                    "wrap": "off",
                    "class": "code-editor",
                }
            ),
        )

    @property
    def run_fields(self) -> list[forms.BoundField]:
        return [self[name] for name in self.fields if name != "source"]

    def source(self) -> str:
        return str(self.cleaned_data["source"]).replace("\r\n", "\n")
