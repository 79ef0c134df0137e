"""Find a deep page from where the previous one ended (a keyset), not by counting rows to skip.

Off: page numbers, `?page=N&page_size=M` (DRF's PageNumberPagination, as every other list in
the shop). Each page costs two queries:

    SELECT COUNT(*) FROM orders_order                      -- for "count" and the last page
    SELECT ... ORDER BY created_at DESC, id DESC LIMIT 50 OFFSET 99950

OFFSET is not a jump. PostgreSQL produces the first 99,950 rows of the ordering and throws
them away, so the cost grows with the page number, and the COUNT(*) reads the whole table on
every page.

On: a keyset cursor, `?cursor=...&page_size=M` (shop.pagination.KeysetPagination). The cursor
carries the (created_at, id) of the row the previous page ended on, and the page is

    SELECT ... WHERE (created_at, id) < (%s, %s) ORDER BY created_at DESC, id DESC LIMIT 51

With an index on (created_at DESC, id DESC), which the db_indexes technique provides,
PostgreSQL reads 51 index entries at any depth. Without that index it still saves the COUNT(*)
and the sort of everything before the page, but it must scan the table to find the rows.

The contract changes, deliberately. A cursor page has no total `count` and no page numbers,
only `next` and `previous` links. A client cannot jump to page 2000. It follows links, or it
keeps a cursor it was given.

Pagination reads the query string and writes absolute links, which is the HTTP layer's work.
So the view picks the paginator here, as it picks its serializer, and the selector only fixes
the ordering both paths page through.
"""

from rest_framework.pagination import BasePagination

from shop import toggles
from shop.pagination import KeysetPagination, PagePagination

TOGGLE = toggles.register(
    "cursor_pagination",
    group="data_access",
    description="keyset cursor on (created_at, id) instead of LIMIT/OFFSET pages with COUNT(*)",
)


def paginator() -> BasePagination:
    """The paginator for this request, decided when the view runs."""
    if not toggles.is_enabled(TOGGLE.name):
        return PagePagination()  # naive: COUNT(*), then OFFSET (page - 1) * page_size
    return KeysetPagination()
