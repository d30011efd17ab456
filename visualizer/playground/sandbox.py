"""Run an edited view in a worker process of its own, never in the web server: under
bubblewrap (``sandboxed``), or as a plain child process (``local``), with its limits, and
read back what it reports.

The server writes the job to the worker's stdin and keeps stdin open: when the server goes
away the worker sees the end of it and exits (bubblewrap's ``--die-with-parent`` as
well). The worker's report comes back on its stdout, capped, within the wall-clock limit;
past either the worker is killed. docs/playground.md says what the sandbox allows.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import json
import logging
import os
import py_compile
import queue
import select
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from django.conf import settings

from visualizer.server_process import BASE_DIR

logger = logging.getLogger(__name__)

Mode = Literal["off", "local", "sandboxed"]
# Where the worker's own code is: the project's two packages, nothing else of the checkout
# (its var/ holds the database and the secret key).
PACKAGES = ("tracer", "visualizer")
# The largest report read from a worker (a trace of ten requests is far smaller).
MAX_OUTPUT_BYTES = 32 * 1024 * 1024
# Of the worker's stderr, the end is kept for the server's log.
STDERR_TAIL = 8 * 1024
# Where the sandbox's scenario data (the file async-file reads) is found in it.
SANDBOX_DATA_DIR = "/data"
SAMPLE_FILE = "sample.bin"
MB = 1024 * 1024
# A worker's set-up (Python, Django, Daphne, its database), before its wall clock starts.
SETUP_SECONDS = 60
# How long a run waits for a warm worker being started (starting one takes milliseconds).
START_WAIT = 5
# Where this server listens, comma-separated: set by visualizer/serve_asgi.py.
LISTEN_ENV = "VISUALIZER_LISTEN_HOSTS"


@dataclass(frozen=True)
class Limits:
    cpu_seconds: int
    wall_seconds: int
    memory_mb: int
    file_mb: int
    scratch_mb: int
    threads: int

    @classmethod
    def from_settings(cls) -> Limits:
        return cls(
            cpu_seconds=settings.PLAYGROUND_CPU_SECONDS,
            wall_seconds=settings.PLAYGROUND_WALL_SECONDS,
            memory_mb=settings.PLAYGROUND_MEMORY_MB,
            file_mb=settings.PLAYGROUND_FILE_MB,
            scratch_mb=settings.PLAYGROUND_SCRATCH_MB,
            threads=settings.PLAYGROUND_THREADS,
        )

    def for_worker(self, mode: Mode) -> dict[str, int]:
        """The worker's rlimits. RLIMIT_NPROC counts the user's tasks: in the sandbox's
        own user namespace only its own, in local mode all of the user's, so there the
        limit is what the user runs already plus the allowance (root is exempt either way;
        the seccomp filter refuses new processes whoever runs it)."""
        threads = self.threads + (user_tasks() if mode == "local" else 0)
        return {
            "cpu_seconds": self.cpu_seconds,
            "memory_bytes": self.memory_mb * MB,
            "file_bytes": self.file_mb * MB,
            "open_files": 256,
            "processes": threads,
            "core_bytes": 0,
        }


def user_tasks() -> int:
    """How many tasks (processes and threads) this user runs now, from /proc."""
    uid, count = os.getuid(), 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            if entry.stat().st_uid == uid:
                count += len(os.listdir(f"/proc/{entry.name}/task"))
        except OSError:
            continue
    return count


@dataclass(frozen=True)
class ModeState:
    mode: Mode
    reason: str  # why this mode, said on the page


def listening_on_loopback_only() -> bool:
    """Whether this server listens on loopback addresses only (visualizer/serve_asgi.py
    notes where it listens; a server started another way is not known to)."""
    hosts = [host for host in os.environ.get(LISTEN_ENV, "").split(",") if host]
    return bool(hosts) and all(_is_loopback(host) for host in hosts)


def _is_loopback(host: str) -> bool:
    host = host.strip("[]")
    return host == "localhost" or host == "::1" or host.startswith("127.")


def current_mode() -> ModeState:
    """The playground's mode, from PLAYGROUND and what this machine and server allow."""
    chosen = settings.PLAYGROUND
    if chosen == "off":
        return ModeState("off", "The playground is turned off on this server (PLAYGROUND=off).")
    if chosen in ("", "sandboxed"):
        problem = sandbox_problem()
        if problem is None:
            return ModeState("sandboxed", SANDBOXED_TEXT)
        if chosen == "sandboxed":
            return ModeState("off", f"The sandbox does not work on this server: {problem}")
    if listening_on_loopback_only():
        return ModeState("local", LOCAL_TEXT)
    return ModeState(
        "off",
        "The playground is off: bubblewrap, which isolates edited code, is not available "
        "here, and code is run without it only while the server listens on loopback only.",
    )


