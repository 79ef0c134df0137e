"""The db_indexes technique's index for the staff order filter: orders in one status and a
date range, newest first. The SQL lives in shop/techniques/db_indexes.py, as for 0004."""

from django.db import migrations

from shop.techniques import db_indexes

INDEXES = ["orders_order_status_created_idx"]


class Migration(migrations.Migration):
    dependencies = [
        ("orders", "0005_denormalized_fields_triggers"),
    ]

    operations = [
        migrations.RunSQL(
            db_indexes.BY_NAME[name].create_sql(),
            reverse_sql=db_indexes.BY_NAME[name].drop_sql(),
        )
        for name in INDEXES
    ]
