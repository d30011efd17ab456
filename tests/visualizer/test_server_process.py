"""How long a server subprocess gets to start: a setting, checked when read."""

from __future__ import annotations

import pytest

from visualizer.server_process import DaphneServer, startup_timeout_s


def test_it_gives_a_server_30_s_to_start_by_default(monkeypatch):
    monkeypatch.delenv("SERVER_START_TIMEOUT_S", raising=False)
    assert startup_timeout_s() == 30


def test_it_gives_a_server_the_time_the_setting_says(monkeypatch):
    monkeypatch.setenv("SERVER_START_TIMEOUT_S", "90.5")
    assert startup_timeout_s() == 90.5
    assert DaphneServer().startup_timeout == 90.5
    assert DaphneServer(startup_timeout=5).startup_timeout == 5


@pytest.mark.parametrize("value", ["soon", "0", "-3", "inf", "nan"])
def test_it_refuses_a_setting_that_is_not_a_time(monkeypatch, value):
    monkeypatch.setenv("SERVER_START_TIMEOUT_S", value)
    with pytest.raises(
        ValueError,
        match=f"SERVER_START_TIMEOUT_S must be a number of seconds above 0, not '{value}'",
    ):
        startup_timeout_s()
