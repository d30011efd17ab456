"""The limits on what one visitor, and everyone together, can start."""

from __future__ import annotations

import threading

import pytest

from visualizer.limits import ConcurrencyLimit, LimitReached, RateLimit, client_of


def test_a_client_gets_its_share_and_no_more():
    limit = ConcurrencyLimit("lab runs", per_client=1, total=3)
    limit.acquire("a")

    with pytest.raises(LimitReached, match="You already have 1 of lab runs"):
        limit.acquire("a")
    limit.acquire("b")
    assert limit.running == 2


def test_everyone_together_gets_the_total_and_no_more():
    limit = ConcurrencyLimit("lab runs", per_client=2, total=2)
    limit.acquire("a")
    limit.acquire("b")

    with pytest.raises(LimitReached, match="as many lab runs as it allows"):
        limit.acquire("c")


def test_a_place_is_given_back_when_the_work_ends_even_if_it_failed():
    limit = ConcurrencyLimit("lab runs", per_client=1, total=1)
    with pytest.raises(RuntimeError), limit.hold("a"):
        raise RuntimeError("the run failed")

    with limit.hold("a"):
        assert limit.running == 1
    assert limit.running == 0


def test_concurrent_acquires_never_exceed_the_total():
    limit = ConcurrencyLimit("runs", per_client=100, total=5)
    granted = []

    def try_one(index: int) -> None:
        try:
            limit.acquire(f"client-{index % 7}")
            granted.append(index)
        except LimitReached:
            pass

    threads = [threading.Thread(target=try_one, args=(i,)) for i in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(granted) == 5 == limit.running


def test_a_rate_limit_counts_a_window_per_client():
    limit = RateLimit("imports", count=2, seconds=60)
    limit.check("a", now=0)
    limit.check("a", now=10)

    with pytest.raises(LimitReached, match=r"At most 2 imports every 60 s.*in 50 s"):
        limit.check("a", now=10)
    limit.check("b", now=10)
    limit.check("a", now=61)


def test_the_client_is_the_peer_address():
    assert client_of({"client": ("203.0.113.9", 5555)}) == "203.0.113.9"
    assert client_of({}) == "unknown"
