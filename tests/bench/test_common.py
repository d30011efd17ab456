"""The benches' CPU figures: read from /proc as the overhead bench reads them."""

from __future__ import annotations

import os

from bench.common import cpu_seconds, process_cpu


def test_cpu_seconds_counts_fields_from_the_last_parenthesis():
    ticks = os.sysconf("SC_CLK_TCK")
    # A command name with a space and a ")" of its own; utime 250 and stime 50 ticks.
    line = "4242 (odd) name) S 1 4242 4242 0 -1 4194560 10 0 0 0 250 50 0 0 20 0 3 0 99 0 0"
    assert cpu_seconds(line) == 300 / ticks


def test_process_cpu_reads_this_process_and_its_main_thread():
    figures = process_cpu(os.getpid())
    assert figures is not None
    whole, main = figures
    assert whole >= main >= 0
    assert process_cpu(2**22 + 12345) is None  # no such process
