"""The db_indexes technique's catalog indexes: product search (trigram), the product list and a
product's reviews. The SQL lives in shop/techniques/db_indexes.py, next to what each index
serves; these RunSQL operations leave the models' state alone, so `makemigrations` sees
nothing, and the technique can drop and re-create the indexes for the benchmark.
"""

from django.contrib.postgres.operations import TrigramExtension
from django.db import migrations

from shop.techniques import db_indexes

# Named here, not taken by table from the module: an index added to the module later needs a
# migration of its own, and tests/techniques/test_db_indexes.py fails until it has one.
INDEXES = [
    "catalog_product_name_trgm_idx",
    "catalog_product_active_created_idx",
    "catalog_review_product_created_idx",
]


class Migration(migrations.Migration):
    dependencies = [
        ("catalog", "0002_category_not_own_parent_stock_cap"),
    ]

    operations = [
        TrigramExtension(),  # gin_trgm_ops, for the product search index
        *(
            migrations.RunSQL(
                db_indexes.BY_NAME[name].create_sql(),
                reverse_sql=db_indexes.BY_NAME[name].drop_sql(),
            )
            for name in INDEXES
        ),
        # An expression index has no statistics until ANALYZE: without them the planner
        # guesses how many names a search matches.
        migrations.RunSQL("ANALYZE catalog_product", reverse_sql=migrations.RunSQL.noop),
    ]
