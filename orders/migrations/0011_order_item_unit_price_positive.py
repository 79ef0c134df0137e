"""An order item's unit price is positive, as its variant's is: the sales report's read model
(shop/techniques/materialized_view.py) bounds a range's revenue by the all-time revenue, which
holds only while no revenue is negative."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("catalog", "0006_write_behind_view_count"),
        ("orders", "0010_tax_and_shipping_rates"),
    ]

    operations = [
        migrations.AddConstraint(
            model_name="orderitem",
            constraint=models.CheckConstraint(
                condition=models.Q(("unit_price__gt", 0)), name="order_item_unit_price_positive"
            ),
        ),
    ]
