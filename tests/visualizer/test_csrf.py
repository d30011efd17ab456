"""CSRF protection on every route, checked by native middleware (visualizer/csrf.py)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from asgiref.sync import AsyncToSync, SyncToAsync
from django.http import HttpRequest, HttpResponse
from django.test import AsyncClient, Client
from django.urls import URLPattern, URLResolver, get_resolver, path, resolve
from django.urls.resolvers import RoutePattern
from django.views.decorators.csrf import csrf_exempt

from visualizer.learning.practice import QUESTIONS

UI_URLCONF = "visualizer.urls"
UNSAFE_METHODS = ("POST", "PUT", "PATCH", "DELETE")
HOST = "127.0.0.1"
# A value each path converter accepts; the view never sees it (the check comes first).
SAMPLES = {"str": "x", "slug": "x", "path": "x", "int": "1"}
# Routes that may take an unsafe method without a token (marked csrf_exempt): none.
EXEMPT: set[str] = set()


def routes(urlconf: str = UI_URLCONF) -> list[tuple[str, str]]:
    """Every route of the urlconf as (route, a path that resolves to it), includes too."""

    def walk(patterns: list[Any], prefix: str) -> Iterator[tuple[str, str]]:
        for pattern in patterns:
            assert isinstance(pattern.pattern, RoutePattern), f"extend the walk for {pattern}"
            route = prefix + str(pattern.pattern)
            if isinstance(pattern, URLResolver):
                yield from walk(pattern.url_patterns, route)
            else:
                assert isinstance(pattern, URLPattern)
                sample = re.sub(r"<(?:(\w+):)?\w+>", lambda m: SAMPLES[m[1] or "str"], route)
                yield route, "/" + sample

    found = list(walk(get_resolver(urlconf).url_patterns, ""))
    for route, url in found:
        # The sample path reaches the route it was made from (not an earlier one).
        assert resolve(url, urlconf).route == route, url
    return found


def test_the_walk_finds_every_route_of_the_ui():
    found = dict(routes())
    assert len(found) > 30
    for route in ("lab/run/", "traces/import/", "practice/<slug:slug>/", "run/async-io/"):
        assert route in found


def assert_refused(answers: dict[tuple[str, str], Any]) -> None:
    unchecked = [
        f"{method} {route}: {answer.status_code}"
        for (method, route), answer in answers.items()
        if (answer.status_code == 403) == (route in EXEMPT)
    ]
    assert not unchecked, "answered without a CSRF check:\n" + "\n".join(unchecked)


@pytest.mark.parametrize("method", UNSAFE_METHODS)
def test_every_route_refuses_an_unsafe_method_without_a_token(method):
    """Checked before any view runs: a route whose view would refuse the method (405)
    answers 403 too. Any other answer means a view ran without a check."""
    client = Client(enforce_csrf_checks=True, raise_request_exception=False, HTTP_HOST=HOST)
    answers = {(method, route): client.generic(method, url) for route, url in routes()}
    assert_refused(answers)


@pytest.mark.asyncio
@pytest.mark.parametrize("method", UNSAFE_METHODS)
async def test_every_route_refuses_an_unsafe_method_without_a_token_under_asgi(method):
    client = AsyncClient(enforce_csrf_checks=True, raise_request_exception=False, HTTP_HOST=HOST)
    answers = {(method, route): await client.generic(method, url) for route, url in routes()}
    assert_refused(answers)


def test_the_refusal_says_why_in_plain_text():
    client = Client(enforce_csrf_checks=True, HTTP_HOST=HOST)
    answer = client.post("/lab/run/", {"scenario": "async-io"})
    assert answer.status_code == 403
    assert answer["Content-Type"] == "text/plain; charset=utf-8"
    assert answer.content.decode().startswith("Forbidden: CSRF cookie not set.")


def question_url() -> str:
    return f"/practice/{QUESTIONS[0].slug}/"


def token_of(html: str) -> str:
    match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html)
    assert match, "the page has no CSRF token"
    return match[1]


def test_a_form_with_its_token_is_accepted():
    client = Client(enforce_csrf_checks=True, HTTP_HOST=HOST)
    page = client.get(question_url())
    assert "csrftoken" in page.cookies
    token = token_of(page.content.decode())

    answered = client.post(question_url(), {"csrfmiddlewaretoken": token, "choice": "0"})
    assert answered.status_code in (200, 302)
    wrong = client.post(question_url(), {"csrfmiddlewaretoken": token[::-1], "choice": "0"})
    assert wrong.status_code == 403


@pytest.mark.asyncio
async def test_a_form_with_its_token_is_accepted_under_asgi():
    client = AsyncClient(enforce_csrf_checks=True, HTTP_HOST=HOST)
    page = await client.get(question_url())
    token = token_of(page.content.decode())

    answered = await client.post(question_url(), {"csrfmiddlewaretoken": token, "choice": "0"})
    assert answered.status_code in (200, 302)
    # The header works as well as the form field (how a script would send it).
    headed = await client.post(question_url(), {"choice": "0"}, headers={"X-CSRFToken": token})
    assert headed.status_code in (200, 302)


# A urlconf of its own for the tests below.
def plain_view(request: HttpRequest) -> HttpResponse:
    return HttpResponse("ran")


async def async_view(request: HttpRequest) -> HttpResponse:
    return HttpResponse("ran")


@csrf_exempt
def exempt_view(request: HttpRequest) -> HttpResponse:
    return HttpResponse("ran")


urlpatterns = [
    path("plain/", plain_view),
    path("async/", async_view),
    path("exempt/", exempt_view),
]


@pytest.fixture
def own_urls(settings: Any) -> None:
    settings.ROOT_URLCONF = __name__


def test_a_csrf_exempt_view_takes_a_post_without_a_token(own_urls):
    client = Client(enforce_csrf_checks=True, HTTP_HOST=HOST)
    assert client.post("/exempt/").content == b"ran"
    assert client.post("/plain/").status_code == 403


@pytest.mark.asyncio
async def test_a_csrf_exempt_view_takes_a_post_without_a_token_under_asgi(own_urls):
    client = AsyncClient(enforce_csrf_checks=True, HTTP_HOST=HOST)
    assert (await client.post("/exempt/")).content == b"ran"
    assert (await client.post("/async/")).status_code == 403


@pytest.fixture
def adapted(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The functions sync_to_async and async_to_sync are asked to run, by qualified name."""
    names: list[str] = []
    for adapter in (SyncToAsync, AsyncToSync):
        original = adapter.__call__

        def counting(self: Any, *args: Any, _original: Any = original, **kwargs: Any) -> Any:
            names.append(getattr(self, "func", getattr(self, "awaitable", None)).__qualname__)
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(adapter, "__call__", counting)
    return names


