"""The db_indexes technique's orders indexes: a customer's orders, every order newest first,
and the sales report's covering index. shop/techniques/db_indexes.py says what each one serves
and what it costs.

The SQL is frozen here, as the technique module created it when this migration was written: a
migration must build the same schema whatever the live code later says. RunSQL leaves the
models' state alone, so `makemigrations` sees nothing, and the technique can drop and
re-create the indexes for the benchmark. tests/techniques/test_db_indexes.py checks that the
indexes these statements build are the ones `manage.py db_indexes on` builds. To change one,
add a migration; never edit this one.
"""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("orders", "0003_address_one_default_per_user"),
    ]

    operations = [
        migrations.RunSQL(
            "CREATE INDEX IF NOT EXISTS orders_order_user_created_idx ON orders_order "
            "(user_id, created_at DESC, id DESC)",
            reverse_sql="DROP INDEX IF EXISTS orders_order_user_created_idx",
        ),
        migrations.RunSQL(
            "CREATE INDEX IF NOT EXISTS orders_order_created_idx ON orders_order "
            "(created_at DESC, id DESC)",
            reverse_sql="DROP INDEX IF EXISTS orders_order_created_idx",
        ),
        migrations.RunSQL(
            "CREATE INDEX IF NOT EXISTS orders_order_revenue_created_idx ON orders_order "
            "(created_at) INCLUDE (id, item_count, total_amount) "
            "WHERE status IN ('paid', 'shipped')",
            reverse_sql="DROP INDEX IF EXISTS orders_order_revenue_created_idx",
        ),
    ]
