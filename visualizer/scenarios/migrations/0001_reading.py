"""Reading moves here from the traces app (label "visualizer"), table and rows as they are:
only Django's record of which app owns the model changes."""

from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("visualizer", "0003_seed_readings"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="Reading",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                            ),
                        ),
                        ("value", models.FloatField()),
                        ("taken_at", models.DateTimeField(auto_now_add=True)),
                    ],
                    options={"db_table": "visualizer_reading"},
                ),
            ],
            database_operations=[],
        ),
    ]
