"""One way in: the run form, the WebSocket's run message, the lab and the CLI read their
values with the same forms, so a bad value gets the same message everywhere."""

from __future__ import annotations

import re

import pytest
from django.core.management import CommandError, call_command

from visualizer.lab.forms import LabForm
from visualizer.lab.runs import LabRun
from visualizer.scenarios.catalog import SCENARIOS
from visualizer.scenarios.forms import RunForm
from visualizer.scenarios.runs import RunRequest

ASYNC_IO = SCENARIOS["async-io"]
DELAY = "delay_ms must be a whole number from 0 to 10000."


@pytest.mark.parametrize("value", ["soon", "-1", "10001", "1.5", "²", " ", True, 2.0, [3], None])
def test_every_bad_delay_gets_one_message_naming_the_field_and_its_range(value):
    if value in (" ", None):  # blank: the view's own default
        assert RunForm(ASYNC_IO, {"delay_ms": value}).checked() == (1, {})
        return
    form = RunForm(ASYNC_IO, {"delay_ms": value})
    assert not form.is_valid()
    assert form.errors["delay_ms"] == [DELAY]
    with pytest.raises(ValueError, match=re.escape(DELAY)):
        RunRequest.from_values(ASYNC_IO, {"delay_ms": value})  # the WebSocket's way in


def test_a_run_takes_only_its_scenarios_parameters():
    assert RunForm(ASYNC_IO, {"requests": "3", "delay_ms": 50, "work": "9"}).checked() == (
        3,
        {"delay_ms": 50},
    )
    form = RunForm(ASYNC_IO, {})
    assert [field.name for field in form] == ["requests", "delay_ms"]
    rendered = str(form["requests"])
    assert 'min="1"' in rendered and 'max="20"' in rendered  # the limit, written once


def test_the_lab_and_the_cli_say_the_same_about_the_same_value():
    form = LabForm(ASYNC_IO, {"requests": "201"})
    assert not form.is_valid()
    message = form.errors["requests"][0]
    assert message == "requests must be a whole number from 1 to 200."
    with pytest.raises(ValueError, match=re.escape(message)):
        LabRun.from_values(ASYNC_IO, {"requests": "201"})
    with pytest.raises(CommandError, match=re.escape(message)):
        call_command("trace", "async-io", "--requests", "201")
    with pytest.raises(CommandError, match=r"threads must be a whole number from 1 to 64\."):
        call_command("trace", "async-io", "--threads", "65")
    with pytest.raises(ValueError, match=r"server must be asgi or wsgi\."):
        LabRun.from_values(ASYNC_IO, {"server": "cgi"})


def test_the_cli_refuses_a_parameter_the_scenario_does_not_take():
    with pytest.raises(CommandError, match="async-io takes no --work"):
        call_command("trace", "async-io", "--work", "10")
