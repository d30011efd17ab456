"""The scenarios' own data: the table the ORM scenarios query."""

from __future__ import annotations

from django.db import models


class Reading(models.Model):
    """A sensor reading: the table the ORM scenarios query."""

    value = models.FloatField()
    taken_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        # The table made when this model was part of the traces app (see apps.py there).
        db_table = "visualizer_reading"

    def __str__(self) -> str:
        return f"{self.value}"
