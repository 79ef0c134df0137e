"""Page sizes past the API's cap, for a sweep only.

The API caps `?page_size=` at 100 (`shop.pagination.PagePagination.max_page_size`). The N+1
sweeps (select_related, prefetch_related) go to 200 rows a page, and they go through the same
request path as every other point, so the curve measures one thing from end to end: calling
the selector and serializer directly for the last point would drop the middleware, the
authentication and the rendering from that point alone. So the bench raises the cap, in its own
process, for the point that needs it, and the module's `after()` hook puts it back (at the end
of the sweep, and at every bench start-up, like every hook).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from shop.bench.scenario import Call, Scenario
from shop.pagination import PagePagination

CAP = PagePagination.max_page_size  # the API's, as the code sets it


def raise_cap(page_size: int) -> None:
    """Let this process serve pages of `page_size` rows (never lowers the cap)."""
    PagePagination.max_page_size = max(page_size, CAP)


def restore_cap() -> list[str]:
    """The API's cap back; returns what it restored, for the report."""
    if PagePagination.max_page_size == CAP:
        return []
    PagePagination.max_page_size = CAP
    return [f"PagePagination.max_page_size back to {CAP}"]


def page_scenario(
    scenario: Scenario,
    page_size: int,
    *,
    title: str,
    call: Callable[[int], Call],
    prepare: Callable[[int], None],
) -> Scenario:
    """`scenario` at one page size: the cap raised for it before its own prepare()."""

    def prepare_point() -> None:
        raise_cap(page_size)
        prepare(page_size)

    return replace(scenario, title=title, call=lambda: call(page_size), prepare=prepare_point)
