"""Every page answers HEAD as it answers GET, and carries the security headers."""

from __future__ import annotations

import pytest
from django.test import Client

from visualizer.learning.practice import QUESTIONS
from visualizer.middleware import SECURITY_HEADERS
from visualizer.traces.library import load_examples
from visualizer.traces.models import Trace

pytestmark = pytest.mark.django_db


@pytest.fixture
def pages() -> list[str]:
    load_examples()
    example = Trace.objects.filter(source=Trace.Source.EXAMPLE).first().recording_id
    return [
        "/",
        "/scenarios/async-io/",
        f"/scenarios/async-io/?recording={example}&step=2",
        "/lab/",
        "/traces/",
        f"/traces/{example}/quiz/",
        f"/traces/{example}/transcript/",
        f"/traces/{example}/transcript.md",
        f"/traces/{example}/export.json",
        "/practice/",
        f"/practice/{QUESTIONS[0].slug}/",
        "/practice/summary/",
        "/join/",
    ]


def test_every_page_answers_head_as_it_answers_get(client: Client, pages):
    for url in pages:
        got = client.get(url, follow=True)
        head = client.head(url, follow=True)
        assert got.status_code == 200, url
        assert head.status_code == 200, url
        assert head.content == b"", url


def test_every_page_carries_the_security_headers(client: Client, pages):
    for url in pages:
        response = client.get(url, follow=True)
        for header, value in SECURITY_HEADERS.items():
            assert response.headers.get(header) == value, (url, header)
    policy = SECURITY_HEADERS["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert "unsafe-eval" not in policy


def test_a_host_not_allowed_is_refused(client: Client, pages):
    for url in pages[:3]:
        assert client.get(url, HTTP_HOST="evil.example").status_code == 400, url
        assert client.get(url).status_code == 200, url
