"""What every bench prints: the machine it ran on, each round, and the median round against
its target, so that one noisy round does not decide a result."""

from __future__ import annotations

import argparse
import os
import platform
import statistics
from collections.abc import Mapping, Sequence
from importlib import metadata
from typing import Any

MIN_ROUNDS = 3
# The times of a request that tile() moves with its copy.
SHIFTED = ("received_ns", "finished_ns", "client_sent_ns", "client_done_ns")
PACKAGES = ("Django", "channels", "daphne", "django-htmx", "playwright")


def machine() -> str:
    """One line on the machine: CPUs, load, OS, Python and the stack's versions."""
    versions = []
    for package in PACKAGES:
        try:
            versions.append(f"{package} {metadata.version(package)}")
        except metadata.PackageNotFoundError:
            continue
    load = ", ".join(f"{figure:.2f}" for figure in os.getloadavg())
    return (
        f"machine: {os.cpu_count()} CPUs (load average {load}), {platform.system()} "
        f"{platform.machine()}, Python {platform.python_version()}, {', '.join(versions)}"
    )


def cpu_seconds(stat_line: str) -> float:
    """User plus system CPU seconds from a line of ``/proc/<pid>/stat`` (or of one thread's
    ``/proc/<pid>/task/<tid>/stat``). The command name in parentheses may hold spaces and
    parentheses itself, so the fields are counted from its last ``)``."""
    fields = stat_line[stat_line.rindex(")") + 2 :].split()
    # utime and stime are fields 14 and 15 of the line; fields[0] here is field 3 (state).
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def process_cpu(pid: int) -> tuple[float, float] | None:
    """CPU seconds used so far by process ``pid`` and by its main thread (which, in a Daphne
    server, runs the event loop); None where /proc cannot tell."""
    try:
        with open(f"/proc/{pid}/stat") as whole, open(f"/proc/{pid}/task/{pid}/stat") as main:
            return cpu_seconds(whole.read()), cpu_seconds(main.read())
    except (OSError, ValueError, IndexError):
        return None


def add_rounds_argument(parser: argparse.ArgumentParser, default: int = MIN_ROUNDS) -> None:
    parser.add_argument(
        "--rounds",
        type=int,
        default=default,
        help=f"rounds to run; the median round is the result (at least {MIN_ROUNDS})",
    )


def check_rounds(parser: argparse.ArgumentParser, rounds: int) -> None:
    if rounds < MIN_ROUNDS:
        parser.error(f"--rounds must be at least {MIN_ROUNDS}: one round is not a result")


def median_against_target(
    what: str, figures: Sequence[float], target: float, unit: str = "", at_most: bool = True
) -> bool:
    """Print every round's figure and the median's verdict; return whether it met the
    target (``at_most``: the figure must not exceed it, else it must reach it)."""
    rounds = ", ".join(f"{figure:.3f}{unit}" for figure in figures)
    median = statistics.median(figures)
    met = median <= target if at_most else median >= target
    sign = "<=" if at_most else ">="
    print(f"{what}: rounds {rounds}")
    print(
        f"{what}: median of {len(figures)} rounds {median:.3f}{unit}, target {sign} "
        f"{target:g}{unit}: {'met' if met else 'NOT met'}"
    )
    return met


def tile(document: Mapping[str, Any], events: int) -> dict[str, Any]:
    """Repeat a recorded run, one copy after another (new request ids, times shifted,
    sequence renumbered), until the document holds ``events`` events."""
    requests: list[dict[str, Any]] = []
    out_events: list[dict[str, Any]] = []
    span = max(e["t_ns"] for e in document["events"]) - min(
        r["received_ns"] for r in document["requests"]
    )
    copy = 0
    while len(out_events) < events:
        shift = copy * (span + 1_000_000)
        names = {}
        for request in document["requests"]:
            names[request["id"]] = f"r{len(requests) + 1}"
            moved = {**request, "id": names[request["id"]]}
            for name in SHIFTED:
                if isinstance(moved.get(name), int):
                    moved[name] += shift
            if "loop_steps" in moved:
                moved["loop_steps"] = [[t + shift for t in step] for step in moved["loop_steps"]]
            requests.append(moved)
        for event in document["events"]:
            if len(out_events) == events:
                break
            moved = {**event, "seq": len(out_events) + 1, "t_ns": event["t_ns"] + shift}
            moved["request"] = names.get(event["request"]) if event["request"] else None
            for name in ("started_ns", "called_ns"):
                if name in moved:
                    moved[name] += shift
            out_events.append(moved)
        copy += 1
    used = {e["request"] for e in out_events}
    return {**document, "requests": [r for r in requests if r["id"] in used], "events": out_events}
