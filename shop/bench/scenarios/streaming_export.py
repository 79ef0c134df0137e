"""The staff CSV export of every order in the data set: 100,000 rows on the medium size."""

from dataclasses import replace
from datetime import UTC, datetime, time

from django.db.models import Max, Min
from django.utils import timezone

from orders.models import Order
from shop.bench.scenario import Call, Scenario
from shop.bench.sweep import Sweep

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


# --- the sweep: exports of the newest 10k, 100k and 1M orders ----------------------------------
# Off builds the whole CSV in memory, so its peak grows linearly with the rows; on streams it a
# chunk at a time, so its peak stays flat. A range is whole UTC days, so a point is the rows of
# the days that hold the newest N orders: a day's orders more than N at most.


def _newest_days(rows: int) -> tuple[datetime, datetime]:
    """The first and the last order time of the days holding the newest `rows` orders."""
    newest_first = Order.objects.order_by("-created_at", "-id").values_list("created_at", flat=True)
    last, nth = newest_first.first(), newest_first[rows - 1]
    return datetime.combine(nth.astimezone(UTC).date(), time.min, tzinfo=UTC), last


def _fit(rows: int) -> int | None:
    """The rows of the days holding the newest `rows` orders; the whole table if it is at
    least half that; else None."""
    total = Order.objects.count()
    if total < rows:
        return total if total * 2 >= rows else None
    start, _ = _newest_days(rows)
    return Order.objects.filter(created_at__gte=start).count()


def _scenario_at(rows: int) -> Scenario:
    def prepare() -> None:
        first, last = _newest_days(rows)
        _call["path"] = (
            f"/api/staff/orders/export.csv?date_from={first:%Y-%m-%d}&date_to={last:%Y-%m-%d}"
        )

    return replace(SCENARIO, title=f"CSV export of the newest {rows:,} orders", prepare=prepare)


SWEEP = Sweep(
    axis="rows exported",
    points=(10_000, 100_000, 1_000_000),
    scenario_at=_scenario_at,
    fit=_fit,
    shape="peak memory: off linear in the rows (the whole CSV), on flat (a chunk at a time); "
    "time: linear on both sides",
)
