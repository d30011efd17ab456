"""Imported trace documents: a valid one passes unchanged; a hostile corpus is refused,
each with a message that says what is wrong and where."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from tests.fixtures import VERSION_1_EXAMPLES
from tracer.events import FORMAT_VERSION
from tracer.validation import (
    MAX_CODE_CHARS,
    MAX_STRING,
    TraceRejected,
    parse_trace,
    validate_trace,
)

EXAMPLE = VERSION_1_EXAMPLES / "async-io-4-requests.json"


@pytest.fixture
def document() -> dict[str, Any]:
    """A real recording (bundled example, recorded from the async-io scenario)."""
    return json.loads(EXAMPLE.read_bytes())


def test_it_accepts_a_real_recording_unchanged(document):
    document["version"] = FORMAT_VERSION
    raw = json.dumps(document).encode()
    assert parse_trace(raw) == document


def test_it_reads_a_version_1_document_as_the_current_version(document):
    document["version"] = 1
    parsed = parse_trace(json.dumps(document).encode())
    assert parsed["version"] == FORMAT_VERSION == 3
    assert parsed["events"] == document["events"]


def test_it_accepts_the_code_of_an_edited_run(document):
    document["version"] = FORMAT_VERSION
    document["code"] = {
        **CODE,
        "text": "# <script>alert(1)</script>\n" + "x" * (MAX_CODE_CHARS - 40),
        "errors": [{"line": 1, "message": "MemoryError"}, {"line": None, "message": "x"}],
        "stopped": "It used more than 10 s of CPU time, the limit, and was stopped.",
    }
    assert validate_trace(copy.deepcopy(document)) == document


def test_it_accepts_script_payloads_as_plain_data(document):
    document["version"] = FORMAT_VERSION
    document["events"][3]["locals"]["label"] = "<script>alert(1)</script>"
    document["requests"][0]["url"] = "/run/async-io/?x=<img src=x onerror=alert(1)>"
    assert validate_trace(copy.deepcopy(document)) == document


def _nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(depth):
        value = {"a": value}
    return value


def mutate(path: str, value: Any):
    def apply(document: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        target: Any = document
        for part in parents:
            target = target[int(part)] if part.isdigit() else target[part]
        if value is DELETE:
            del target[last]
        else:
            target[int(last) if last.isdigit() else last] = value

    return apply


DELETE = object()
# The code of an edited view's run (the playground), as a document carries it.
CODE = {"file": "edited_view.py", "view": "async_io", "text": "x = 1\n", "errors": []}
DOCUMENT_CASES = [
    ("wrong format", mutate("format", "chrome-trace"), "format", "not a trace document"),
    ("older version", mutate("version", 0), "version", "not supported"),
    (
        "newer version",
        mutate("version", FORMAT_VERSION + 1),
        "version",
        "newer than this tool reads",
    ),
    ("version as text", mutate("version", "1"), "version", "not supported"),
    ("missing field", mutate("clock", DELETE), "clock", "is missing"),
    ("unknown field", mutate("extra", 1), "extra", "is not a field"),
    ("bad id", mutate("id", "../../etc/passwd"), "id", "letters, digits"),
    (
        "t_ns as text",
        mutate("events.4.t_ns", "soon"),
        "events[4].t_ns",
        "must be an integer, got string",
    ),
    ("seq as bool", mutate("events.0.seq", True), "events[0].seq", "got true/false"),
    ("unknown kind", mutate("events.2.kind", "view.exploded"), "events[2].kind", "unknown kind"),
    ("kind as a list", mutate("events.2.kind", ["view.started"]), "events[2].kind", "unknown kind"),
    ("kind as an object", mutate("events.2.kind", {}), "events[2].kind", "unknown kind"),
    ("unknown event key", mutate("events.2.onclick", "x"), "events[2].onclick", "not a field"),
    ("seq out of order", mutate("events.5.seq", 9), "events[5].seq", "expected 6, got 9"),
    ("unknown request", mutate("events.1.request", "r99"), "events[1].request", "not in requests"),
    ("no request", mutate("events.1.request", None), "events[1].request", "only a loop.blocked"),
    (
        "huge string",
        mutate("events.3.awaiting", "x" * (MAX_STRING + 1)),
        "events[3].awaiting",
        "at most",
    ),
    (
        "too many locals",
        mutate("events.3.locals", {f"v{i}": "1" for i in range(65)}),
        "events[3].locals",
        "at most 64",
    ),
    (
        "non-string local",
        mutate("events.3.locals", {"x": 1}),
        "events[3].locals.x",
        "must be strings",
    ),
    (
        "negative duration",
        mutate("events.16.duration_ns", -5),
        "events[16].duration_ns",
        "cannot be negative",
    ),
    ("duplicate request id", mutate("requests.1.id", "r1"), "requests[1].id", "used twice"),
    ("events not a list", mutate("events", {"0": {}}), "events", "must be a list"),
    ("scenario slug", mutate("scenario.slug", "<b>"), "scenario.slug", "lowercase"),
    ("deep server object", mutate("server", {"a": "x" * (MAX_STRING + 1)}), "server.a", "at most"),
    ("server nested 40 deep", mutate("server", _nested(40)), "server" + ".a" * 32, "nested more"),
    (
        "code too long",
        mutate("code", {**CODE, "text": "x" * (MAX_CODE_CHARS + 1)}),
        "code.text",
        f"at most {MAX_CODE_CHARS}",
    ),
    ("code in a folder", mutate("code", {**CODE, "file": "../views.py"}), "code.file", "folders"),
    ("code view", mutate("code", {**CODE, "view": "x; import os"}), "code.view", "function name"),
    (
        "code without errors",
        mutate("code", {k: v for k, v in CODE.items() if k != "errors"}),
        "code.errors",
        "is missing",
    ),
    (
        "code error at line 0",
        mutate("code", {**CODE, "errors": [{"line": 0, "message": "x"}]}),
        "code.errors[0].line",
        "1 or more",
    ),
    (
        "code error with markup",
        mutate("code", {**CODE, "errors": [{"line": 1, "message": "x", "html": "<b>"}]}),
        "code.errors[0].html",
        "not a field",
    ),
    ("code stopped", mutate("code", {**CODE, "stopped": 5}), "code.stopped", "must be a string"),
]


@pytest.mark.parametrize(
    ("name", "change", "where", "message"), DOCUMENT_CASES, ids=[c[0] for c in DOCUMENT_CASES]
)
def test_it_rejects_a_malformed_document(document, name, change, where, message):
    change(document)
    with pytest.raises(TraceRejected) as rejected:
        parse_trace(json.dumps(document).encode())
    assert rejected.value.where == where
    assert message in rejected.value.message
    assert str(rejected.value).startswith(where)


FILE_CASES = [
    ("truncated", lambda raw: raw[: len(raw) // 2], "not valid JSON", "line"),
    ("not UTF-8", lambda raw: b"\xff\xfe" + raw, "not UTF-8", ""),
    ("NaN", lambda raw: raw.replace(b'"bytes": 42', b'"bytes": NaN', 1), "NaN is not allowed", ""),
    (
        "duplicate key",
        lambda raw: raw.replace(b'"clock":', b'"clock": "x", "clock":', 1),
        "appears twice",
        "",
    ),
    ("deep nesting", lambda raw: b"[" * 100_000 + b"]" * 100_000, "nested too deeply", ""),
    (
        "deep object in server",
        lambda raw: raw.replace(
            b'"server": {', b'"server": {"x": ' + b'{"a": ' * 1500 + b"1" + b"}" * 1500 + b", ", 1
        ),
        "nested",
        "",
    ),
    ("a list, not an object", lambda raw: b"[1, 2]", "JSON object", ""),
    ("empty file", lambda raw: b"", "not valid JSON", "line 1"),
]


@pytest.mark.parametrize(
    ("name", "change", "message", "where"), FILE_CASES, ids=[c[0] for c in FILE_CASES]
)
def test_it_rejects_a_malformed_file(document, name, change, message, where):
    raw = change(json.dumps(document).encode())
    assert raw != json.dumps(document).encode()
    with pytest.raises(TraceRejected) as rejected:
        parse_trace(raw)
    assert message in rejected.value.message
    assert rejected.value.where.startswith(where)


def test_it_rejects_a_file_over_the_size_limit_before_parsing(document):
    raw = json.dumps(document).encode()
    with pytest.raises(TraceRejected) as rejected:
        parse_trace(raw + b" garbage that is never parsed", max_bytes=len(raw))
    assert f"the limit is {len(raw)} bytes" in rejected.value.message
