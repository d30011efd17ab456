"""What the load benchmarks (soak.py, flood.py, fanout.py) share: the machine they ran on,
the server's memory, percentiles, and a browser's way through the app's forms.

The scripts run from the repository root with ``bench/`` first on the path, so they import
this module as ``bench.load`` once the root is on the path too.
"""

from __future__ import annotations

import html
import math
import re
import statistics
from collections.abc import Sequence
from pathlib import Path

import httpx

# The class the benchmarks start: a bundled example, stepped through by the instructor.
EXAMPLE = "/scenarios/async-io/?recording=example-async-io-4-requests"
CSRF = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
# The sentences visualizer/limits.py says when a limit is reached.
LIMIT_MESSAGE = re.compile(
    r"as many [^.]+ as it allows|going on as one visitor may"
    r"|every \d+ s from one visitor|one run may ask for at most"
)
POLL_URL = re.compile(r'hx-get="([^"]+)" hx-trigger="every 300ms"')


def percentile(values: Sequence[float], p: float) -> float:
    """The nearest-rank percentile (NaN for no values)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p * len(ordered) / 100) - 1)]


def median(values: Sequence[float]) -> float:
    kept = [value for value in values if not math.isnan(value)]
    return statistics.median(kept) if kept else math.nan


def rss_mb(pid: int | None) -> float | None:
    """A process's resident memory, from /proc (None if it is gone)."""
    if pid is None:
        return None
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    found = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
    return int(found[1]) / 1024 if found else None


def children(pid: int) -> dict[int, str]:
    """The processes ``pid`` started, with their command lines."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue  # it exited meanwhile
        # The parent's pid is the second field after the command name, which is in ().
        if int(stat.rpartition(")")[2].split()[1]) == pid:
            found[int(entry.name)] = command
    return found


def subject_pid(ui_pid: int) -> int | None:
    """The UI's subject server (visualizer/scenarios/subject.py): its one Daphne child, run
    as ``python -m visualizer.serve_asgi`` (the lab's gunicorn servers are children too)."""
    return next(
        (pid for pid, command in children(ui_pid).items() if "visualizer.serve_asgi" in command),
        None,
    )


def csrf_token(page: str) -> str:
    found = CSRF.search(page)
    if found is None:
        raise RuntimeError("no CSRF token on the page")
    return found[1]


def start_class(base_url: str, page: str = EXAMPLE) -> tuple[str, str, int]:
    """As an instructor's browser: start a class on ``page``. Returns the class code, the
    instructor's cookie and the class's version."""
    with httpx.Client(base_url=base_url, timeout=30) as browser:
        token = csrf_token(browser.get(f"{page}&step=1").text)
        started = browser.post(
            "/class/start/",
            data={"csrfmiddlewaretoken": token, "url": f"{page}&step=1"},
            headers={"Referer": f"{base_url}{page}"},
        )
        if started.status_code != 302:
            raise RuntimeError(f"starting a class failed: {started.status_code} {started.text}")
        code = started.headers["location"].split("/")[2]
        followed = browser.get(f"/class/{code}/").text
        found = re.search(r'data-class-version="(\d+)"', followed)
        if found is None:
            raise RuntimeError("the follower page carries no version")
        return code, started.cookies["class-drive"], int(found[1])


async def post_lab_form(browser: httpx.AsyncClient, fields: dict[str, str]) -> httpx.Response:
    """As the lab page with JavaScript: load the form, then post it the way htmx does
    (the answer is the progress panel, or a problem in its place)."""
    page = await browser.get("/lab/")
    page.raise_for_status()
    return await browser.post(
        "/lab/run/",
        data={"csrfmiddlewaretoken": csrf_token(page.text), **fields},
        headers={
            "HX-Request": "true",
            "HX-Target": "lab-live",
            "Referer": f"{browser.base_url}lab/",
        },
    )


def poll_url(panel: str) -> str | None:
    """Where the progress panel asks how the run goes (None once it has stopped asking)."""
    found = POLL_URL.search(panel)
    return html.unescape(found[1]) if found else None
