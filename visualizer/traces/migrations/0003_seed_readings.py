from __future__ import annotations

from django.db import migrations


def seed(apps, schema_editor):
    Reading = apps.get_model("visualizer", "Reading")
    if not Reading.objects.exists():
        Reading.objects.bulk_create(Reading(value=v) for v in (18.5, 19.25, 21.0, 20.75, 19.5))


class Migration(migrations.Migration):
    dependencies = [("visualizer", "0002_readings")]
    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
