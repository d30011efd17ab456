"""Finding or installing the browser for the browser tests (visualizer/chromium.py)."""

from __future__ import annotations

import os
import stat

import pytest

from visualizer import chromium


@pytest.fixture(autouse=True)
def fresh_cache():
    chromium.chromium_executable.cache_clear()
    yield
    chromium.chromium_executable.cache_clear()


@pytest.fixture
def no_browser(monkeypatch):
    """A machine with no Chromium anywhere, and no Playwright build."""
    monkeypatch.delenv("CHROMIUM", raising=False)
    monkeypatch.setattr(chromium, "SYSTEM_CHROMIUMS", ())
    monkeypatch.setattr(chromium.shutil, "which", lambda name: None)
    monkeypatch.setattr(chromium, "_playwright_build_present", lambda: False)


def test_it_uses_the_chromium_named_in_the_environment(no_browser, monkeypatch, tmp_path):
    browser = tmp_path / "my-chromium"
    browser.write_text("#!/bin/sh\n")
    browser.chmod(browser.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("CHROMIUM", str(browser))

    assert chromium.chromium_executable() == str(browser)


def test_it_uses_playwrights_build_once_it_has_downloaded_it(no_browser, monkeypatch):
    commands = []
    monkeypatch.setattr(
        chromium, "_run", lambda command, env=None: commands.append(command) or True
    )

    assert chromium.chromium_executable() is None
    assert commands[0][-3:] == ["playwright", "install", "chromium"]


def test_it_falls_back_to_debians_package_as_root(no_browser, monkeypatch, tmp_path):
    installed = tmp_path / "chromium"
    commands = []

    def run(command, environment=None):
        commands.append(command)
        if command[:2] == ["apt-get", "install"]:
            installed.write_text("#!/bin/sh\n")
            installed.chmod(0o755)
            monkeypatch.setattr(chromium, "SYSTEM_CHROMIUMS", (str(installed),))
            return True
        return command[0] == "apt-get"

    monkeypatch.setattr(chromium, "_run", run)
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    monkeypatch.setattr(chromium.Path, "exists", lambda path: str(path) == "/etc/debian_version")

    assert chromium.chromium_executable() == str(installed)
    assert [c[:2] for c in commands[1:]] == [["apt-get", "update"], ["apt-get", "install"]]


def test_without_any_way_it_says_how_to_get_one(no_browser, monkeypatch):
    monkeypatch.setattr(chromium, "_run", lambda command, env=None: False)
    monkeypatch.setattr(os, "geteuid", lambda: 1000)

    with pytest.raises(chromium.BrowserUnavailable) as error:
        chromium.chromium_executable()

    message = str(error.value)
    assert "\n" not in message
    assert "apt-get install chromium" in message and "playwright install chromium" in message