MIDDLEWARE = {
    "ours": ["visualizer.csrf.CsrfMiddleware"],
    # Django's own, for contrast: the same checks, each hook a hop to a thread.
    "django's": ["django.middleware.csrf.CsrfViewMiddleware"],
}


@pytest.mark.asyncio
@pytest.mark.parametrize("middleware", MIDDLEWARE)
async def test_the_check_adds_no_thread_hop_under_asgi(own_urls, settings, adapted, middleware):
    settings.MIDDLEWARE = MIDDLEWARE[middleware]
    client = AsyncClient(enforce_csrf_checks=True, HTTP_HOST=HOST)
    assert (await client.get("/async/")).status_code == 200
    assert (await client.post("/async/")).status_code == 403

    csrf_hops = [name for name in adapted if "Csrf" in name]
    # The others are Django's handler's own, with any middleware: request_started,
    # response.close() and, for the 403, logging a response of status 400 or more.
    others = {name for name in adapted if "Csrf" not in name}
    assert others == {"Signal.asend.<locals>.sync_send", "HttpResponseBase.close", "log_response"}
    if middleware == "ours":
        assert csrf_hops == []
    else:
        assert "CsrfViewMiddleware.process_view" in csrf_hops


def test_the_check_adds_no_adapter_under_wsgi(own_urls, settings, adapted):
    settings.MIDDLEWARE = MIDDLEWARE["ours"]
    client = Client(enforce_csrf_checks=True, HTTP_HOST=HOST)
    assert client.get("/plain/").status_code == 200
    assert client.post("/plain/").status_code == 403
    assert adapted == []
