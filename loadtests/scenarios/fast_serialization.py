"""fast_serialization under load: the three lists of its bench scenario
(shop/bench/scenarios/fast_serialization.py), in turn, each with the bench's holds:

- a customer's order history, 50 orders with their items (prefetch_related held on);
- the staff order list's first cursor page of 50 (cursor_pagination held on);
- the product list, 50 rows with category and brand (select_related and field_selection on);
- the staff sales report over 366 days, from its read model (materialized_view held on).
"""

from datetime import date, timedelta

from locust import task

from loadtests.common import STAFF, TechniqueUser, customer
from shop.bench import holds


class FastSerializationUser(TechniqueUser):
    technique = "fast_serialization"

    def on_start(self) -> None:
        super().on_start()
        # Two logins: the order history is a customer's, the staff list is staff only.
        self.log_in(STAFF)
        self.staff_token = self.client.headers.pop("Authorization", None)
        self.log_in(customer())

    @task
    def order_history(self) -> None:
        if self.authenticated():
            self.client.get(
                "/api/orders/?page_size=50",
                headers=self.toggles(**holds.FAST_SERIALIZATION_ORDER_HISTORY),
                name="fast_serialization: /api/orders/?page_size=50",
            )

    @task
    def staff_order_list(self) -> None:
        if self.staff_token:
            self.client.get(
                "/api/staff/orders/?page_size=50",
                headers={
                    "Authorization": self.staff_token,
                    **self.toggles(**holds.FAST_SERIALIZATION_STAFF_ORDERS),
                },
                name="fast_serialization: /api/staff/orders/?page_size=50",
            )

    @task
    def product_list(self) -> None:
        self.client.get(
            "/api/products/?page_size=50",
            headers=self.toggles(**holds.FAST_SERIALIZATION_PRODUCT_LIST),
            name="fast_serialization: /api/products/?page_size=50",
        )

    @task
    def sales_report(self) -> None:
        if self.staff_token:
            date_to = date.today()
            date_from = date_to - timedelta(days=365)  # 366 days, both ends included
            self.client.get(
                f"/api/reports/sales/?date_from={date_from}&date_to={date_to}",
                headers={
                    "Authorization": self.staff_token,
                    **self.toggles(**holds.FAST_SERIALIZATION_SALES_REPORT),
                },
                name="fast_serialization: /api/reports/sales/ (366 days)",
            )
