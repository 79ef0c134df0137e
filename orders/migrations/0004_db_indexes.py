"""The db_indexes technique's orders indexes: a customer's orders, every order newest first,
and the sales report's covering index. The SQL lives in shop/techniques/db_indexes.py, next to
what each index serves; these RunSQL operations leave the models' state alone, so
`makemigrations` sees nothing, and the technique can drop and re-create the indexes for the
benchmark.
"""

from django.db import migrations

from shop.techniques import db_indexes

# Named here, not taken by table from the module: an index added to the module later needs a
# migration of its own, and tests/techniques/test_db_indexes.py fails until it has one.
INDEXES = [
    "orders_order_user_created_idx",
    "orders_order_created_idx",
    "orders_order_revenue_created_idx",
]


class Migration(migrations.Migration):
    dependencies = [
        ("orders", "0003_address_one_default_per_user"),
    ]

    operations = [
        migrations.RunSQL(
            db_indexes.BY_NAME[name].create_sql(),
            reverse_sql=db_indexes.BY_NAME[name].drop_sql(),
        )
        for name in INDEXES
    ]
