"""The class session's WebSocket: the instructor drives, everyone else follows."""

from __future__ import annotations

import asyncio
import logging
import weakref
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.db import DatabaseError, IntegrityError
from django.http.cookie import parse_cookie
from django.utils import timezone

from visualizer.classroom.frames import followers_frame, status_frame
from visualizer.classroom.models import ClassAnswer, ClassFollower, ClassSession
from visualizer.classroom.questions import (
    STUDENT_COOKIE,
    AnswerRefused,
    AnswerSent,
    LiveCount,
    answered_frame,
    answered_message,
    instructor_group,
    record_answers,
)
from visualizer.classroom.session import (
    DRIVE_COOKIE,
    drive_cookie_secret,
    followable_url,
    frame_for,
    group_name,
)
from visualizer.playground.checks import MAX_SOURCE_BYTES
from visualizer.playground.editor import class_code_frame
from visualizer.scenarios.consumers import MAX_MESSAGE_BYTES, MessageRejected, parse_message
from visualizer.traces.steps import whole_number

logger = logging.getLogger(__name__)

CLASS_ACTIONS = {
    "drive": {"action", "url"},
    "answer": {"action", "question", "choice"},
    "code": {"action", "scenario", "text"},
}
# The instructor's code as they type it may be as long as the playground takes, and JSON
# escapes some of it (quotes, backslashes, line ends); every other message stays small.
CODE_MESSAGE_BYTES = 2 * MAX_SOURCE_BYTES + MAX_MESSAGE_BYTES
COUNT_EVERY = 2  # seconds between follower counts sent to the instructor
# Seconds between two drawings of the instructor's histogram while answers come in: the
# first answer is drawn at once, a burst at most this often.
HISTOGRAM_EVERY = 0.1


def parse_class_message(text: str | None) -> dict[str, Any]:
    """Check a message to the class socket: small, but for the instructor's code."""
    small = text is None or len(text.encode()) <= MAX_MESSAGE_BYTES
    try:
        message = parse_message(text, CLASS_ACTIONS, CODE_MESSAGE_BYTES)
    except MessageRejected:
        if small:
            raise
        message = {}
    if not small and message.get("action") != "code":
        raise MessageRejected(
            f"Messages may be at most {MAX_MESSAGE_BYTES} bytes "
            f"(the code as it is typed, {CODE_MESSAGE_BYTES})."
        )
    return message


