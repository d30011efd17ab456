"""Stream one process's recordings to another process, and mirror them there.

The process that runs the traced views (the *subject*) attaches a ``StreamSink`` to its
``RecordingStore``: the store's listener only queues each event, and a writer thread of
the sink turns the queue into NDJSON lines (one JSON object a line) on a socket to the
process that shows the runs. There an ``EventMirror`` feeds the lines into a store of its
own, so that process's listeners hear of every event as if it had been recorded there.
Serialising and sending never run on the thread that recorded the event.

Lines from the sink to the mirror::

    {"type": "hello", "token"}              first: the secret both were given
    {"type": "recording", "id", "scenario", "server", "tracer", "recorded_at"}
    {"type": "event", "recording", "event"}
    {"type": "requests", "recording", "requests", "thread_samples", "dropped_events"}
    {"type": "flushed", "token"}            answer to the mirror's "flush"
    {"type": "sync", "token", "recording"}  the sink waits for the mirror's "synced"

and from the mirror to the sink ``{"type": "flush", "token"}`` and ``{"type": "synced",
"token"}``. A barrier line follows every line queued before it, so a "flushed" or "sync"
line tells the mirror it holds everything recorded before the barrier was asked for.

Timestamps are CLOCK_MONOTONIC nanoseconds, the same clock in every process of a machine.
"""

from __future__ import annotations

import contextlib
import hmac
import itertools
import json
import logging
import queue
import socket
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tracer import events
from tracer.recorder import Recording, RecordingStore

logger = logging.getLogger(__name__)

# Recordings whose request summaries the sink keeps comparing, newest last.
MAX_WATCHED = 64
# The writer sends the first event of a burst at once, then waits this long before it
# sends what has come since, together: each wake-up makes the recording thread (an event
# loop) give up the GIL once, so the writer wakes at most this often, not once an event.
BATCH_SECONDS = 0.01
# After a batch, the writer looks once more this much later for request summaries that
# changed after their last event (a request's tracer time, its thread samples).
POLL_SECONDS = 0.1
# A recording unchanged this long is no longer compared.
WATCH_SECONDS = 30.0
MAX_BATCH = 5000


def _no_delay(sock: socket.socket) -> None:
    # Without it (Nagle's algorithm) a batch sent while the previous one is not yet
    # acknowledged waits in the kernel for that ACK, which the other side, having nothing
    # to send back, delays by tens of ms: every run's second batch arrived ~30 ms late.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def _line(message: dict[str, Any]) -> bytes:
    return json.dumps(message, separators=(",", ":"), default=str).encode() + b"\n"


@dataclass
class _Sent:
    """What the mirror was last sent of one recording."""

    recording: Recording
    request_count: int = 0
    requests: list[events.RequestSummary] = field(default_factory=list)
    thread_samples: int = 0
    dropped: int = 0
    changed: float = field(default_factory=time.monotonic)
    # Every request had ended when last compared: nothing more changes until a new event.
    settled: bool = False


