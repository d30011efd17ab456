"""manage.py serve: what it asks of Daphne."""

from __future__ import annotations

import pytest

from visualizer.traces.management.commands.serve import proxy_headers


def test_proxy_headers_are_believed_only_when_the_settings_say_so(settings):
    settings.TRUST_PROXY_HEADERS = False
    assert proxy_headers() == []
    settings.TRUST_PROXY_HEADERS = True
    assert proxy_headers() == ["--proxy-headers"]


def test_by_default_no_proxy_is_trusted():
    from django.conf import settings

    assert settings.TRUST_PROXY_HEADERS is False


def test_the_machines_network_addresses_come_from_the_system_listing(monkeypatch):
    from visualizer.traces.management.commands import serve

    listing = (
        "2: eth0    inet 192.0.2.7/24 brd 192.0.2.255 scope global eth0\n"
        "3: wlan0    inet 198.51.100.4/24 brd 198.51.100.255 scope global wlan0\n"
    )

    class Listed:
        stdout = listing

    monkeypatch.setattr(serve.subprocess, "run", lambda *args, **kwargs: Listed())
    assert serve.lan_addresses() == ["192.0.2.7", "198.51.100.4"]


def test_serving_a_class_accepts_the_network_address_and_shows_it_to_students(
    monkeypatch, settings
):
    from visualizer.traces.management.commands import serve

    monkeypatch.setattr(serve, "lan_addresses", lambda: ["192.0.2.7"])
    monkeypatch.setenv("ALLOWED_HOSTS", "localhost")
    monkeypatch.setenv("CLASS_URL", "")
    settings.CLASS_URL = ""

    serve.Command().open_to_the_network(8000)

    assert "192.0.2.7" in settings.ALLOWED_HOSTS and "localhost" in settings.ALLOWED_HOSTS
    assert settings.CLASS_URL == "http://192.0.2.7:8000"
    # Processes started from here (the subject, serve --processes) get the same.
    import os

    assert os.environ["CLASS_URL"] == "http://192.0.2.7:8000"
    assert "192.0.2.7" in os.environ["ALLOWED_HOSTS"].split(",")


@pytest.mark.django_db
def test_the_join_card_shows_the_address_students_can_reach(settings, client):
    from visualizer.classroom.models import ClassSession
    from visualizer.traces.library import load_examples

    load_examples()
    settings.CLASS_URL = "http://192.0.2.7:8000"
    started = client.post(
        "/class/start/", {"url": "/scenarios/async-io/?recording=example-async-io-4-requests"}
    )
    code = ClassSession.objects.get().code

    card = client.get(started["Location"]).content.decode()

    assert f"http://192.0.2.7:8000/class/{code}/" in card
    assert "127.0.0.1" not in card and "testserver" not in card
