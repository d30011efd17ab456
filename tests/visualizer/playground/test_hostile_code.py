"""Hostile code in the playground, through the scenario page's form on a real server: each
attempt is contained, said plainly, and the server goes on serving. Then the happy path:
the edit the async-sleep lesson suggests takes the loop stall out of the trace."""

from __future__ import annotations

import html
import textwrap
from pathlib import Path

import httpx
from django.conf import settings

from tests.conftest import kinds
from tests.visualizer.playground.conftest import (
    Responsiveness,
    post_edit,
    recording_of,
    stalls_of_the_code,
)
from tracer import events
from tracer.validation import parse_trace
from visualizer.server_process import BASE_DIR

HEADER = "from django.http import HttpRequest, JsonResponse\n\n\n"


def edited(body: str, before: str = "") -> str:
    """An async_sleep view (the async-sleep scenario's name) with this body."""
    return (
        HEADER
        + textwrap.dedent(before)
        + "async def async_sleep(request: HttpRequest) -> JsonResponse:\n"
        + textwrap.indent(textwrap.dedent(body), "    ")
    )


def line_of(source: str, text: str) -> int:
    return next(n for n, line in enumerate(source.splitlines(), 1) if text in line)


def errors_of(document: dict) -> list[dict]:
    return document["code"]["errors"]


def test_an_infinite_loop_is_stopped_by_the_cpu_limit(playground_server):
    source = edited("while True:\n    pass\n")
    with Responsiveness(playground_server) as others:
        answer, shown = post_edit(playground_server, "async-sleep", source)

    assert answer.status_code == 302 and shown is not None
    document = recording_of(playground_server, shown)
    stopped = "It used more than 3 s of CPU time, the limit, and was stopped."
    assert document["code"]["stopped"] == stopped
    assert stopped in html.unescape(shown.text)
    # What it did until then: the view started and never returned.
    assert events.VIEW_STARTED in kinds(document)
    assert events.VIEW_RETURNED not in kinds(document)
    library = httpx.get(f"{playground_server.base_url}/traces/", timeout=30).text
    assert f'<a href="/traces/{document["id"]}/">' in library
    row = library.split(f'<a href="/traces/{document["id"]}/">', 1)[1].split("</tr>", 1)[0]
    assert "Interrupted" in row
    # The server answered all along.
    assert others.answers and set(others.answers) == {200} and not others.failures


def test_a_view_that_never_ends_is_stopped_by_the_wall_clock_limit(playground_server):
    source = edited("time.sleep(3600)\n", before="import time\n\n\n")
    with Responsiveness(playground_server) as others:
        answer, shown = post_edit(playground_server, "async-sleep", source)

    assert answer.status_code == 302 and shown is not None
    document = recording_of(playground_server, shown)
    assert document["code"]["stopped"] == (
        "It ran for more than 10 s of wall-clock time, the limit, and was stopped."
    )
    assert set(others.answers) == {200} and not others.failures


def test_a_fork_bomb_cannot_start_a_process(playground_server):
    source = edited(
        """\
        os = __import__("os")
        while True:
            os.fork()
        """
    )
    answer, shown = post_edit(playground_server, "async-sleep", source)

    assert answer.status_code == 302 and shown is not None
    document = recording_of(playground_server, shown)
    assert errors_of(document) == [
        {
            "line": line_of(source, "os.fork()"),
            "message": "PermissionError: [Errno 1] Operation not permitted (the playground "
            "does not let a view start processes, signal other processes or change its "
            "limits)",
        }
    ]
    line = line_of(source, "os.fork()")
    assert (
        f'data-goto-line="{line}"><strong>Line {line}</strong></a>: PermissionError' in shown.text
    )
    # The view answered (a server error), and the run finished.
    assert [r["status"] for r in document["requests"]] == [500]


def test_a_subprocess_cannot_be_started_either(playground_server):
    source = edited('__import__("subprocess").run(["/usr/bin/true"])\n')
    _, shown = post_edit(playground_server, "async-sleep", source)

    assert shown is not None
    [error] = errors_of(recording_of(playground_server, shown))
    assert error["message"].startswith("PermissionError: [Errno 1] Operation not permitted")


def test_a_4_gb_allocation_fails_within_the_memory_limit(playground_server):
    source = edited("data = bytearray(4 * 1024**3)\nreturn JsonResponse({'n': len(data)})\n")
    _, shown = post_edit(playground_server, "async-sleep", source)

    assert shown is not None
    assert errors_of(recording_of(playground_server, shown)) == [
        {
            "line": line_of(source, "bytearray"),
            "message": "MemoryError (more memory than the 1024 MB of address space allowed)",
        }
    ]