class StreamSink:
    """Sends a store's recordings, as they grow, to an ``EventMirror`` over a socket."""

    def __init__(
        self,
        address: tuple[str, int],
        *,
        token: str = "",
        on_disconnect: Callable[[], None] | None = None,
        connect_timeout: float = 10,
    ) -> None:
        self.address = address
        self.token = token
        self.on_disconnect = on_disconnect
        self.connect_timeout = connect_timeout
        self._queue: queue.SimpleQueue[tuple[Any, ...]] = queue.SimpleQueue()
        self._sent: OrderedDict[str, _Sent] = OrderedDict()
        self._tokens = itertools.count(1)
        self._waiting: dict[int, threading.Event] = {}
        self._sock: socket.socket | None = None
        self._closed = threading.Event()
        self._stores: list[RecordingStore] = []

    def start(self) -> StreamSink:
        """Connect and start the writer and reader threads (OSError if it cannot connect)."""
        if self._sock is not None:
            return self
        sock = socket.create_connection(self.address, timeout=self.connect_timeout)
        sock.settimeout(None)
        _no_delay(sock)
        sock.sendall(_line({"type": "hello", "token": self.token}))
        self._sock = sock
        threading.Thread(target=self._write_loop, name="trace-sink-writer", daemon=True).start()
        threading.Thread(target=self._read_loop, name="trace-sink-reader", daemon=True).start()
        return self

    def attach(self, store: RecordingStore) -> None:
        """Send every event recorded in ``store`` from now on (idempotent)."""
        if store not in self._stores:
            store.add_listener(self._on_event)
            self._stores.append(store)

    def detach(self) -> None:
        for store in self._stores:
            store.remove_listener(self._on_event)
        self._stores.clear()

    @property
    def connected(self) -> bool:
        return self._sock is not None and not self._closed.is_set()

    def _on_event(self, recording: Recording, event: events.Event) -> None:
        # On the thread that recorded the event, inside the traced request: only queue.
        self._queue.put(("event", recording, event))

    def sync(self, recording_id: str, timeout: float = 10) -> bool:
        """Wait until the mirror holds everything recorded so far and has handled the
        recording (its owner may store it); False if it did not answer in time."""
        if not self.connected:
            return False
        token = next(self._tokens)
        answered = threading.Event()
        self._waiting[token] = answered
        self._queue.put(("sync", token, recording_id))
        try:
            return answered.wait(timeout) and self.connected
        finally:
            self._waiting.pop(token, None)

    def close(self) -> None:
        self.detach()
        self._closed.set()
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.shutdown(socket.SHUT_RDWR)
            self._sock.close()

    # -- the writer thread --------------------------------------------------------------

    def _write_loop(self) -> None:
        assert self._sock is not None
        look_again = sent_batch = False
        while not self._closed.is_set():
            items: list[tuple[Any, ...]] = []
            if sent_batch:
                # Events keep coming: what came during the pause goes out together.
                time.sleep(BATCH_SECONDS)
                with contextlib.suppress(queue.Empty):
                    items.append(self._queue.get_nowait())
            if not items:
                with contextlib.suppress(queue.Empty):
                    items.append(self._queue.get(timeout=POLL_SECONDS if look_again else None))
            while items and len(items) < MAX_BATCH:
                try:
                    items.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            look_again = sent_batch = bool(items)
            try:
                out = self._lines(items)
                if out:
                    self._sock.sendall(b"".join(out))
            except OSError:
                self._disconnected()
                return
            except Exception:
                # Never let one odd event stop the stream.
                logger.exception("the trace sink could not send %d items", len(items))

    def _lines(self, items: list[tuple[Any, ...]]) -> list[bytes]:
        out: list[bytes] = []
        for item in items:
            if item[0] == "event":
                _, recording, event = item
                sent = self._watch(recording, out)
                sent.settled = False
                if len(recording.requests) != sent.request_count:
                    self._changes(sent, out)
                out.append(_line({"type": "event", "recording": recording.id, "event": event}))
            elif item[0] == "flush":
                self._all_changes(out)
                out.append(_line({"type": "flushed", "token": item[1]}))
            elif item[0] == "sync":
                self._all_changes(out)
                out.append(_line({"type": "sync", "token": item[1], "recording": item[2]}))
        self._all_changes(out)
        return out

    def _watch(self, recording: Recording, out: list[bytes]) -> _Sent:
        sent = self._sent.get(recording.id)
        if sent is None or sent.recording is not recording:
            sent = self._sent[recording.id] = _Sent(recording)
            out.append(
                _line(
                    {
                        "type": "recording",
                        "id": recording.id,
                        "scenario": recording.scenario,
                        "server": recording.server,
                        "tracer": recording.tracer,
                        "recorded_at": recording.recorded_at,
                    }
                )
            )
            while len(self._sent) > MAX_WATCHED:
                self._sent.popitem(last=False)
        else:
            self._sent.move_to_end(recording.id)
        return sent

    def _all_changes(self, out: list[bytes]) -> None:
        now = time.monotonic()
        for sent in list(self._sent.values()):
            if not sent.settled and now - sent.changed < WATCH_SECONDS:
                self._changes(sent, out)

    def _changes(self, sent: _Sent, out: list[bytes]) -> None:
        """Send the recording's request summaries (and thread samples, dropped events)
        if they changed since last sent."""
        recording = sent.recording
        requests = list(recording.requests)
        # A request that has ended records nothing more (RequestTrace.end), so once all
        # have, this comparison is the last until the recording gets another event.
        sent.settled = bool(requests) and all(request.ended for request in requests)
        summaries = [request.summary() for request in requests]
        samples = len(recording.thread_samples)
        dropped = recording.dropped_events
        if (summaries, samples, dropped) == (sent.requests, sent.thread_samples, sent.dropped):
            return
        sent.request_count, sent.requests = len(requests), summaries
        sent.thread_samples, sent.dropped = samples, dropped
        sent.changed = time.monotonic()
        out.append(
            _line(
                {
                    "type": "requests",
                    "recording": recording.id,
                    "requests": summaries,
                    "thread_samples": [list(s) for s in recording.thread_samples[:samples]],
                    "dropped_events": dropped,
                }
            )
        )

    # -- the reader thread --------------------------------------------------------------

    def _read_loop(self) -> None:
        assert self._sock is not None
        try:
            for raw in self._sock.makefile("rb"):
                message = json.loads(raw)
                if message.get("type") == "flush":
                    self._queue.put(("flush", message.get("token")))
                elif message.get("type") == "synced":
                    answered = self._waiting.get(message.get("token"))
                    if answered is not None:
                        answered.set()
        except (OSError, ValueError):
            pass
        self._disconnected()

    def _disconnected(self) -> None:
        if self._closed.is_set():
            return
        self._closed.set()
        for answered in list(self._waiting.values()):
            answered.set()
        if self.on_disconnect is not None:
            self.on_disconnect()


