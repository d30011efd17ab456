"""Checking a trace document from outside (an upload, a file) before anything is stored.

Imported documents are untrusted. Every rejection names what is wrong and where, as a path
into the document (``events[12].t_ns``) or a position in the file. Limits, beyond the
caller's byte limit: 200,000 events, 50,000 requests, 64 locals an event, 10,000
characters a string (65,536 the text of an edited view's code), 1,000 loop steps a
request.

What each object may hold is derived from the types of tracer/events.py (shape_of), so a
field is declared once, there; the checks here add what a type cannot say (ids, limits,
the order of ``seq``, the requests an event names).
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from types import NoneType, UnionType
from typing import (
    Literal,
    NotRequired,
    Required,
    Union,
    cast,
    get_args,
    get_origin,
    get_type_hints,
    is_typeddict,
)

from tracer import events as kinds
from tracer import loop_clock

DEFAULT_MAX_BYTES = 10 * 1024 * 1024
MAX_EVENTS = 200_000
MAX_REQUESTS = 50_000
MAX_LOCALS = 64
MAX_STRING = 10_000
# How deep the free-form parts (server, tracer) may nest.
MAX_DEPTH = 32

# The text of the code that ran, in a run of an edited view (the playground's own limit).
MAX_CODE_CHARS = 64 * 1024

_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_SLUG = re.compile(r"[a-z0-9-]{1,64}")
_CODE_FILE = re.compile(r"[A-Za-z0-9_-]{1,60}\.py")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,99}")


class TraceRejected(Exception):
    """Why a document was refused: ``message`` says what, ``where`` says where."""

    def __init__(self, message: str, where: str = "") -> None:
        super().__init__(f"{where}: {message}" if where else message)
        self.message = message
        self.where = where


# What a field may hold, by name.
INT, STR, BOOL, OBJ, LIST = "int", "str", "bool", "object", "list"
OPT_INT, OPT_STR, OPT_OBJ = "int|null", "str|null", "object|null"

# The Python types (of a parsed JSON value) each may be: a set lookup is the cheapest check
# of the millions a long trace needs. bool is not int here (type(True) is bool).
_CHECKS: dict[str, frozenset[type]] = {
    INT: frozenset({int}),
    STR: frozenset({str}),
    BOOL: frozenset({bool}),
    OBJ: frozenset({dict}),
    LIST: frozenset({list}),
    OPT_INT: frozenset({NoneType, int}),
    OPT_STR: frozenset({NoneType, str}),
    OPT_OBJ: frozenset({NoneType, dict}),
}
_NAMES = {
    INT: "an integer",
    STR: "a string",
    BOOL: "true or false",
    OBJ: "an object",
    LIST: "a list",
    OPT_INT: "an integer or null",
    OPT_STR: "a string or null",
    OPT_OBJ: "an object or null",
}


@dataclass(frozen=True)
class Shape:
    """The fields of one kind of object, derived from its TypedDict in tracer/events.py:
    each field's type (a key of _CHECKS), and for a field typed as a Literal the words it
    may hold."""

    required: dict[str, str]
    optional: dict[str, str]
    choices: dict[str, tuple[str, ...]]

    @functools.cached_property
    def names(self) -> frozenset[str]:
        return frozenset(self.required) | frozenset(self.optional)

    @functools.cached_property
    def fields(self) -> tuple[tuple[str, str, frozenset[type], bool, bool], ...]:
        """Each field, the required ones first, as _check_object reads it: its name, its
        check, the types it may be, whether it is required, whether it cannot be
        negative."""
        return tuple(
            (name, check, _CHECKS[check], name in self.required, name in NON_NEGATIVE)
            for name, check in {**self.required, **self.optional}.items()
        )


def shape_of(typed_dict: type) -> Shape:
    """The Shape of a TypedDict: NotRequired fields are optional; any other is required."""
    required: dict[str, str] = {}
    optional: dict[str, str] = {}
    choices: dict[str, tuple[str, ...]] = {}
    for name, hint in get_type_hints(typed_dict, include_extras=True).items():
        fields = required
        if get_origin(hint) is NotRequired:
            hint, fields = get_args(hint)[0], optional
        elif get_origin(hint) is Required:
            hint = get_args(hint)[0]
        fields[name], words = _check_of(hint, f"{typed_dict.__name__}.{name}")
        if words:
            choices[name] = words
    return Shape(required, optional, choices)


def _check_of(hint: object, name: str) -> tuple[str, tuple[str, ...]]:
    """The check for a field's type, and the words of a Literal."""
    nullable = False
    if get_origin(hint) in (Union, UnionType):
        members = [member for member in get_args(hint) if member is not NoneType]
        nullable = len(members) < len(get_args(hint))
        if len(members) != 1:
            raise TypeError(f"{name}: no check for {hint}")
        hint = members[0]
    words: tuple[str, ...] = ()
    origin = get_origin(hint)
    if hint is bool or hint is int or hint is str:
        check = _BY_TYPE[hint]
    elif origin is Literal and all(type(word) is str for word in get_args(hint)):
        check, words = STR, get_args(hint)
    elif hint is dict or origin is dict or is_typeddict(hint):
        check = OBJ
    elif hint is list or origin is list:
        check = LIST
    else:
        raise TypeError(f"{name}: no check for {hint}")
    if nullable:
        if check not in _NULLABLE:
            raise TypeError(f"{name}: no check for {hint} or null")
        check = _NULLABLE[check]
    return check, words


