"""Store every recording in the database.

The tracer keeps recordings in memory while they grow. The archiver saves each one once it
has been quiet for a moment (and again if it grows later), from a thread of its own, so
saving never runs inside a traced request.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import timedelta

from django.conf import settings
from django.db import close_old_connections

from tracer.django_integration import get_tracer
from tracer.events import Event
from tracer.recorder import Recording
from visualizer.traces.models import Trace
from visualizer.traces.run_state import EDITED_PREFIX, held_open

logger = logging.getLogger(__name__)

# How often the archiver applies the retention settings (TRACE_KEEP_*), at most.
PRUNE_EVERY = 60.0


def archived(recording: Recording) -> bool:
    """Whether the archiver stores this recording: not a run of edited code, whose run
    stores its checked trace once it is over (visualizer/playground/live.py)."""
    return not recording.id.startswith(EDITED_PREFIX)


class RecordingArchiver:
    def __init__(self, quiet_seconds: float = 0.5) -> None:
        self.quiet_seconds = quiet_seconds
        self._due: dict[str, tuple[float, Recording]] = {}
        self._wake = threading.Condition()
        self._save_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._next_prune = 0.0

    def start(self) -> None:
        """Listen to the tracer and start the saving thread (idempotent)."""
        if self._thread is not None:
            return
        self._stopping = False
        get_tracer().store.add_listener(self._on_event)
        self._thread = threading.Thread(target=self._work, name="trace-archiver", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10) -> None:
        """Stop listening, save what is still due, and end the saving thread (idempotent)."""
        thread = self._thread
        if thread is None:
            return
        get_tracer().store.remove_listener(self._on_event)
        with self._wake:
            self._stopping = True
            self._wake.notify()
        thread.join(timeout)
        self._thread = None

    def _on_event(self, recording: Recording, event: Event) -> None:
        if not archived(recording):
            return
        with self._wake:
            idle = not self._due
            self._due[recording.id] = (time.monotonic() + self.quiet_seconds, recording)
            # A new due time is never earlier than those the thread already waits for:
            # wake it only when it sleeps with nothing to do (waking it on every event
            # cost each traced request about 5 % in thread switches).
            if idle:
                self._wake.notify()

    def save_now(self, recording: Recording) -> Trace | None:
        """Save a recording at once (for example before handing it to a client); None for
        one the archiver does not store."""
        if not archived(recording):
            return None
        with self._wake:
            self._due.pop(recording.id, None)
        return self._save(recording)

    def _save(self, recording: Recording) -> Trace:
        status = Trace.Status.RECORDING if held_open(recording.id) else None
        with self._save_lock:
            return Trace.store(recording.document(), source=Trace.Source.RECORDED, status=status)

    def _work(self) -> None:
        while True:
            with self._wake:
                while not self._due and not self._stopping:
                    self._wake.wait()
                if self._stopping and not self._due:
                    return
                now = time.monotonic()
                earliest = min(due for due, _ in self._due.values())
                if earliest > now and not self._stopping:
                    self._wake.wait(earliest - now)
                    continue
                # Save what is due and what soon will be, in one go: under a steady stream
                # of requests that is one save a quiet period, not one a recording. Stopping,
                # save all.
                soon = now + self.quiet_seconds
                ready = [r for due, r in self._due.values() if due <= soon or self._stopping]
                for recording in ready:
                    del self._due[recording.id]
            # All that is due in one go: a few queries in all, rather than a few each.
            try:
                with self._save_lock:
                    # A run going on stays recording, even between its requests.
                    documents = [recording.document() for recording in ready]
                    going_on = [held_open(recording.id) for recording in ready]
                    held = [d for d, on in zip(documents, going_on, strict=True) if on]
                    rest = [d for d, on in zip(documents, going_on, strict=True) if not on]
                    if held:
                        Trace.store_many(
                            held, source=Trace.Source.RECORDED, status=Trace.Status.RECORDING
                        )
                    if rest:
                        Trace.store_many(rest, source=Trace.Source.RECORDED)
                self.prune_if_due()
            except Exception:
                logger.exception("could not store %d recordings", len(ready))
            close_old_connections()

    def prune_if_due(self) -> int:
        """Apply the retention settings, at most once every PRUNE_EVERY seconds."""
        now = time.monotonic()
        if now < self._next_prune:
            return 0
        self._next_prune = now + PRUNE_EVERY
        return Trace.prune(
            keep=settings.TRACE_KEEP_RECORDINGS,
            max_age=timedelta(days=settings.TRACE_KEEP_DAYS),
        )


archiver = RecordingArchiver()
