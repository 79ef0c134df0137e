"""The db_indexes technique's index for the staff order filter: orders in one status and a
date range, newest first. The SQL is frozen here, as for 0004."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("orders", "0005_denormalized_fields_triggers"),
    ]

    operations = [
        migrations.RunSQL(
            "CREATE INDEX IF NOT EXISTS orders_order_status_created_idx ON orders_order "
            "(status, created_at DESC, id DESC)",
            reverse_sql="DROP INDEX IF EXISTS orders_order_status_created_idx",
        ),
    ]
