"""?embed=1: just the player, for a frame in a course page, framable only by the sites the
EMBED_ALLOWED_ORIGINS setting names."""

from __future__ import annotations

import subprocess
import sys

import pytest
from django.test import Client

from visualizer.server_process import BASE_DIR
from visualizer.traces.library import load_examples

pytestmark = pytest.mark.django_db
PLAYER = "/scenarios/async-io/?recording=example-async-io-4-requests&step=3"


@pytest.fixture
def examples():
    load_examples()


def test_an_embedded_player_has_no_site_chrome_and_keeps_embedding_when_stepping(examples):
    page = Client().get(PLAYER + "&embed=1")
    html = page.content.decode()

    assert page.status_code == 200
    assert 'id="player"' in html and 'id="rows"' in html and 'id="key-moments"' in html
    for chrome in ('class="breadcrumbs"', 'id="run-form"', "class-start", "ws-connect"):
        assert chrome not in html, chrome
    assert "embed=1&amp;step=4" in html  # the next step's link stays embedded
    assert '<html lang="en" class=" embed"' in html

    plain = Client().get(PLAYER).content.decode()
    assert 'id="run-form"' in plain and 'class="breadcrumbs"' in plain and "class-start" in plain


def test_no_site_may_frame_a_page_unless_the_setting_names_it(examples, settings):
    framed = Client().get(PLAYER + "&embed=1")
    assert "frame-ancestors 'none'" in framed["Content-Security-Policy"]
    assert framed["X-Frame-Options"] == "DENY"

    settings.EMBED_ALLOWED_ORIGINS = ["https://course.example.org", "http://localhost:3000"]
    framed = Client().get(PLAYER + "&embed=1")
    policy = framed["Content-Security-Policy"]
    assert "frame-ancestors https://course.example.org http://localhost:3000" in policy
    assert "script-src 'self'" in policy
    assert "X-Frame-Options" not in framed

    # Only the embedded players: not the same page unembedded, nor pages with forms.
    for path in (PLAYER, "/traces/?embed=1", "/lab/?embed=1"):
        answer = Client().get(path)
        assert "frame-ancestors 'none'" in answer["Content-Security-Policy"], path
        assert answer["X-Frame-Options"] == "DENY", path


def test_a_setting_that_is_not_an_origin_stops_the_start():
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=BASE_DIR,
        env={
            "PATH": "/usr/bin:/bin",
            "DJANGO_SETTINGS_MODULE": "visualizer.settings",
            "EMBED_ALLOWED_ORIGINS": "https://ok.example.org,javascript:alert(1)",
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "EMBED_ALLOWED_ORIGINS: 'javascript:alert(1)' is not an origin" in result.stderr


def test_the_player_offers_perfetto_beside_the_download(examples):
    html = Client().get(PLAYER).content.decode()
    button = html.split("data-perfetto=")[1].split(">")[0]
    assert button.startswith('"/traces/example-async-io-4-requests/export.chrome.json"')
