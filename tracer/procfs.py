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
import sys
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
