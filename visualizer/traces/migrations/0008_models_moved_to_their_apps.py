"""Reading now belongs to the scenarios app and the class models to the classroom app; their
tables stay (those apps' first migrations take them over), so nothing in the database
changes here."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("visualizer", "0007_trace_status"),
        ("scenarios", "0001_reading"),
        ("classroom", "0001_class_sessions"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.DeleteModel(name="ClassFollower"),
                migrations.DeleteModel(name="ClassSession"),
                migrations.DeleteModel(name="Reading"),
            ],
            database_operations=[],
        ),
    ]