class EventMirror:
    """Listens on a loopback port for one ``StreamSink`` at a time and mirrors what it
    sends into ``store``. ``on_sync`` is called (on the mirror's reader thread) with a
    recording the sink asks to be synced, before the sink hears it is."""

    def __init__(
        self,
        store: RecordingStore,
        on_sync: Callable[[Recording], None] | None = None,
        token: str = "",
    ) -> None:
        self.store = store
        # A sink must say it first; a connection that does not is closed unheard.
        self.token = token
        self.on_sync = on_sync
        self.address: tuple[str, int] | None = None
        # How many sinks have connected so far.
        self.generation = 0
        self._listener: socket.socket | None = None
        self._conn: socket.socket | None = None
        self._send_lock = threading.Lock()
        self._state = threading.Condition()
        self._tokens = itertools.count(1)
        self._waiting: dict[int, list[Any]] = {}

    def listen(self, host: str = "127.0.0.1") -> tuple[str, int]:
        """Start listening (idempotent); the address a sink connects to."""
        if self.address is not None:
            return self.address
        listener = socket.create_server((host, 0))
        self._listener = listener
        self.address = (host, int(listener.getsockname()[1]))
        threading.Thread(target=self._accept_loop, name="trace-mirror", daemon=True).start()
        return self.address

    @property
    def connected(self) -> bool:
        return self._conn is not None

    def wait_for_sink(self, after_generation: int, timeout: float) -> bool:
        """Wait until a sink newer than ``after_generation`` has connected."""
        with self._state:
            return self._state.wait_for(lambda: self.generation > after_generation, timeout)

    def flush(self, timeout: float = 10) -> bool:
        """Wait until this store holds every event the sink's process had recorded when
        this was called; False if there is no sink or it did not answer in time."""
        conn = self._conn
        if conn is None:
            return False
        token = next(self._tokens)
        waiter: list[Any] = [threading.Event(), False]
        self._waiting[token] = waiter
        try:
            self._send(conn, {"type": "flush", "token": token})
            return bool(waiter[0].wait(timeout) and waiter[1])
        except OSError:
            return False
        finally:
            self._waiting.pop(token, None)

    def _send(self, conn: socket.socket, message: dict[str, Any]) -> None:
        with self._send_lock:
            conn.sendall(_line(message))

    def _accept_loop(self) -> None:
        assert self._listener is not None
        while True:
            try:
                conn, _ = self._listener.accept()
                _no_delay(conn)
            except OSError:
                return
            threading.Thread(
                target=self._read_loop, args=(conn,), name="trace-mirror-reader", daemon=True
            ).start()

    def _read_loop(self, conn: socket.socket) -> None:
        lines = conn.makefile("rb")
        try:
            conn.settimeout(10)
            hello = json.loads(lines.readline() or b"{}")
            conn.settimeout(None)
        except (OSError, ValueError):
            hello = {}
        if hello.get("type") != "hello" or not hmac.compare_digest(
            str(hello.get("token", "")), self.token
        ):
            logger.warning("a connection to the trace mirror did not give the token")
            conn.close()
            return
        with self._state:
            old, self._conn = self._conn, conn
            self.generation += 1
            self._state.notify_all()
        if old is not None:
            with contextlib.suppress(OSError):
                old.close()
        try:
            for raw in lines:
                try:
                    self.apply(json.loads(raw), conn)
                except OSError:
                    raise
                except Exception:
                    logger.exception("could not mirror a trace line")
        except OSError:
            pass
        with self._state:
            if self._conn is conn:
                self._conn = None
        for waiter in list(self._waiting.values()):
            waiter[0].set()

    def apply(self, message: dict[str, Any], conn: socket.socket | None = None) -> None:
        """Apply one line of the stream to the store."""
        kind = message.get("type")
        if kind == "event":
            self.store.get_or_create(message["recording"]).append(message["event"])
        elif kind == "recording":
            recording = self.store.get_or_create(message["id"])
            recording.scenario = message["scenario"]
            recording.server = message["server"]
            recording.tracer = message["tracer"]
            recording.recorded_at = message["recorded_at"]
            if recording.mirrored_requests is None:
                recording.mirror_requests([], [], 0)
        elif kind == "requests":
            self.store.get_or_create(message["recording"]).mirror_requests(
                message["requests"], message["thread_samples"], message["dropped_events"]
            )
        elif kind == "flushed":
            waiter = self._waiting.get(message["token"])
            if waiter is not None:
                waiter[1] = True
                waiter[0].set()
        elif kind == "sync":
            mirrored = self.store.get(message["recording"])
            if mirrored is not None and self.on_sync is not None:
                try:
                    self.on_sync(mirrored)
                except Exception:
                    logger.exception("could not handle recording %s", mirrored.id)
            if conn is not None:
                self._send(conn, {"type": "synced", "token": message["token"]})
