from __future__ import annotations

from django.db import models


class Order(models.Model):
    customer = models.CharField(max_length=100)
    total_cents = models.PositiveIntegerField()

    def __str__(self) -> str:
        return f"{self.customer}: {self.total_cents}"
