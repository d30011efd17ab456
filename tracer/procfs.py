"""Reading small /proc files from inside a traced process without giving the GIL away.

``os.pread`` releases the GIL for the system call; getting it back can wait up to the
switch interval (5 ms) while another thread computes. The tracer reads /proc often (thread
counts, which system call a thread is in), so it calls libc's ``pread`` through
``ctypes.PyDLL``, which keeps the GIL for the few microseconds the call takes.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import sys
import threading
from typing import Any


@functools.cache
def _pread() -> Any:
    if sys.platform != "linux":
        return None
    with contextlib.suppress(OSError, AttributeError):
        pread = ctypes.PyDLL(None).pread
        pread.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_long]
        pread.restype = ctypes.c_ssize_t
        return pread
    return None


def available() -> bool:
    return _pread() is not None


def read_at_start(fd: int, buffer: Any) -> bytes | None:
    """The start of the file open at ``fd`` (as much as ``buffer`` holds), read with the
    GIL kept; None if it cannot be read."""
    pread = _pread()
    if pread is None:
        return None
    count = pread(fd, buffer, len(buffer), 0)
    return buffer.raw[:count] if count > 0 else None


def native_ids() -> dict[int, int | None]:
    """The OS thread id of every live thread, by ident.

    ``Thread.native_id`` is set when a thread starts and kept: after ``os.fork`` the
    forking thread, now the child's main thread, still shows the parent's id (CPython
    gh-132542, fixed after 3.13.0), and /proc has no such task. Gunicorn's workers serve
    on that thread. On Linux the main thread is the process's first task, whose id is
    the pid.
    """
    main = threading.main_thread()
    ids = {t.ident: t.native_id for t in threading.enumerate() if t.ident is not None}
    if sys.platform == "linux" and main.ident in ids:
        ids[main.ident] = os.getpid()
    return ids
