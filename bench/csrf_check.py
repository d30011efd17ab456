"""How long the CSRF check (visualizer/csrf.py) holds the event loop per request.

It runs Django's checks on the loop, with no thread hop. For a GET that is a cookie read; for
a POST it parses the body to find the token, which for the largest trace upload the library
accepts (TRACE_IMPORT_MAX_BYTES, multipart) means parsing megabytes and writing the file to
a temporary file, as the view would have done in its thread. This prints each case's median
time per request over several rounds.

    uv run python bench/csrf_check.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "visualizer.settings")

# Set up before the imports below, which reach the models.
import django

django.setup()

from django.conf import settings  # noqa: E402
from django.core.files.uploadedfile import SimpleUploadedFile  # noqa: E402
from django.http import HttpResponse  # noqa: E402
from django.middleware.csrf import get_token  # noqa: E402
from django.test import RequestFactory  # noqa: E402

from bench.common import add_rounds_argument, check_rounds, machine, median_against_target  # noqa: E402
from visualizer.csrf import CsrfMiddleware  # noqa: E402

# The loop is reported as blocked past this (tracer LOOP_BLOCK_THRESHOLD_MS), in us.
TARGET_US = 20_000.0


def view(request: Any) -> HttpResponse:
    return HttpResponse("")


def cases() -> dict[str, tuple[Callable[[], Any], int]]:
    """Each case: a maker of a fresh request (the body is parsed once per request), and
    how many requests a round times."""
    factory = RequestFactory(HTTP_HOST="127.0.0.1")
    # A token as a page's form carries it, and the cookie the page set beside it.
    page = factory.get("/lab/")
    token = get_token(page)
    cookie = {settings.CSRF_COOKIE_NAME: page.META["CSRF_COOKIE"]}
    upload = b"x" * settings.TRACE_IMPORT_MAX_BYTES

    def with_cookie(request: Any) -> Any:
        request.COOKIES.update(cookie)
        return request

    def upload_request() -> Any:
        file = SimpleUploadedFile("trace.json", upload, content_type="application/json")
        data = {"csrfmiddlewaretoken": token, "file": file}
        return with_cookie(factory.post("/traces/import/", data))

    # As a browser sends a form without a file.
    lab_form = urlencode({"csrfmiddlewaretoken": token, "scenario": "async-io", "requests": "8"})

    def form_request() -> Any:
        form = "application/x-www-form-urlencoded"
        return with_cookie(factory.post("/lab/run/", lab_form, content_type=form))

    return {
        "GET page": (lambda: with_cookie(factory.get("/lab/")), 2000),
        "POST lab form": (form_request, 2000),
        f"POST {len(upload) // 2**20} MB upload": (upload_request, 5),
    }


def time_case(make: Callable[[], Any], count: int) -> float:
    """Microseconds per request for the three hooks, the request made beforehand."""
    middleware = CsrfMiddleware(view)
    requests = [make() for _ in range(count)]
    started = time.perf_counter_ns()
    for request in requests:
        middleware.checks.process_request(request)
        refused = middleware.process_view(request, view, (), {})
        assert refused is None, refused.content
        middleware.checks.process_response(request, HttpResponse(""))
    elapsed = time.perf_counter_ns() - started
    for request in requests:
        for file in request.FILES.values():
            file.close()
    return elapsed / count / 1e3


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_rounds_argument(parser)
    args = parser.parse_args()
    check_rounds(parser, args.rounds)
    print(machine())
    met = True
    for name, (make, count) in cases().items():
        figures = [time_case(make, count) for _ in range(args.rounds)]
        met &= median_against_target(f"{name}, a request", figures, TARGET_US, " us")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
