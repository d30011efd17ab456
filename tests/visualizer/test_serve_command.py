"""manage.py serve: what it asks of Daphne."""

from __future__ import annotations

from visualizer.management.commands.serve import proxy_headers


def test_proxy_headers_are_believed_only_when_the_settings_say_so(settings):
    settings.TRUST_PROXY_HEADERS = False
    assert proxy_headers() == []
    settings.TRUST_PROXY_HEADERS = True
    assert proxy_headers() == ["--proxy-headers"]


def test_by_default_no_proxy_is_trusted():
    from django.conf import settings

    assert settings.TRUST_PROXY_HEADERS is False