def test_the_servers_secrets_and_files_are_not_visible(playground_server, server_data_dir):
    paths = [
        "/etc/passwd",
        "/etc/shadow",
        f"{server_data_dir}/db.sqlite3",
        f"{server_data_dir}/secret_key",
        f"{BASE_DIR}/var/secret_key",
        f"{BASE_DIR}/var/db.sqlite3",
        "/proc/1/environ",
    ]
    source = edited(
        f"""\
        from django.conf import settings
        seen = []
        for path in {paths!r}:
            try:
                seen.append(open(path, "rb").read(300))
            except OSError as error:
                seen.append(type(error).__name__)
        environment = dict(__import__("os").environ)
        raise RuntimeError(repr([seen, environment, settings.SECRET_KEY]))
        """
    )
    _, shown = post_edit(playground_server, "async-sleep", source)

    assert shown is not None
    [error] = errors_of(recording_of(playground_server, shown))
    seen = error["message"]
    assert seen.startswith("RuntimeError: [['FileNotFoundError', 'FileNotFoundError',")
    # /proc/1 is the sandbox's own first process: its environment is empty.
    assert "'FileNotFoundError', b''], {" in seen
    assert settings.SECRET_KEY not in seen
    for secret in (Path(server_data_dir) / "secret_key", BASE_DIR / "var" / "secret_key"):
        if secret.exists():
            assert secret.read_text().strip() not in seen
    assert "root:" not in seen
    for name in ("SECRET_KEY", "DATABASE_URL", "DATA_DIR", "VISUALIZER"):
        assert name not in seen.split("], {", 1)[1].split("}", 1)[0]


def test_there_is_no_network_but_the_sandboxs_own(playground_server):
    port = playground_server.port
    source = edited(
        f"""\
        socket = __import__("socket")
        tried = []
        for address in [("1.1.1.1", 80), ("127.0.0.1", {port})]:
            try:
                socket.create_connection(address, timeout=3).close()
                tried.append("connected")
            except OSError as error:
                tried.append(str(error))
        # The upstream service runs inside the sandbox, on its own loopback.
        from visualizer.scenarios.scenario_views import fetch_data
        await fetch_data(0)
        raise RuntimeError(repr(tried))
        """
    )
    _, shown = post_edit(playground_server, "async-sleep", source)

    assert shown is not None
    [error] = errors_of(recording_of(playground_server, shown))
    # The server's own port is not reachable: its loopback is the sandbox's.
    assert error["message"] == (
        "RuntimeError: ['[Errno 101] Network is unreachable', '[Errno 111] Connection refused']"
    )


def test_nothing_can_be_written_outside_the_scratch_folder(playground_server, server_data_dir):
    targets = [
        f"{BASE_DIR}/visualizer/playground_was_here.py",
        f"{server_data_dir}/playground_was_here",
        "/etc/playground_was_here",
        "/tmp/scratch.txt",
    ]
    source = edited(
        f"""\
        wrote = []
        for path in {targets!r}:
            try:
                with open(path, "w") as file:
                    file.write("x")
                wrote.append("written")
            except OSError as error:
                wrote.append(error.strerror)
        raise RuntimeError(repr(wrote))
        """
    )
    _, shown = post_edit(playground_server, "async-sleep", source)

    assert shown is not None
    [error] = errors_of(recording_of(playground_server, shown))
    assert error["message"] == (
        "RuntimeError: ['Read-only file system', 'No such file or directory', "
        "'No such file or directory', 'written']"
    )
    for target in targets[:2]:
        assert not Path(target).exists()


def test_the_view_cannot_kill_its_parent_or_the_server(playground_server):
    source = edited(
        """\
        os, signal = __import__("os"), __import__("signal")
        outcomes = []
        for pid in (os.getppid(), 1, -1, 0):
            try:
                os.kill(pid, signal.SIGKILL)
                outcomes.append("sent")
            except OSError as error:
                outcomes.append(error.strerror)
        return JsonResponse({"outcomes": outcomes})
        """
    )
    answer, shown = post_edit(playground_server, "async-sleep", source)

    assert answer.status_code == 302 and shown is not None
    document = recording_of(playground_server, shown)
    assert errors_of(document) == []
    [returned] = [e for e in document["events"] if e["kind"] == events.VIEW_RETURNED]
    assert returned["locals"]["outcomes"] == repr(["Operation not permitted"] * 4)
    assert playground_server.process.poll() is None
    assert httpx.get(f"{playground_server.base_url}/", timeout=10).status_code == 200


