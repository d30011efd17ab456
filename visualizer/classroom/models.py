"""Class sessions: the page an instructor shows, and who follows it."""

from __future__ import annotations

import hashlib
import hmac
from datetime import timedelta

from django.db import models
from django.utils import timezone


class ClassSession(models.Model):
    """A class following one instructor's screen: the page the instructor shows now, and
    how many times it has changed (followers use the count to skip what they have)."""

    code = models.CharField(max_length=8, unique=True)
    # SHA-256 of the instructor's secret; the secret itself lives only in their browser.
    secret_digest = models.CharField(max_length=64)
    url = models.CharField(max_length=2000)
    version = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    # The instructor's code as they last typed it (not run), for the scenario ``typed_for``
    # on the page of version ``typed_at``: a follower who joins or reloads then sees it.
    typed_code = models.TextField(blank=True, default="")
    typed_for = models.CharField(max_length=64, blank=True, default="")
    typed_at = models.PositiveIntegerField(default=0)

    class Meta:
        # The tables made when these models were part of the traces app (see apps.py there).
        db_table = "visualizer_classsession"

    def __str__(self) -> str:
        return self.code

    @property
    def live(self) -> bool:
        return self.ended_at is None

    def is_driver(self, secret: str | None) -> bool:
        """Whether this secret is the instructor's."""
        if not secret:
            return False
        digest = hashlib.sha256(secret.encode()).hexdigest()
        return hmac.compare_digest(digest, self.secret_digest)

    def move_to(self, url: str) -> str | None:
        """Show another page (or step) to the class: the version goes up by one. Returns
        the page shown before, or None if nothing changed (the same page, or the class has
        ended). Another move or the end landing meanwhile is seen, not overwritten."""
        for _ in range(10):
            self.refresh_from_db(fields=["url", "version", "ended_at"])
            if not self.live or self.url == url:
                return None
            previous, version = self.url, self.version
            moved = ClassSession.objects.filter(pk=self.pk, version=version, ended_at=None).update(
                url=url, version=version + 1
            )
            if moved:
                self.url, self.version = url, version + 1
                return previous
        raise RuntimeError("the class session kept changing; try again")

    def note_typed_code(self, scenario: str, text: str) -> None:
        """Keep the instructor's code as typed on the page shown now."""
        ClassSession.objects.filter(pk=self.pk).update(
            typed_code=text, typed_for=scenario, typed_at=models.F("version")
        )

    def typed_code_for(self, scenario: str) -> str | None:
        """The code the instructor typed on the page shown now, if for ``scenario``."""
        if self.typed_for == scenario and self.typed_at == self.version and self.typed_for:
            return self.typed_code
        return None

    def end(self) -> None:
        ClassSession.objects.filter(pk=self.pk).update(
            ended_at=timezone.now(), version=models.F("version") + 1
        )
        self.refresh_from_db(fields=["ended_at", "version"])


class ClassFollower(models.Model):
    """A follower's open connection to a class, so the instructor can see how many follow.
    Each connection says it is still there every HEARTBEAT seconds; a row not seen for a
    while is a connection its process lost without closing (a crash, a restart)."""

    HEARTBEAT = 30
    FRESH = 75  # seconds a row counts without a heartbeat

    session = models.ForeignKey(ClassSession, on_delete=models.CASCADE, related_name="followers")
    channel = models.CharField(max_length=200, unique=True)
    seen_at = models.DateTimeField(db_index=True)

    class Meta:
        db_table = "visualizer_classfollower"

    def __str__(self) -> str:
        return self.channel

    @classmethod
    def count_for(cls, session_id: int) -> int:
        """Connections to the class seen lately; rows of lost ones are removed."""
        fresh = timezone.now() - timedelta(seconds=cls.FRESH)
        cls.objects.filter(session_id=session_id, seen_at__lt=fresh).delete()
        return cls.objects.filter(session_id=session_id).count()


class ClassQuestion(models.Model):
    """A question the instructor put to the class on the page it shows, and what the
    class answered. Its right answer is known when it is asked (a quiz question on a
    recording) or read from the recording the class shows at the reveal (a prediction
    before a run)."""

    class Status(models.TextChoices):
        OPEN = "open"
        CLOSED = "closed"  # no more answers; not revealed yet
        REVEALED = "revealed"

    session = models.ForeignKey(ClassSession, on_delete=models.CASCADE, related_name="questions")
    kind = models.CharField(max_length=40)  # visualizer/classroom/questions.py
    prompt = models.CharField(max_length=1000)
    choices = models.JSONField()  # [[key, label], ...] in the order shown
    url = models.CharField(max_length=2000)  # the page it was asked on
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    right = models.JSONField(default=list)  # keys of the right choices
    explanation = models.TextField(blank=True)
    step = models.PositiveIntegerField(null=True, blank=True)  # the step that shows the answer
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.prompt

    @property
    def choice_keys(self) -> list[str]:
        return [key for key, _ in self.choices]

    def label_of(self, key: str) -> str:
        return str(dict(self.choices).get(key, key))


class ClassAnswer(models.Model):
    """One follower's answer to a question: one per follower (their browser's
    ``class-student`` cookie) per question, and no name."""

    question = models.ForeignKey(ClassQuestion, on_delete=models.CASCADE, related_name="answers")
    student = models.CharField(max_length=64)
    choice = models.CharField(max_length=40)
    answered_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["question", "student"], name="one_answer_each")
        ]

    def __str__(self) -> str:
        return self.choice
