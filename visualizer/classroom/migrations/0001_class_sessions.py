"""ClassSession and ClassFollower move here from the traces app (label "visualizer"),
tables and rows as they are: only Django's record of which app owns the models changes."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("visualizer", "0007_trace_status"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="ClassSession",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                            ),
                        ),
                        ("code", models.CharField(max_length=8, unique=True)),
                        ("secret_digest", models.CharField(max_length=64)),
                        ("url", models.CharField(max_length=2000)),
                        ("version", models.PositiveIntegerField(default=1)),
                        ("created_at", models.DateTimeField(auto_now_add=True)),
                        ("ended_at", models.DateTimeField(blank=True, null=True)),
                    ],
                    options={"db_table": "visualizer_classsession"},
                ),
                migrations.CreateModel(
                    name="ClassFollower",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                            ),
                        ),
                        ("channel", models.CharField(max_length=200, unique=True)),
                        ("seen_at", models.DateTimeField(db_index=True)),
                        (
                            "session",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="followers",
                                to="classroom.classsession",
                            ),
                        ),
                    ],
                    options={"db_table": "visualizer_classfollower"},
                ),
            ],
            database_operations=[],
        ),
    ]