_BY_TYPE = {bool: BOOL, int: INT, str: STR}
_NULLABLE = {INT: OPT_INT, STR: OPT_STR, OBJ: OPT_OBJ}

TOP_LEVEL = shape_of(kinds.TraceDocument)
SCENARIO = shape_of(kinds.ScenarioInfo)
REQUEST = shape_of(kinds.RequestSummary)
STACK_FRAME = shape_of(kinds.StackFrame)
CODE = shape_of(kinds.EditedCode)
CODE_ERROR = shape_of(kinds.CodeError)
# code.errors: the exceptions an edited view's run reported.
MAX_CODE_ERRORS = 100
BY_KIND = {kind: shape_of(event_type) for kind, event_type in kinds.KIND_TYPES.items()}
# thread_samples: [t_ns, threads] pairs, the server process's OS thread count over time.
MAX_THREAD_SAMPLES = 100_000
# loop.blocked's stack: the loop thread's frames during the stall, innermost last.
MAX_STACK = 64
# A request's loop_steps (tracer/loop_clock.py).
MAX_LOOP_STEPS = loop_clock.MAX_STEPS

# Amounts that cannot be negative.
NON_NEGATIVE = {
    "bytes", "duration_ns", "cpu_ns", "off_loop_ns", "waited_ns", "suspensions",
    "threshold_ns", "dropped_events", "tracer_ns", "started_ns", "called_ns", "loop_ns",
    "loop_wait_ns",
}  # fmt: skip


def parse_trace(raw: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES) -> kinds.TraceDocument:
    """Decode, parse and check an uploaded trace; return the document or raise
    TraceRejected."""
    if len(raw) > max_bytes:
        raise TraceRejected(f"the file is {len(raw)} bytes; the limit is {max_bytes} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise TraceRejected(
            f"the file is not UTF-8 text (bad byte at offset {error.start})"
        ) from None
    try:
        document = json.loads(text, parse_constant=_reject_constant, object_pairs_hook=_unique_keys)
    except json.JSONDecodeError as error:
        raise TraceRejected(
            f"not valid JSON: {error.msg}", f"line {error.lineno}, column {error.colno}"
        ) from None
    except RecursionError:
        # The parser recurses once per level: very deep nesting exhausts it.
        raise TraceRejected("the JSON is nested too deeply") from None
    return validate_trace(document)


def _reject_constant(name: str) -> None:
    raise TraceRejected(f"{name} is not allowed in a trace (JSON has no such number)")


def _unique_keys(pairs: list[tuple[str, object]]) -> dict[str, object]:
    result = dict(pairs)
    if len(result) < len(pairs):  # a key appears twice: the first one again is named
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise TraceRejected(f"the key {key!r} appears twice in one object")
            seen.add(key)
    return result


