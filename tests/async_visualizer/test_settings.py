"""The app's settings are checked, with errors that say what to write; off means untouched."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from async_visualizer import conf
from async_visualizer.asgi import trace_asgi


@pytest.fixture(autouse=True)
def fresh_config() -> Any:
    conf.get_config.cache_clear()
    yield
    conf.get_config.cache_clear()


@pytest.mark.parametrize(
    ("given", "message"),
    [
        (None, "must be a dict"),
        ({"VIEWS": ["shop.views.*"]}, r'\["ENABLED"\] must be set to True or False'),
        ({"ENABLED": "yes"}, "must be set to True or False"),
        ({"ENABLED": True, "VEIWS": []}, "unknown ASYNC_VISUALIZER settings: VEIWS"),
        ({"ENABLED": True, "VIEWS": "shop.views.*"}, "must be a list"),
        ({"ENABLED": True, "VIEWS": ["shop/views"]}, "'shop/views' is not a view pattern"),
        ({"ENABLED": True, "DEPTH": -1}, "DEPTH"),
        ({"ENABLED": True, "LOOP_BLOCK_THRESHOLD_MS": 0}, "LOOP_BLOCK_THRESHOLD_MS"),
    ],
)
def test_it_names_what_is_wrong(given: Any, message: str) -> None:
    with (
        override_settings(ASYNC_VISUALIZER=given),
        pytest.raises(ImproperlyConfigured, match=message),
    ):
        conf.get_config()


def test_it_leaves_the_application_untouched_when_off() -> None:
    application = object()
    with override_settings(ASYNC_VISUALIZER={"ENABLED": False, "VIEWS": ["shop.views.*"]}):
        assert trace_asgi(application) is application
