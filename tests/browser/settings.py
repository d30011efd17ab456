"""The app's settings plus one extra traced view, for the browser tests."""

from __future__ import annotations

from visualizer.settings import *  # noqa: F403

ROOT_URLCONF = "tests.browser.urls"