def test_a_1_mb_source_is_refused_before_it_is_read(playground_server):
    source = edited("return JsonResponse({})\n") + "#" * (1024 * 1024)
    answer, shown = post_edit(playground_server, "async-sleep", source)

    assert answer.status_code == 413 and shown is None
    assert answer.text == (
        "The code is too large: the playground takes at most 65,536 bytes of code."
    )


def test_a_source_just_over_the_limit_is_refused_with_the_form(playground_server):
    source = edited("return JsonResponse({})\n") + "# " + "x" * (70 * 1024)
    answer, shown = post_edit(playground_server, "async-sleep", source)

    assert answer.status_code == 400 and shown is None
    assert "The code is longer than 65,536 characters." in answer.text


def test_a_recursion_bomb_is_contained(playground_server):
    source = edited(
        "return JsonResponse({'depth': down(0)})\n",
        before="def down(n):\n    return down(n + 1) + 1\n\n\n",
    )
    _, shown = post_edit(playground_server, "async-sleep", source)

    assert shown is not None
    assert errors_of(recording_of(playground_server, shown)) == [
        {
            "line": line_of(source, "return down(n + 1)"),
            "message": "RecursionError: maximum recursion depth exceeded (deeper recursion "
            "than Python allows)",
        }
    ]


def test_a_recursion_bomb_past_a_raised_limit_crashes_only_the_worker(playground_server):
    source = edited(
        "return JsonResponse({'depth': down(0)})\n",
        before='__import__("sys").setrecursionlimit(10**9)\n\n\n'
        "def down(n):\n    return down(n + 1) + 1\n\n\n",
    )
    with Responsiveness(playground_server) as others:
        answer, shown = post_edit(playground_server, "async-sleep", source)

    assert answer.status_code == 302 and shown is not None
    code = recording_of(playground_server, shown)["code"]
    # Python 3.13's frames live on the heap: the recursion runs until the worker's stack
    # overflows, or, on a slow machine, until its CPU limit stops it first. Either way only
    # the worker ends, and the page says which.
    stopped = code.get("stopped", "")
    assert stopped.startswith("It crashed (a segmentation fault)") or stopped == (
        "It used more than 3 s of CPU time, the limit, and was stopped."
    ), code
    assert set(others.answers) == {200} and not others.failures, others.failures


def test_the_async_sleep_edit_takes_the_loop_stall_away(playground_server):
    scenario_page = httpx.get(f"{playground_server.base_url}/scenarios/async-sleep/").text
    original = html.unescape(
        scenario_page.split('id="id_edit-source">', 1)[1].split("</textarea>", 1)[0]
    ).lstrip("\n")
    assert "time.sleep(delay_ms / 1000)" in original
    fixed = original.replace("time.sleep(delay_ms / 1000)", "await asyncio.sleep(delay_ms / 1000)")

    _, before = post_edit(playground_server, "async-sleep", original, requests="2", delay_ms="200")
    _, after = post_edit(playground_server, "async-sleep", fixed, requests="2", delay_ms="200")

    assert before is not None and after is not None
    blocking, awaiting = (
        recording_of(playground_server, before),
        recording_of(playground_server, after),
    )
    assert len(stalls_of_the_code(blocking)) == 2
    assert stalls_of_the_code(awaiting) == []
    assert kinds(awaiting).count(events.AWAIT_SUSPENDED) == 2
    assert awaiting["code"]["text"] == fixed and awaiting["code"]["errors"] == []
    # The player shows the code that ran, the await's line marked at its pause.
    suspended = next(e for e in awaiting["events"] if e["kind"] == events.AWAIT_SUSPENDED)
    step = httpx.get(
        f"{playground_server.base_url}/scenarios/async-sleep/",
        params={"recording": awaiting["id"], "step": suspended["seq"]},
    ).text
    assert "The edited code that ran" in step
    marked = step.split('aria-current="step"><span class="ln" aria-hidden="true">', 1)[1]
    assert marked.startswith(f"{line_of(fixed, 'await asyncio.sleep')}</span>")
    # The export carries the code, and the importer reads it back.
    exported = httpx.get(f"{playground_server.base_url}/traces/{awaiting['id']}/export.json")
    assert parse_trace(exported.content)["code"] == awaiting["code"]


def test_hostile_text_in_the_code_is_shown_escaped(playground_server):
    source = edited(
        "return JsonResponse({})\n",
        before="# </textarea><script>alert(1)</script>\n\n\n",
    )
    _, shown = post_edit(playground_server, "async-sleep", source)

    assert shown is not None
    assert "<script>alert(1)</script>" not in shown.text
    assert "&lt;/textarea&gt;&lt;script&gt;alert(1)&lt;/script&gt;" in shown.text
