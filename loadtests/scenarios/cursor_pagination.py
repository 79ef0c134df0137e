"""cursor_pagination under load: the staff list of all orders at its deepest full page of 50
(shop/bench/scenarios/cursor_pagination.py): page 40 on the small data set, 2000 on medium.

As in the bench, one URL serves both sides: it carries `page=N` for the page-number path (off)
and an equivalent `cursor=` for the keyset path (on), and each path reads its own parameter.
The user learns both once, with page-number requests (named `learn:` in the stats). Nothing
held. The keyset is fast only with the index db_indexes adds (`manage.py db_indexes on`).
"""

import base64
import json

from locust import task

from loadtests.common import STAFF, TechniqueUser, json_body

PAGE_SIZE = 50


def keyset_cursor(created_at: str, order_id: int) -> str:
    """The `?cursor=` value that starts a page after this row: the format that
    shop.pagination.Cursor.encode documents (URL-safe base64 of `{"p": [...], "r": false}`).
    A real client follows `next` links; a load test cannot walk 2,000 pages to get there."""
    payload = json.dumps({"p": [created_at, str(order_id)], "r": False}, separators=(",", ":"))
    return base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=")


class CursorPaginationUser(TechniqueUser):
    technique = "cursor_pagination"

    def on_start(self) -> None:
        super().on_start()
        self.log_in(STAFF)
        self.path = self.deepest_page()

    def page_numbers(self, page: int) -> dict:
        return json_body(
            self.client.get(
                f"/api/staff/orders/?page_size={PAGE_SIZE}&page={page}",
                headers={"X-Perf-Toggles": "cursor_pagination=off"},
                name="learn: /api/staff/orders/?page=[n]",
            )
        )

    def deepest_page(self) -> str:
        count = self.page_numbers(1).get("count") or 0
        page = max(count // PAGE_SIZE, 1)  # the deepest page that is full
        path = f"/api/staff/orders/?page_size={PAGE_SIZE}&page={page}"
        if page > 1:
            # The keyset names the row the page starts after: the last row of page - 1.
            last = (self.page_numbers(page - 1).get("results") or [{}])[-1]
            if "created_at" in last:
                path += f"&cursor={keyset_cursor(last['created_at'], last['id'])}"
        return path

    @task
    def deepest_page_of_orders(self) -> None:
        if self.authenticated():
            self.client.get(
                self.path,
                headers=self.toggles(),
                name="cursor_pagination: /api/staff/orders/ (deepest full page of 50)",
            )
