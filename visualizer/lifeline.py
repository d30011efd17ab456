"""Servers a server starts die with it, however it ends (kill -9 included).

Every child server (the subject, the lab's gunicorn, the processes of ``serve
--processes``) is started through ``spawn``: it inherits the read end of a pipe whose only
write end stays in the process that started it. When that process ends, in any way, the
kernel closes the write end and the child's read returns end-of-file at once; the child
then exits (``watch_parent``). Unlike PR_SET_PDEATHSIG, which fires when the *thread* that
forked the child ends (a worker thread here), the pipe outlives any thread, and needs no
code between fork and exec.

Each child also carries the identity of its parent and of the database it writes to, so a
server starting up can find processes a crashed one left running (should a lifeline ever
fail) and stop them: ``stop_orphans``.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import stat
import subprocess
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

BASE_DIR = Path(__file__).resolve().parent.parent

LIFELINE_ENV = "VISUALIZER_LIFELINE"  # the inherited read end's descriptor number
PARENT_ENV = "VISUALIZER_PARENT"  # identity() of the process that started this one
DATABASE_ENV = "VISUALIZER_DATABASE"  # which database it stores in (database_marker)

_lock = threading.Lock()
_read_end: int | None = None
# Never closed: the end of this process closes it, which is what its children wait for.
_write_end: int | None = None


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return "-"


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (None: no such process). With
    the pid, it names one process: pids are reused."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return None
    return None if fields[0] == "Z" else fields[19]


def alive(pid: int) -> bool:
    return _start_time(pid) is not None


def identity(pid: int | None = None) -> str:
    """host:boot:pid:start, naming one process on one machine for as long as it runs."""
    pid = os.getpid() if pid is None else pid
    return f"{socket.gethostname()}:{_boot_id()}:{pid}:{_start_time(pid) or '-'}"


def is_running(process_identity: str) -> bool | None:
    """Whether the process named by identity() still runs; None when it ran on another
    machine (this one cannot tell). An empty or malformed identity is not running."""
    host, boot, pid, start = [*process_identity.rsplit(":", 3), "", "", ""][:4]
    if not pid.isdigit():
        return False
    if host != socket.gethostname():
        return None
    if boot != _boot_id():
        return False  # the machine has restarted since
    return _start_time(int(pid)) == start


def database_url(environ: Mapping[str, str]) -> str:
    """The database a process with this environment uses (settings.py): DATABASE_URL, else
    SQLite in DATA_DIR, by its absolute path (processes compare it)."""
    data_dir = Path(environ.get("DATA_DIR", BASE_DIR / "var")).resolve()
    return environ.get("DATABASE_URL") or f"sqlite:///{data_dir / 'db.sqlite3'}"


def database_marker(environ: Mapping[str, str] | None = None) -> str:
    """What tells the processes of one database apart from those of another."""
    return database_url(os.environ if environ is None else environ)


def spawn(
    command: Sequence[str], *, env: dict[str, str], pass_fds: Sequence[int] = (), **popen: Any
) -> subprocess.Popen[bytes]:
    """Start a child server that ends when this process does (see the module's text)."""
    global _read_end, _write_end
    with _lock:
        if _read_end is None:
            # Both ends are closed on exec (os.pipe's are not inheritable): a child gets
            # the read end only through pass_fds.
            _read_end, _write_end = os.pipe()
    child_env = {
        **env,
        LIFELINE_ENV: str(_read_end),
        PARENT_ENV: identity(),
        DATABASE_ENV: database_marker(env),
    }
    return subprocess.Popen(command, env=child_env, pass_fds=(*pass_fds, _read_end), **popen)


def watch_parent(on_gone: Callable[[], object]) -> bool:
    """In a child started by spawn(): call ``on_gone`` (on a thread of its own) as soon as
    the process that started it has ended. False, doing nothing, in a process that was not
    started that way."""
    raw = os.environ.pop(LIFELINE_ENV, "")
    if not raw.isdigit():
        return False
    fd = int(raw)
    try:
        if not stat.S_ISFIFO(os.fstat(fd).st_mode):
            return False
    except OSError:
        return False
    # Children of this process get a lifeline of their own, not this one.
    os.set_inheritable(fd, False)

    def wait() -> None:
        try:
            while os.read(fd, 1):
                pass
        except OSError:
            pass
        on_gone()

    threading.Thread(target=wait, name="lifeline", daemon=True).start()
    return True


def exit_now() -> None:
    """What a child server does when its parent has gone: end at once. Whatever it was
    doing belonged to a run that can no longer finish; nothing more of it is stored."""
    logger.warning("the process that started this server has ended: this one ends too")
    os._exit(1)


def kill_own_group() -> None:
    """As exit_now, for a process that leads a group of its own (the lab's gunicorn): its
    workers end with it, mid-request, before they store anything more."""
    logger.warning("the process that started this server has ended: this one ends too")
    if os.getpgid(0) == os.getpid():
        os.killpg(os.getpid(), signal.SIGKILL)
    os._exit(1)


def orphans(marker: str) -> list[int]:
    """Processes of this user started by a server (for the database ``marker``) that has
    ended: each carries its parent's identity in its environment."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if entry.stat().st_uid != os.getuid():
                continue
            variables = dict(
                item.partition(b"=")[::2] for item in (entry / "environ").read_bytes().split(b"\0")
            )
        except OSError:
            continue
        parent = variables.get(PARENT_ENV.encode(), b"").decode(errors="replace")
        database = variables.get(DATABASE_ENV.encode(), b"").decode(errors="replace")
        if parent and database == marker and is_running(parent) is False:
            found.append(int(entry.name))
    return found


def stop_orphans(marker: str | None = None) -> list[int]:
    """Kill what orphans() finds; returns their pids."""
    stopped = []
    for pid in orphans(marker or database_marker()):
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            continue
        stopped.append(pid)
    return stopped
