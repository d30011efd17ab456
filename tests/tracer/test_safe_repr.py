from __future__ import annotations

from django.http import HttpResponseNotFound, JsonResponse
from django.test import RequestFactory

from tracer.safe_repr import MAX_CHARS, safe_repr


class Loud:
    called = False

    def __repr__(self) -> str:
        Loud.called = True
        return "loud"

    def __getattr__(self, name: str) -> object:
        Loud.called = True
        raise AttributeError(name)


class Meta(type):
    def __getattribute__(cls, name: str) -> object:
        Loud.called = True
        return super().__getattribute__(name)

    def __eq__(cls, other: object) -> bool:
        Loud.called = True
        return False

    def __hash__(cls) -> int:
        Loud.called = True
        return 0


class WithMeta(metaclass=Meta):
    pass


def test_it_shows_builtin_values_like_repr():
    value = {"a": [1, 2.5, None, True], "b": ("x",)}
    assert safe_repr(value) == repr(value)
    assert safe_repr(set()) == "set()"
    assert safe_repr(b"\x00ab") == "b'\\x00ab'"


def test_it_never_calls_code_of_other_objects():
    Loud.called = False
    assert safe_repr(Loud()) == "<Loud>"
    assert safe_repr([Loud(), {"k": Loud()}]) == "[<Loud>, {'k': <Loud>}]"
    assert safe_repr(WithMeta()) == "<WithMeta>"
    assert Loud.called is False


def test_it_bounds_huge_and_deep_values():
    assert len(safe_repr("x" * 50_000_000)) <= MAX_CHARS
    assert len(safe_repr(list(range(1_000_000)))) <= MAX_CHARS
    assert safe_repr(10**10_000) == "<int of 33220 bits>"
    nested: list[object] = []
    nested.append(nested)
    assert safe_repr(nested) == "[[[<list of 1>]]]"
    assert "more" in safe_repr(dict.fromkeys(range(50), 0), max_chars=10_000)


def test_it_describes_django_requests_and_responses_from_their_attributes():
    request = RequestFactory().get("/run/async-io/?delay_ms=5")
    assert safe_repr(request) == "<WSGIRequest GET '/run/async-io/'>"
    assert safe_repr(JsonResponse({"a": 1})) == "<JsonResponse status=200>"
    assert safe_repr(HttpResponseNotFound()) == "<HttpResponseNotFound status=404>"