class ClassConsumer(AsyncWebsocketConsumer):  # type: ignore[misc]
    """One browser in a class: the instructor's (which may drive) or a follower's."""

    code: str
    driver = False
    session_id: int | None = None
    student: str | None = None
    presence_task: asyncio.Task[None] | None = None
    histogram_task: asyncio.Task[None] | None = None
    live_count: LiveCount | None = None
    histogram_stale = False

    async def connect(self) -> None:
        """Join the class's group. A page that shows an older version than the session's
        (``?v=N`` in the URL) gets the current state at once, so a follower who reconnects
        lands on the instructor's step; one that is up to date, and the instructor, get
        nothing."""
        self.code = self.scope["url_route"]["kwargs"]["code"]
        # Join first, then read the state: a move made in between then reaches this
        # connection twice (the page skips the version it has) rather than not at all.
        await self.channel_layer.group_add(group_name(self.code), self.channel_name)
        session = await database_sync_to_async(find_session)(self.code)
        await self.accept()
        if session is None:
            # Accepted first, so that the page is told, and its socket stops trying.
            await self.send(text_data=status_frame("This class session does not exist."))
            await self.close(code=4404)
            return
        cookies = parse_cookie(_header(self.scope, b"cookie"))
        self.driver = session.is_driver(drive_cookie_secret(cookies.get(DRIVE_COOKIE), self.code))
        self.session_id = session.pk
        self.student = cookies.get(STUDENT_COOKIE)
        if self.driver:
            await self.channel_layer.group_add(instructor_group(self.code), self.channel_name)
        # A follower keeps its presence fresh; the instructor is told how many follow.
        presence = self._count_followers if self.driver else self._stay_present
        self.presence_task = asyncio.create_task(presence())
        if not self.driver and _version_asked(self.scope) != session.version:
            frame = await database_sync_to_async(frame_for)(session, None)
            await self.send(text_data=frame.text())

    async def disconnect(self, code: int) -> None:
        if self.presence_task is not None:
            self.presence_task.cancel()
        if self.histogram_task is not None:
            self.histogram_task.cancel()
        if hasattr(self, "code"):
            await self.channel_layer.group_discard(group_name(self.code), self.channel_name)
            if self.driver:
                await self.channel_layer.group_discard(
                    instructor_group(self.code), self.channel_name
                )
        if not self.driver and self.session_id is not None:
            await database_sync_to_async(leave)(self.channel_name)

    async def _stay_present(self) -> None:
        while True:
            try:
                await database_sync_to_async(be_present)(self.session_id, self.channel_name)
            except IntegrityError:
                await self.close(code=4404)  # the class itself is gone
                return
            except DatabaseError:
                # Only the count suffers (a busy database); following goes on.
                logger.warning("class %s: could not note a follower", self.code, exc_info=True)
            await asyncio.sleep(ClassFollower.HEARTBEAT)

    async def _count_followers(self) -> None:
        shown = None
        while True:
            try:
                count = await database_sync_to_async(ClassFollower.count_for)(self.session_id)
            except DatabaseError:
                logger.warning("class %s: could not count followers", self.code, exc_info=True)
            else:
                if count != shown:
                    await self.send(text_data=followers_frame(count))
                    shown = count
            await asyncio.sleep(COUNT_EVERY)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        """Called for every message from a browser in the class: the instructor's "drive"
        and a follower's "answer" are taken; anything else gets an error frame."""
        try:
            message = parse_class_message(text_data)
            # htmx's ws-send adds the request headers it would have sent; they say nothing
            # the connection does not know already.
            if not isinstance(message.get("HEADERS", {}), dict):
                raise MessageRejected("HEADERS must be an object.")
            if message["action"] == "answer":
                await self.answer(message)
            elif message["action"] == "code":
                await self.share_code(message)
            else:
                await self.drive(message)
        except (MessageRejected, AnswerRefused, ValueError) as error:
            await self.send(text_data=status_frame(str(error)))

    async def drive(self, message: dict[str, Any]) -> None:
        if not self.driver:
            client = self.scope.get("client") or ("?", 0)
            logger.warning(
                "class %s: refused a drive message from a follower at %s", self.code, client[0]
            )
            raise MessageRejected("Only the instructor can drive this class.")
        url = followable_url(message.get("url"))
        frame = await database_sync_to_async(move_class)(self.code, url)
        if frame is not None:
            await self.channel_layer.group_send(
                group_name(self.code), {"type": "class.state", "frame": frame}
            )

    async def share_code(self, message: dict[str, Any]) -> None:
        """The instructor's code as they type it (sent on a pause, and on Run): shown in
        the followers' read-only editor, rendered once. It runs nowhere: only a Run of the
        instructor's own page runs code, and the class follows that run's page."""
        if not self.driver:
            client = self.scope.get("client") or ("?", 0)
            logger.warning("class %s: refused code from a follower at %s", self.code, client[0])
            raise MessageRejected("Only the instructor's code is shown to the class.")
        frame = class_code_frame(message.get("scenario"), message.get("text"))
        # Checked: kept for followers who join or reload on this page.
        await database_sync_to_async(note_typed_code)(
            self.code, message["scenario"], message["text"]
        )
        await self.channel_layer.group_send(
            group_name(self.code), {"type": "class.state", "frame": frame, "followers_only": True}
        )

    async def answer(self, message: dict[str, Any]) -> None:
        if self.driver or self.session_id is None:
            raise MessageRejected("The instructor does not answer their own questions.")
        answer = await answer_writer().take(AnswerSent(self.session_id, self.student, message))
        told = answered_message(answer)
        frame = answered_frame(self.code, answer.question, answer.question.label_of(answer.choice))
        await self.send(text_data=frame)
        await self.channel_layer.group_send(instructor_group(self.code), told)

    async def class_state(self, message: dict[str, Any]) -> None:
        """Called for each change of the instructor's page (and each question asked,
        closed or revealed, which only followers get): pass the rendered frame on. Once
        the class has ended the socket is closed (normally: the page does not
        reconnect)."""
        if message.get("followers_only") and self.driver:
            return
        await self.send(text_data=message["frame"])
        if message.get("ended"):
            await self.close()

    async def class_answered(self, message: dict[str, Any]) -> None:
        """Called on the instructor's connections for each answer a follower gives: the
        histogram is drawn again, at once for the first, then at most every
        HISTOGRAM_EVERY seconds while answers keep coming."""
        question = message["question"]
        if self.live_count is None or self.live_count.question.pk != question:
            self.live_count = await database_sync_to_async(LiveCount.read)(question)
        self.live_count.add(message["answer"], message["choice"])
        self.histogram_stale = True
        if self.histogram_task is None or self.histogram_task.done():
            self.histogram_task = asyncio.create_task(self._draw_histogram())

    async def _draw_histogram(self) -> None:
        # No await between the last check and the end: an answer that comes while this
        # sleeps is drawn by this task, one that comes later starts a new one.
        while self.histogram_stale and self.live_count is not None:
            self.histogram_stale = False
            await self.send(text_data=self.live_count.frame())
            await asyncio.sleep(HISTOGRAM_EVERY)


