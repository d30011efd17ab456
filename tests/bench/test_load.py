"""The load benchmarks' own judgement: what counts as a limit's refusal, an error in the
server's log, a percentile."""

from __future__ import annotations

import pytest

from bench.load import LIMIT_MESSAGE, percentile, poll_url
from bench.soak import server_errors
from visualizer.limits import ConcurrencyLimit, LimitReached, Limits, RateLimit


def refusals() -> list[str]:
    """Every sentence visualizer/limits.py says when a limit is reached."""
    said = []
    for per_client, total in ((1, 5), (5, 1)):
        limit = ConcurrencyLimit("lab runs", per_client=per_client, total=total)
        limit.acquire("a")
        with pytest.raises(LimitReached) as refused:
            limit.acquire("a")
        said.append(str(refused.value))
    rate = RateLimit("imports", count=1, seconds=60)
    rate.check("a", now=0)
    with pytest.raises(LimitReached) as refused:
        rate.check("a", now=1)
    said.append(str(refused.value))
    unused = ConcurrencyLimit("x", 1, 1)
    work = Limits(
        lab_runs=unused,
        wsgi_runs=unused,
        live_runs=unused,
        imports=rate,
        run_cpu_work=10,
        view_requests=unused,
        imports_at_once=unused,
    )
    with pytest.raises(LimitReached) as refused:
        work.check_work(2, {"work": 6})
    said.append(str(refused.value))
    return said


def test_it_knows_every_limits_refusal():
    said = refusals()

    assert len(said) == 4
    assert all(LIMIT_MESSAGE.search(sentence) for sentence in said), said


def test_it_does_not_take_other_problems_for_a_refusal():
    for problem in ("Choose a scenario.", "Could not run: requests must be a whole number"):
        assert LIMIT_MESSAGE.search(problem) is None


def test_it_counts_tracebacks_by_their_last_line_and_skips_the_access_log():
    log = "\n".join(
        [
            '127.0.0.1:5000 - - [02/Dec/2026:03:52:29] "GET /run/async-io/" 200 42',
            "Internal Server Error: /run/async-orm-sync/",
            "Traceback (most recent call last):",
            '  File "x.py", line 1, in <module>',
            "RuntimeError: the class session kept changing",
            "class ABC: could not note a follower",
        ]
    )

    found = server_errors(log)

    assert found == {
        "server traceback: RuntimeError: the class session kept changing": 1,
        "server log: class ABC: could not note a follower": 1,
    }


def test_a_percentile_is_the_nearest_rank():
    values = [float(n) for n in range(1, 101)]

    assert percentile(values, 50) == 50
    assert percentile(values, 99) == 99
    assert percentile([7.0], 99) == 7


def test_the_poll_address_is_read_unescaped_from_the_progress_panel():
    panel = '<section hx-get="/lab/runs/ab/?recording=ab&amp;compare=cd" hx-trigger="every 300ms">'

    assert poll_url(panel) == "/lab/runs/ab/?recording=ab&compare=cd"
    assert poll_url("<section>finished</section>") is None