def validate_trace(document: object) -> kinds.TraceDocument:
    """Check a parsed document against docs/trace-format.md; return it or raise
    TraceRejected."""
    if type(document) is not dict:
        raise TraceRejected("a trace document is a JSON object")
    if document.get("format") != kinds.FORMAT:
        raise TraceRejected(
            f"not a trace document of this tool (format is not {kinds.FORMAT!r})", "format"
        )
    version = document.get("version")
    if type(version) is not int or version not in kinds.READABLE_VERSIONS:
        newer = type(version) is int and version > kinds.FORMAT_VERSION
        raise TraceRejected(
            f"version {version!r} is {'newer than this tool reads' if newer else 'not supported'}"
            f"; this tool reads version {kinds.FORMAT_VERSION}",
            "version",
        )
    _check_object(document, TOP_LEVEL, "")
    if not _ID.fullmatch(document["id"]):
        raise TraceRejected("must be 1-64 letters, digits, '_' or '-'", "id")
    if document["clock"] != "monotonic_ns":
        raise TraceRejected("must be 'monotonic_ns'", "clock")
    scenario = document["scenario"]
    if scenario is not None:
        _check_object(scenario, SCENARIO, "scenario")
        if not _SLUG.fullmatch(scenario["slug"]):
            raise TraceRejected("must be 1-64 lowercase letters, digits or '-'", "scenario.slug")
    _check_strings(document["server"], "server")
    _check_strings(document["tracer"], "tracer")
    _check_strings(document["recorded_at"], "recorded_at")
    request_ids = _check_requests(document["requests"])
    _check_events(document["events"], request_ids)
    if "thread_samples" in document:
        _check_thread_samples(document["thread_samples"])
    if "code" in document:
        _check_code(document["code"])
    # What a version-1 document holds means the same in version 2.
    document["version"] = kinds.FORMAT_VERSION
    # Checked against the types above, field by field.
    return cast(kinds.TraceDocument, document)


def _check_code(code: object) -> None:
    checked = cast(kinds.EditedCode, _check_object(code, CODE, "code", {"text": MAX_CODE_CHARS}))
    if not _CODE_FILE.fullmatch(checked["file"]):
        raise TraceRejected("must be a file name ending in .py, without folders", "code.file")
    if not _IDENTIFIER.fullmatch(checked["view"]):
        raise TraceRejected("must be a Python function name", "code.view")
    errors = checked["errors"]
    if len(errors) > MAX_CODE_ERRORS:
        raise TraceRejected(f"{len(errors)} errors; at most {MAX_CODE_ERRORS}", "code.errors")
    for index, error in enumerate(errors):
        where = f"code.errors[{index}]"
        line = cast(kinds.CodeError, _check_object(error, CODE_ERROR, where))["line"]
        if line is not None and line < 1:
            raise TraceRejected("must be 1 or more", f"{where}.line")


def _check_thread_samples(samples: list[object]) -> None:
    if len(samples) > MAX_THREAD_SAMPLES:
        raise TraceRejected(
            f"{len(samples)} samples; at most {MAX_THREAD_SAMPLES}", "thread_samples"
        )
    for index, sample in enumerate(samples):
        if (
            type(sample) is not list
            or len(sample) != 2
            or not all(type(number) is int and number >= 0 for number in sample)
        ):
            raise TraceRejected(
                "must be a pair [t_ns, threads] of non-negative integers",
                f"thread_samples[{index}]",
            )


def _check_requests(requests: list[object]) -> set[str]:
    if len(requests) > MAX_REQUESTS:
        raise TraceRejected(f"{len(requests)} requests; at most {MAX_REQUESTS}", "requests")
    seen: set[str] = set()
    for index, request in enumerate(requests):
        where = f"requests[{index}]"
        summary = cast(kinds.RequestSummary, _check_object(request, REQUEST, where))
        request_id = summary["id"]
        if not _ID.fullmatch(request_id):
            raise TraceRejected("must be 1-64 letters, digits, '_' or '-'", f"{where}.id")
        if request_id in seen:
            raise TraceRejected(f"the request id {request_id!r} is used twice", f"{where}.id")
        seen.add(request_id)
        if "loop_steps" in summary:
            _check_loop_steps(summary["loop_steps"], f"{where}.loop_steps")
    return seen


def _check_loop_steps(steps: list[list[int]], where: str) -> None:
    if len(steps) > MAX_LOOP_STEPS:
        raise TraceRejected(f"{len(steps)} steps; at most {MAX_LOOP_STEPS}", where)
    previous_end = 0
    for index, step in enumerate(steps):
        if (
            type(step) is not list
            or len(step) != 3
            or not all(type(number) is int and number >= 0 for number in step)
            or not previous_end <= step[0] <= step[1] <= step[2]
        ):
            raise TraceRejected(
                "must be [ready_ns, started_ns, ended_ns], non-negative integers in that "
                "order, after the step before",
                f"{where}[{index}]",
            )
        previous_end = step[2]