def playground_summary() -> str:
    """One line for the server's start-up: the mode, and what to install for the sandbox
    if it is missing."""
    state = current_mode()
    problem = sandbox_problem() if settings.PLAYGROUND != "off" else None
    if state.mode == "sandboxed":
        return "Playground (edited views): sandboxed, in bubblewrap."
    install = f" For the sandbox: {problem}" if problem else ""
    if state.mode == "local":
        return f"Playground (edited views): local, NOT isolated (loopback only).{install}"
    return f"Playground (edited views): off.{install}"


SANDBOXED_TEXT = (
    "Edited code runs in a sandbox (bubblewrap): a process of its own with no network "
    "beyond its own upstream service, none of this server's files, a scratch folder as the "
    "only place it can write, and limits on CPU time, memory, file size and threads."
)
LOCAL_TEXT = (
    "Edited code runs in a process of its own with limits on CPU time, memory, file size "
    "and threads, but NOT isolated: it can read your files and use your network. This is "
    "allowed only because the server listens on loopback only (your own machine)."
)


@functools.cache
def sandbox_problem() -> str | None:
    """Why the sandbox cannot run here (None: it can), found by starting Python in it."""
    bwrap = shutil.which(settings.PLAYGROUND_BWRAP)
    if bwrap is None:
        return f"{settings.PLAYGROUND_BWRAP} is not installed (Debian package bubblewrap)."
    command = sandbox_command([sys.executable, "-P", "-c", "import django, daphne, tracer"])
    try:
        done = subprocess.run(command, capture_output=True, timeout=30, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"bubblewrap could not start: {error}"
    if done.returncode != 0:
        return f"bubblewrap could not start Python: {done.stderr.decode(errors='replace')[-300:]}"
    return None


def _python_paths() -> list[Path]:
    """What the interpreter needs: its installation and the virtual environment."""
    paths = {Path(sys.prefix), Path(sys.base_prefix), Path(sys.executable).resolve().parent}
    paths = {path.resolve() for path in paths} | {Path(sys.prefix)}
    return sorted(paths)


def _secret_paths() -> list[Path]:
    """What must never be seen in the sandbox: the data folder (database, secret key)."""
    paths = [Path(settings.DATA_DIR).resolve()]
    database = settings.DATABASES["default"]
    if database["ENGINE"] == "django.db.backends.sqlite3":
        paths.append(Path(str(database["NAME"])).resolve().parent)
    return paths


def sandbox_command(command: list[str], limits: Limits | None = None) -> list[str]:
    """bubblewrap around ``command``: read-only system and Python, the project's packages,
    a tmpfs scratch folder as the only writable place, a new /proc and /dev, every
    namespace of its own (no network but its own loopback), no capabilities, a clean
    environment, killed when its parent dies."""
    limits = limits or Limits.from_settings()
    arguments = [shutil.which(settings.PLAYGROUND_BWRAP) or settings.PLAYGROUND_BWRAP]
    arguments += ["--ro-bind", "/usr", "/usr"]
    # The scratch folder first: Python or the project may live under /tmp (a checkout made
    # there), and a tmpfs mounted after their binds would hide them.
    arguments += ["--size", str(limits.scratch_mb * MB), "--tmpfs", "/tmp"]
    for name in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        top = Path("/") / name
        if top.is_symlink():
            arguments += ["--symlink", os.readlink(top), str(top)]
        elif top.is_dir():
            arguments += ["--ro-bind", str(top), str(top)]
    bound: list[Path] = []
    for path in [*_python_paths(), *(BASE_DIR / package for package in PACKAGES)]:
        if not any(path.is_relative_to(done) for done in bound):
            arguments += ["--ro-bind", str(path), str(path)]
            bound.append(path)
    for secret in _secret_paths():
        # Should the data folder sit inside a folder bound above, it is hidden.
        if any(secret.is_relative_to(path) for path in bound):
            arguments += ["--tmpfs", str(secret)]
    sample = Path(settings.DATA_DIR) / SAMPLE_FILE
    if sample.is_file():
        arguments += ["--ro-bind", str(sample), f"{SANDBOX_DATA_DIR}/{SAMPLE_FILE}"]
    arguments += ["--dev", "/dev", "--proc", "/proc"]
    arguments += ["--unshare-all", "--hostname", "playground", "--die-with-parent"]
    arguments += ["--new-session", "--cap-drop", "ALL", "--chdir", "/tmp", "--clearenv"]
    for name, value in worker_environment(Path("/tmp")).items():
        arguments += ["--setenv", name, value]
    return [*arguments, "--", *command]


def worker_environment(scratch: Path) -> dict[str, str]:
    """All the environment a worker gets: none of the server's own (its SECRET_KEY,
    DATABASE_URL, DATA_DIR…)."""
    return {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": str(BASE_DIR),
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONNOUSERSITE": "1",
        "HOME": str(scratch),
        "TMPDIR": str(scratch),
        "LANG": "C.UTF-8",
        # One malloc arena per thread would reserve 64 MB of address space each.
        "MALLOC_ARENA_MAX": "2",
    }


WORKER = ["-P", "-m", "visualizer.playground.worker"]


@dataclass
class WorkerResult:
    """What a worker did: how it ended, and what it reported."""

    returncode: int | None
    reports: list[dict[str, Any]] = field(default_factory=list)
    timed_out: bool = False
    output_too_large: bool = False
    stderr: str = ""
    seconds: float = 0.0
    # The worker was started ahead and had set up before the job came.
    warm: bool = False
    # It said it had set up (the run's wall clock ran from then).
    set_up: bool = False


# Each report of the worker, as it comes (the run's events stream while it runs).
OnReport = Callable[[dict[str, Any]], object]


@dataclass
class Worker:
    """A worker process, started and given its set-up: it waits for its job."""

    process: subprocess.Popen[bytes]
    mode: Mode
    limits: Limits
    # Local mode's scratch folder, removed once the worker has ended.
    scratch: str | None

    def set_up(self) -> bool:
        """Whether it has set up (its "ready" is waiting to be read) or has ended."""
        assert self.process.stdout is not None
        readable, _, _ = select.select([self.process.stdout], [], [], 0)
        return bool(readable) or self.process.poll() is not None

    def end(self) -> None:
        """Kill it if it still runs, and remove its scratch folder."""
        if self.process.poll() is None:
            _kill(self.process)
            self.process.wait()
        for stream in (self.process.stdin, self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()
        if self.scratch is not None:
            shutil.rmtree(self.scratch, ignore_errors=True)


def worker_setup(mode: Mode) -> dict[str, Any]:
    """The worker's first line: what every run needs, from this server's settings."""
    from tracer.django_integration import get_config

    config = get_config()
    return {
        "data_dir": SANDBOX_DATA_DIR if mode == "sandboxed" else str(settings.DATA_DIR),
        "io_delay_ms": settings.SCENARIO_IO_DELAY_MS,
        # The tracer's thresholds: the same as the server's own.
        "tracer": {
            "LOOP_BLOCK_THRESHOLD_MS": config["LOOP_BLOCK_THRESHOLD_MS"],
            "BLOCKING_CALL_THRESHOLD_MS": config["BLOCKING_CALL_THRESHOLD_MS"],
        },
    }


WORKER_FILE = BASE_DIR / "visualizer" / "playground" / "worker.py"
_bytecode_lock = threading.Lock()
# Tried in this process already (where the files cannot be written, once is enough).
_bytecode_tried = False


def write_worker_bytecode() -> bool:
    """Have the modules a worker's set-up imports compiled to bytecode on disk, once, if
    they are not (True if it did). A worker cannot write bytecode (in the sandbox all it
    reads is read-only, and its environment says not to), so without this each one
    compiles Django, Daphne and Twisted from source: about 3 s of CPU of its set-up, where
    1 s is left with the bytecode (measured here). Python writes it when the server imports
    a module, but not the worker's own modules, nor any where PYTHONDONTWRITEBYTECODE is set
    (as container images often do). So a worker is set up once outside the sandbox,
    allowed to write bytecode, and ended before any job: it runs none of a visitor's code,
    only the project's, as the server does. The worker module's own bytecode, which only
    this writes, tells whether it is done and up to date."""
    global _bytecode_tried
    with _bytecode_lock:
        if _bytecode_tried or _bytecode_fresh(WORKER_FILE):
            return False
        _bytecode_tried = True
        scratch = tempfile.mkdtemp(prefix="playground-bytecode-")
        environment = worker_environment(Path(scratch))
        del environment["PYTHONDONTWRITEBYTECODE"]
        try:
            process = subprocess.Popen(
                [sys.executable, *WORKER],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
                env=environment,
                cwd=scratch,
            )
            assert process.stdin is not None and process.stdout is not None
            with process:
                try:
                    process.stdin.write(json.dumps(worker_setup("local")).encode() + b"\n")
                    process.stdin.close()  # no job: it ends once set up
                    process.wait(SETUP_SECONDS)
                except (BrokenPipeError, subprocess.TimeoutExpired):
                    _kill(process)
        except OSError:
            logger.exception("could not write the playground worker's bytecode")
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        # Its own module is loaded as __main__, which Python never caches: compiled here.
        py_compile.compile(str(WORKER_FILE), doraise=False)
        return True


def _bytecode_fresh(source: Path) -> bool:
    cached = Path(importlib.util.cache_from_source(str(source)))
    try:
        return cached.stat().st_mtime >= source.stat().st_mtime
    except OSError:
        return False


def start_worker(mode: Mode, limits: Limits) -> Worker:
    """Start a worker and send it its set-up; it sets Django up and waits for its job."""
    if mode == "off":
        raise ValueError("the playground is off")
    ensure_sample_file()
    write_worker_bytecode()
    scratch: str | None = None
    if mode == "sandboxed":
        command = sandbox_command([sys.executable, *WORKER], limits)
        options: dict[str, Any] = {"env": {}, "cwd": "/"}
    else:
        scratch = tempfile.mkdtemp(prefix="playground-")
        command = [sys.executable, *WORKER]
        options = {"env": worker_environment(Path(scratch)), "cwd": scratch}
    process = subprocess.Popen(
        command,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
        **options,
    )
    worker = Worker(process, mode, limits, scratch)
    assert process.stdin is not None
    try:
        process.stdin.write(json.dumps(worker_setup(mode)).encode() + b"\n")
        process.stdin.flush()
    except BrokenPipeError:
        pass  # it ended already: its run says how
    return worker


def run_worker(
    job: dict[str, Any], mode: Mode, limits: Limits, on_report: OnReport | None = None
) -> WorkerResult:
    """Run one job in a worker, a warm one if one waits, and wait for it (blocking: call
    it off the event loop). ``on_report`` is given each report as it comes."""
    worker = warm_workers.take(mode, limits)
    warm = worker is not None
    if worker is None:
        worker = start_worker(mode, limits)
    job = {**job, "limits": limits.for_worker(mode), "seccomp": True}
    started = time.monotonic()
    try:
        result = _collect(
            worker.process, json.dumps(job).encode() + b"\n", limits.wall_seconds, on_report
        )
    finally:
        worker.end()
        # Replaced once this run is over, so that starting it does not slow the run.
        warm_workers.fill(mode, limits)
    result.seconds = time.monotonic() - started
    result.warm = warm
    return result


class WarmWorkers:
    """Workers started ahead (``PLAYGROUND_WARM_WORKERS`` of them, for the mode and limits
    of the last run), each set up and waiting for a job, used once. Started by a thread of
    their own, which lives as long as the server: bubblewrap's --die-with-parent ends a
    sandbox when the thread that started it ends."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # Told when a worker is added or a start asked for is done.
        self._changed = threading.Condition(self._lock)
        self._ready: list[Worker] = []
        # Starts asked for and not yet done: a run waits for one rather than start a
        # second worker beside it (two set-ups at once take twice as long on 2 cores).
        self._pending = 0
        self._wanted: queue.SimpleQueue[tuple[Mode, Limits] | None] = queue.SimpleQueue()
        self._starter: threading.Thread | None = None
        self._stopped = False

    def take(self, mode: Mode, limits: Limits) -> Worker | None:
        """A waiting worker for this mode and these limits, or None. Others are ended:
        they were started for settings no longer in force, or have died."""
        with self._changed:
            self._changed.wait_for(lambda: self._ready or not self._pending, START_WAIT)
            ready, self._ready = self._ready, []
        found: Worker | None = None
        for worker in ready:
            usable = worker.mode == mode and worker.limits == limits
            if found is None and usable and worker.process.poll() is None:
                found = worker
            else:
                worker.end()
        return found

    def fill(self, mode: Mode, limits: Limits) -> None:
        """Start workers, off this thread, until as many as the setting asks for wait."""
        if settings.PLAYGROUND_WARM_WORKERS <= 0 or mode == "off":
            return
        with self._lock:
            if self._stopped:
                return
            if self._starter is None or not self._starter.is_alive():
                self._starter = threading.Thread(
                    target=self._start_wanted, name="playground-warm-workers", daemon=True
                )
                self._starter.start()
            self._pending += 1
        self._wanted.put((mode, limits))

    def wait_until_set_up(self, timeout: float) -> bool:
        """Wait until as many workers as the setting asks for wait, set up (a bench's
        helper: a server never waits for them)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                ready = [w for w in self._ready if w.process.poll() is None and w.set_up()]
            if len(ready) >= settings.PLAYGROUND_WARM_WORKERS:
                return True
            time.sleep(0.05)
        return False

    def ready_count(self) -> int:
        return len(self.waiting())

    def waiting(self) -> list[int]:
        """The process ids of the workers waiting, alive."""
        with self._lock:
            return [w.process.pid for w in self._ready if w.process.poll() is None]

    def _start_wanted(self) -> None:
        while (wanted := self._wanted.get()) is not None:
            try:
                self._start_for(*wanted)
            finally:
                with self._changed:
                    self._pending -= 1
                    self._changed.notify_all()

    def _start_for(self, mode: Mode, limits: Limits) -> None:
        while self.ready_count() < settings.PLAYGROUND_WARM_WORKERS:
            try:
                worker = start_worker(mode, limits)
            except OSError:
                logger.exception("could not start a warm playground worker")
                return
            with self._changed:
                if self._stopped:
                    worker.end()
                    return
                self._ready.append(worker)
                self._changed.notify_all()

    def end_waiting(self) -> None:
        """End the workers waiting now (more are started by the next run)."""
        with self._lock:
            ready, self._ready = self._ready, []
        for worker in ready:
            worker.end()

    def stop(self) -> None:
        """End the waiting workers; none is started after (idempotent)."""
        with self._lock:
            self._stopped = True
            ready, self._ready = self._ready, []
        self._wanted.put(None)
        for worker in ready:
            worker.end()


warm_workers = WarmWorkers()


def _collect(
    process: subprocess.Popen[bytes],
    job: bytes,
    wall_seconds: float,
    on_report: OnReport | None = None,
) -> WorkerResult:
    """Send the job, then read the worker's reports as they come until it ends (or the
    wall clock or the output cap stops it)."""
    assert process.stdin and process.stdout and process.stderr
    result = WorkerResult(returncode=None)
    # The wall clock runs from the worker's "ready" (a warm one's is waiting already);
    # until then, its set-up has a limit of its own.
    deadline = time.monotonic() + SETUP_SECONDS
    line = bytearray()  # the report being read
    read = 0
    errors = bytearray()
    try:
        process.stdin.write(job)
        process.stdin.flush()
    except BrokenPipeError:
        pass

    def take(report_line: bytes) -> None:
        try:
            report = json.loads(report_line)
        except ValueError:
            return
        if not isinstance(report, dict):
            return
        if report.get("kind") == "ready" and not result.set_up:
            result.set_up = True
            nonlocal deadline
            deadline = time.monotonic() + wall_seconds
            return
        result.reports.append(report)
        if on_report is not None:
            on_report(report)

    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ, "out")
        selector.register(process.stderr, selectors.EVENT_READ, "err")
        open_streams = 2
        while open_streams:
            left = deadline - time.monotonic()
            if left <= 0:
                result.timed_out = True
                break
            for key, _ in selector.select(left):
                chunk = os.read(key.fd, 65536)
                if not chunk:
                    selector.unregister(key.fileobj)
                    open_streams -= 1
                elif key.data == "err":
                    errors += chunk
                    del errors[:-STDERR_TAIL]
                else:
                    read += len(chunk)
                    *complete, rest = (bytes(line) + chunk).split(b"\n")
                    line[:] = rest
                    for report_line in complete:
                        take(report_line)
            if read > MAX_OUTPUT_BYTES:
                result.output_too_large = True
                break
    if line and not (result.timed_out or result.output_too_large):
        take(bytes(line))
    if result.timed_out or result.output_too_large:
        _kill(process)
    process.stdin.close()
    try:
        result.returncode = process.wait(5)
    except subprocess.TimeoutExpired:
        _kill(process)
        result.returncode = process.wait()
    result.stderr = errors.decode(errors="replace")
    return result


def ensure_sample_file() -> None:
    """The file async-file reads: made by this server, once (the worker, whose file size
    is limited, could not; the sandbox sees it read-only)."""
    if not (Path(settings.DATA_DIR) / SAMPLE_FILE).is_file():
        from visualizer.scenarios.scenario_views import sample_file

        sample_file()


def _kill(process: subprocess.Popen[bytes]) -> None:
    """Kill the worker. Under bubblewrap the worker's namespace ends with it: every
    process in it is killed."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
