"""Refuse an edited view's code that is too large before anything reads the request body
(the CSRF check would parse it first). Native async middleware, like the site's others."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse

from visualizer.middleware import NativeMiddleware
from visualizer.playground.checks import MAX_SOURCE_BYTES

# The form, url-encoded: the code (at most three bytes a byte, %XX) and a few small fields.
MAX_BODY_BYTES = 3 * MAX_SOURCE_BYTES + 8 * 1024
EDIT_PATH_SUFFIX = "/edit/"


class EditedCodeBodyLimit(NativeMiddleware):
    def __call__(self, request: HttpRequest) -> Any:
        if self.async_mode:
            return self._acall(request)
        return too_large(request) or self.get_response(request)

    async def _acall(self, request: HttpRequest) -> Any:
        return too_large(request) or await self.get_response(request)


def too_large(request: HttpRequest) -> HttpResponse | None:
    """A 413 for a POST to an edit address whose body is over MAX_BODY_BYTES, else None.
    A body sent without a Content-Length is not read at all (Django reads that many
    bytes), and Daphne has refused any over the site's limit already."""
    if request.method != "POST" or not request.path.endswith(EDIT_PATH_SUFFIX):
        return None
    length = request.META.get("CONTENT_LENGTH") or "0"
    if length.isascii() and length.isdigit() and int(length) <= MAX_BODY_BYTES:
        return None
    return HttpResponse(
        f"The code is too large: the playground takes at most {MAX_SOURCE_BYTES:,} bytes of code.",
        status=413,
        content_type="text/plain; charset=utf-8",
    )
