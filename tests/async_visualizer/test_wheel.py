"""``uv build`` makes a wheel that another project installs and traces its own view with."""

from __future__ import annotations

import os
import shutil
import subprocess
import textwrap
from pathlib import Path

import pytest

from visualizer.server_process import BASE_DIR

# Another project, in a folder of its own: an async view that awaits, served by the wheel's
# app and traced through trace_url.
VIEWS = """
import asyncio

from django.http import HttpResponse


async def hello(request):
    await asyncio.sleep(0.01)
    return HttpResponse("hello")
"""
URLS = """
from django.urls import include, path

import other_views

urlpatterns = [
    path("", other_views.hello),
    path("__visualizer__/", include("async_visualizer.urls")),
]
"""
PAGE_FOLLOWS = "--- the recording's page ---"  # printed by SCRIPT
SCRIPT = """
import django
from django.conf import settings
from django.core.management import call_command

settings.configure(
    SECRET_KEY="wheel-test",
    ALLOWED_HOSTS=["localhost"],
    INSTALLED_APPS=["django.contrib.auth", "django.contrib.contenttypes", "async_visualizer"],
    ROOT_URLCONF="other_urls",
    TEMPLATES=[{"BACKEND": "django.template.backends.django.DjangoTemplates", "APP_DIRS": True}],
    DATABASES={},
    ASYNC_VISUALIZER={"ENABLED": True, "VIEWS": ["other_views.*"]},
)
django.setup()
import async_visualizer, tracer
print("installed at", async_visualizer.__file__, tracer.__file__)
call_command("trace_url", "/", "--requests", "2")

# The recording's page, at its last step, as a staff user sees it (this project has no
# database: no session, no user table).
from types import SimpleNamespace
from django.test import RequestFactory
from async_visualizer.views import recording
from tracer.django_integration import get_tracer
(traced,) = get_tracer().store.recordings()
last = len(traced.document()["events"])
request = RequestFactory().get(f"/__visualizer__/{traced.id}/?step={last}")
request.user = SimpleNamespace(is_authenticated=True, is_staff=True)
print("--- the recording's page ---")
print(recording(request, traced.id).content.decode())
"""


@pytest.mark.slow
def test_the_wheel_installs_and_traces_another_projects_view(tmp_path: Path) -> None:
    uv = shutil.which("uv")
    if uv is None:
        pytest.fail("uv is not on PATH: source env.sh (the wheel is built with uv build)")
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    subprocess.run(
        [uv, "build", "--wheel", "-q", "-o", str(tmp_path / "dist")],
        cwd=BASE_DIR, env=env, check=True, timeout=120,
    )  # fmt: skip
    (wheel,) = (tmp_path / "dist").glob("django_async_visualizer-*.whl")
    venv = tmp_path / "venv"
    subprocess.run([uv, "venv", "-q", str(venv)], env=env, check=True, timeout=60)
    python = venv / "bin" / "python"
    subprocess.run(
        [uv, "pip", "install", "-q", "--python", str(python), str(wheel)],
        env=env, check=True, timeout=120,
    )  # fmt: skip
    project = tmp_path / "other"
    project.mkdir()
    (project / "other_views.py").write_text(textwrap.dedent(VIEWS))
    (project / "other_urls.py").write_text(textwrap.dedent(URLS))
    done = subprocess.run(
        [str(python), "-c", SCRIPT],
        cwd=project, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    installed = done.stdout.splitlines()[0]
    assert str(venv) in installed and str(BASE_DIR) not in installed
    printed, page = done.stdout.split(PAGE_FOLLOWS)
    assert printed.count("Pauses at line 8: await asyncio.sleep(0.01)") == 2
    assert "View returns <HttpResponse status=200>" in printed
    # The page's picture, time strip and key moments, from the wheel's own templates.
    assert "answered so far." in page
    assert "The whole recording in time" in page
    # The player's style sheets, inline (the project serves no static file of the app).
    assert ".picture-drawing {" in page.split("</style>")[0]
    assert "The view pauses at await asyncio.sleep(0.01) and frees the event loop" in page
