"""An order's states for async_tasks: `pending` is renamed `placed` (the rows too), and
`payment_failed` and `confirmed` are added; the event log gets `payment_failed`; the stock
ledger (StockMovement) is new.

Migrating back leaves the rows' states alone. A confirmed order is revenue, as a paid or shipped
one is: the sales report's covering index (db_indexes, 0004) is built again with `confirmed` in
its predicate, or the report's `status IN (...)` would no longer match it. The SQL is frozen here, as
shop/techniques/db_indexes.py builds it.
"""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("catalog", "0005_inventory_locking_version"),
        ("orders", "0007_orderevent_partitioned"),
    ]

    operations = [
        migrations.RunSQL(
            "UPDATE orders_order SET status = 'placed' WHERE status = 'pending'",
            # Going back leaves the rows' states as they are: the column takes any text, and
            # the way forward again (migrating back to switch table_partitioning off, then
            # forward) must find the orders in the states they had.
            reverse_sql=migrations.RunSQL.noop,
        ),
        migrations.RunSQL(
            "DROP INDEX IF EXISTS orders_order_revenue_created_idx; "
            "CREATE INDEX orders_order_revenue_created_idx ON orders_order (created_at) "
            "INCLUDE (id, item_count, total_amount) WHERE status IN ('paid', 'confirmed', 'shipped')",
            reverse_sql="DROP INDEX IF EXISTS orders_order_revenue_created_idx; "
            "CREATE INDEX orders_order_revenue_created_idx ON orders_order (created_at) "
            "INCLUDE (id, item_count, total_amount) WHERE status IN ('paid', 'shipped')",
        ),
        migrations.AlterField(
            model_name="order",
            name="status",
            field=models.CharField(
                choices=[
                    ("placed", "Placed"),
                    ("paid", "Paid"),
                    ("payment_failed", "Payment Failed"),
                    ("confirmed", "Confirmed"),
                    ("shipped", "Shipped"),
                    ("cancelled", "Cancelled"),
                ],
                default="placed",
                max_length=16,
            ),
        ),
        migrations.AlterField(
            model_name="orderevent",
            name="kind",
            field=models.CharField(
                choices=[
                    ("placed", "Placed"),
                    ("paid", "Paid"),
                    ("payment_failed", "Payment Failed"),
                    ("confirmation_sent", "Confirmation Sent"),
                    ("shipped", "Shipped"),
                    ("cancelled", "Cancelled"),
                ],
                max_length=32,
            ),
        ),
        migrations.CreateModel(
            name="StockMovement",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "kind",
                    models.CharField(
                        choices=[("sale", "Sale"), ("return", "Return")], max_length=8
                    ),
                ),
                ("quantity", models.IntegerField()),
                ("created_at", models.DateTimeField()),
                (
                    "order",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="stock_movements",
                        to="orders.order",
                    ),
                ),
                (
                    "variant",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to="catalog.variant",
                    ),
                ),
            ],
            options={
                "ordering": ["id"],
                "constraints": [
                    models.UniqueConstraint(
                        fields=("order", "variant", "kind"), name="stock_movement_once_per_line"
                    )
                ],
            },
        ),
    ]