class AnswerWriter:
    """The answers of this process's followers, stored together: those that come while
    a batch is being written go into the next, one transaction each (rather than a
    connection and a transaction per answer, which a class answering at once would queue
    up on the process's one database thread)."""

    def __init__(self) -> None:
        self.waiting: list[tuple[AnswerSent, asyncio.Future[ClassAnswer]]] = []
        self.task: asyncio.Task[None] | None = None

    async def take(self, sent: AnswerSent) -> ClassAnswer:
        """The answer stored; AnswerRefused if it is not taken."""
        future: asyncio.Future[ClassAnswer] = asyncio.get_running_loop().create_future()
        self.waiting.append((sent, future))
        if self.task is None or self.task.done():
            self.task = asyncio.create_task(self._write())
        return await future

    async def _write(self) -> None:
        while self.waiting:
            batch, self.waiting = self.waiting, []
            outcomes: list[ClassAnswer | Exception]
            try:
                outcomes = [
                    *await database_sync_to_async(record_answers)([sent for sent, _ in batch])
                ]
            except Exception as error:  # the database failed: each of them fails with it
                outcomes = [error] * len(batch)
            for (_, future), outcome in zip(batch, outcomes, strict=True):
                if future.done():
                    continue
                if isinstance(outcome, Exception):
                    future.set_exception(outcome)
                else:
                    future.set_result(outcome)


# One writer per event loop (a server has one; tests start several).
WRITERS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, AnswerWriter] = (
    weakref.WeakKeyDictionary()
)


def answer_writer() -> AnswerWriter:
    return WRITERS.setdefault(asyncio.get_running_loop(), AnswerWriter())


def be_present(session_id: int, channel: str) -> None:
    ClassFollower.objects.update_or_create(
        channel=channel, defaults={"session_id": session_id, "seen_at": timezone.now()}
    )


def leave(channel: str) -> None:
    ClassFollower.objects.filter(channel=channel).delete()


def note_typed_code(code: str, scenario: str, text: str) -> None:
    session = find_session(code)
    if session is not None:
        session.note_typed_code(scenario, text)


def find_session(code: str) -> ClassSession | None:
    return ClassSession.objects.filter(code=code).first()


def move_class(code: str, url: str) -> str | None:
    """Store the instructor's new page and render it once for the class (None if the
    page did not change)."""
    session = find_session(code)
    if session is None or not session.live:
        raise MessageRejected("This class session has ended.")
    previous = session.move_to(url)
    if previous is None:
        if not session.live:
            raise MessageRejected("This class session has ended.")
        return None
    return frame_for(session, previous).text()


def _header(scope: dict[str, Any], name: bytes) -> str:
    for key, value in scope.get("headers", []):
        if key == name:
            return str(value.decode("latin-1"))
    return ""


def _version_asked(scope: dict[str, Any]) -> int | None:
    query = scope.get("query_string", b"").decode("latin-1")
    value = query.removeprefix("v=") if query.startswith("v=") else ""
    return whole_number(value)
