from __future__ import annotations

from django.db import migrations


def add_orders(apps, schema_editor):  # type: ignore[no-untyped-def]
    Order = apps.get_model("shop", "Order")
    Order.objects.bulk_create(
        [Order(customer=f"customer {i}", total_cents=100 * i) for i in range(1, 6)]
    )


class Migration(migrations.Migration):
    dependencies = [("shop", "0001_initial")]
    operations = [migrations.RunPython(add_orders, migrations.RunPython.noop)]