def _check_events(events: list[object], request_ids: set[str]) -> None:
    if len(events) > MAX_EVENTS:
        raise TraceRejected(f"{len(events)} events; at most {MAX_EVENTS}", "events")
    for index, event in enumerate(events):
        where = f"events[{index}]"
        if type(event) is not dict:
            raise TraceRejected("must be an object", where)
        kind = event.get("kind")
        # A list or an object cannot be looked up in BY_KIND (it is not hashable).
        if type(kind) is not str or kind not in BY_KIND:
            raise TraceRejected(f"unknown kind {kind!r}", f"{where}.kind")
        shape = BY_KIND[kind]
        _check_object(event, shape, where)
        for name, allowed in shape.choices.items():
            value = event.get(name)
            if value is not None and value not in allowed:
                raise TraceRejected(
                    f"must be one of {', '.join(allowed)}, got {value!r}", f"{where}.{name}"
                )
        if kind == kinds.LOOP_BLOCKED and "stack" in event:
            _check_stack(event["stack"], f"{where}.stack")
        if event["seq"] != index + 1:
            raise TraceRejected(f"expected {index + 1}, got {event['seq']}", f"{where}.seq")
        request = event["request"]
        if request is None and kind != kinds.LOOP_BLOCKED:
            raise TraceRejected("only a loop.blocked event may have no request", f"{where}.request")
        if request is not None and request not in request_ids:
            raise TraceRejected(
                f"names request {request!r}, which is not in requests", f"{where}.request"
            )
        if event["line"] is not None and event["line"] < 1:
            raise TraceRejected("must be 1 or more", f"{where}.line")
        local_values = event["locals"]
        if len(local_values) > MAX_LOCALS:
            raise TraceRejected(
                f"{len(local_values)} variables; at most {MAX_LOCALS}", f"{where}.locals"
            )
        for name, value in local_values.items():
            if type(value) is not str:
                raise TraceRejected("variable values must be strings", f"{where}.locals.{name}")


def _check_stack(stack: list[object], where: str) -> None:
    if len(stack) > MAX_STACK:
        raise TraceRejected(f"{len(stack)} frames; at most {MAX_STACK}", where)
    for index, frame in enumerate(stack):
        _check_object(frame, STACK_FRAME, f"{where}[{index}]")


def _check_object(
    value: object, shape: Shape, where: str, long_strings: dict[str, int] | None = None
) -> object:
    """Check ``value`` against ``shape``; return it (it then holds what the shape's
    TypedDict says) or raise TraceRejected. ``long_strings``: fields that may be longer
    than MAX_STRING, with their own limits."""
    if type(value) is not dict:
        raise TraceRejected("must be an object", where)
    if not shape.names.issuperset(value):
        for name in value:
            if name not in shape.names:
                raise TraceRejected("is not a field of this format", _field(where, name))
    for name, expected, types, required, non_negative in shape.fields:
        if name not in value:
            if required:
                raise TraceRejected("is missing", _field(where, name))
            continue
        field_value = value[name]
        value_type = type(field_value)
        if value_type not in types:
            raise TraceRejected(
                f"must be {_NAMES[expected]}, got {_json_type(field_value)}", _field(where, name)
            )
        if value_type is str:
            longest = long_strings.get(name, MAX_STRING) if long_strings else MAX_STRING
            if len(field_value) > longest:
                raise TraceRejected(
                    f"{len(field_value)} characters; at most {longest}", _field(where, name)
                )
        elif non_negative and value_type is int and field_value < 0:
            raise TraceRejected("cannot be negative", _field(where, name))

    if "locals" in shape.required:
        _check_strings(value["locals"], _field(where, "locals"))
    return value


def _field(where: str, name: str) -> str:
    """The path of a field of the object at ``where``."""
    return f"{where}.{name}" if where else name


def _check_strings(value: object, where: str) -> None:
    """Every string in a free-form part (server, tracer, locals) within the length limit,
    nested at most MAX_DEPTH levels. A loop, not recursion: a hostile document may nest
    deeper than Python's stack allows."""
    pending = [(value, where, 0)]
    while pending:
        item, at, depth = pending.pop()
        if type(item) is str:
            if len(item) > MAX_STRING:
                raise TraceRejected(f"{len(item)} characters; at most {MAX_STRING}", at)
            continue
        if type(item) not in (dict, list):
            continue
        if depth >= MAX_DEPTH:
            raise TraceRejected(f"nested more than {MAX_DEPTH} levels deep", at)
        if type(item) is dict:
            for key, inner in item.items():
                pending.append((key, at, depth + 1))
                pending.append((inner, f"{at}.{key}", depth + 1))
        elif type(item) is list:
            pending.extend((inner, f"{at}[{index}]", depth + 1) for index, inner in enumerate(item))


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if type(value) is bool:
        return "true/false"
    return {int: "integer", float: "number", str: "string", list: "list", dict: "object"}.get(
        type(value), type(value).__name__
    )
