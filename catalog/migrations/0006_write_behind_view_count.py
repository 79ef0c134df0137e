"""The write_behind technique's product view counter and the ledger of its flushes
(shop/techniques/write_behind.py).

`view_count` has a database default, so PostgreSQL adds it without rewriting the table (a
constant default is stored in the catalog since PostgreSQL 11), and rows inserted by raw SQL
or an older process get 0 too.
"""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("catalog", "0005_inventory_locking_version")]

    operations = [
        migrations.CreateModel(
            name="ViewCountFlush",
            fields=[
                ("flush_id", models.CharField(max_length=64, primary_key=True, serialize=False)),
                ("products", models.PositiveIntegerField()),
                ("views", models.PositiveBigIntegerField()),
                ("applied_at", models.DateTimeField(db_index=True)),
            ],
            options={"ordering": ["applied_at"]},
        ),
        migrations.AddField(
            model_name="product",
            name="view_count",
            field=models.PositiveBigIntegerField(db_default=0, default=0, editable=False),
        ),
    ]
