"""The staff CSV export of every order in the data set: 100,000 rows on the medium size."""

from django.db.models import Max, Min
from django.utils import timezone

from orders.models import Order
from shop.bench.scenario import Call, Scenario

_call: dict[str, str] = {}


def _prepare() -> None:
    span = Order.objects.aggregate(first=Min("created_at"), last=Max("created_at"))
    today = timezone.now()
    first, last = (span[end] or today for end in ("first", "last"))  # no orders: today only
    _call["path"] = (
        f"/api/staff/orders/export.csv?date_from={first:%Y-%m-%d}&date_to={last:%Y-%m-%d}"
    )


SCENARIO = Scenario(
    name="streaming_export",
    # No row count in the title: it is the data's, and the title names the scenario whatever
    # the size.
    title="CSV export of all orders",
    prepare=_prepare,
    call=lambda: Call("GET", _call["path"], user="staff"),
    memory=True,
    # Nothing held: the export reads no other toggle, so off always builds the whole CSV.
    notes="Peak memory is the point: the streamed body must be consumed inside the "
    "measurement, chunk by chunk. X-DB-Queries cannot count the streamed path's export "
    "query: it runs after the middleware has returned, while the body is consumed.",
)
