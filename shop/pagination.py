"""Pagination for list endpoints.

- `PagePagination`: page numbers, `?page=N&page_size=M` (LIMIT/OFFSET + COUNT(*)).
- `KeysetPagination`: opaque cursors, `?cursor=...&page_size=M` (a row comparison + LIMIT).
"""

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.db.models import F, QuerySet
from django.db.models.fields.tuple_lookups import TupleGreaterThan, TupleLessThan
from rest_framework.exceptions import NotFound
from rest_framework.pagination import BasePagination, PageNumberPagination
from rest_framework.response import Response
from rest_framework.utils.urls import replace_query_param


class PagePagination(PageNumberPagination):
    page_size = 20
    page_size_query_param = "page_size"
    max_page_size = 100

    def get_schema_operation_parameters(self, view) -> list[dict]:
        """DRF's parameters, with the limits stated: a page from 1, a page size from 1 to 100."""
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_query_param:
                parameter["schema"]["minimum"] = 1
            elif parameter["name"] == self.page_size_query_param:
                parameter["schema"].update(minimum=1, maximum=self.max_page_size)
        return parameters


@dataclass(frozen=True)
class Cursor:
    position: tuple[Any, ...]  # the ordering fields' values of the row the page starts after
    reverse: bool = False  # True: the page before `position` (a `previous` link)

    def encode(self) -> str:
        """The opaque `?cursor=` value: URL-safe base64 of `{"p": [...], "r": false}`."""
        values = [_text(value) for value in self.position]
        payload = json.dumps({"p": values, "r": self.reverse}, separators=(",", ":"))
        return base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=")


def _utc_only(value: Any) -> Any:
    """`encode` writes every datetime in UTC (`+00:00`); any other offset was crafted. Refused
    rather than converted: PostgreSQL answers an offset past ±15:59 with an error, and a
    converted year 1 or 9999 can leave the calendar."""
    if isinstance(value, datetime) and value.utcoffset() != timedelta(0):
        raise ValueError("not a cursor")
    return value


class KeysetPagination(BasePagination):
    """Keyset pagination: `?cursor=...&page_size=M`, answering `{"next", "previous", "results"}`.

    A page starts where the last one ended, found by value instead of by counting rows:

        WHERE (created_at, id) < (<last row's created_at>, <last row's id>)
        ORDER BY created_at DESC, id DESC LIMIT M + 1

    With an index on the ordering, PostgreSQL reads M + 1 index entries at any depth: no
    COUNT(*), and no OFFSET rows produced only to be thrown away. The price is the contract:
    no total `count` and no jumping to page N, only the `next` and `previous` links.

    After DRF's CursorPagination, with two differences: the position holds every ordering
    field, so ties need no offset in the cursor, and the cursor is base64 JSON. It is opaque,
    not signed: editing it can only move the position, which any client may do anyway.
    """

    # Must be unique, so it ends with the primary key: rows that tie on it could otherwise be
    # skipped or repeated at a page boundary. One direction for all fields, since a single row
    # comparison covers them. Every list here is newest first.
    ordering = ("-created_at", "-id")
    cursor_query_param = "cursor"
    page_size = 20
    page_size_query_param = "page_size"
    max_page_size = 100
    invalid_cursor_message = "Invalid cursor."

    def paginate_queryset(self, queryset: QuerySet, request, view=None) -> list:
        self.base_url = request.build_absolute_uri()
        self.fields = [queryset.model._meta.get_field(name.lstrip("-")) for name in self.ordering]
        page_size = self.get_page_size(request)
        cursor = self.decode_cursor(request)
        reverse = cursor is not None and cursor.reverse

        # A `previous` page is read backwards from its position, then turned around.
        descending = self.ordering[0].startswith("-") != reverse
        direction = "-" if descending else ""
        queryset = queryset.order_by(*(direction + field.name for field in self.fields))
        if cursor is not None:
            after = TupleLessThan if descending else TupleGreaterThan
            columns = tuple(F(field.name) for field in self.fields)
            queryset = queryset.filter(after(columns, cursor.position))

        # One row more than the page: whether it comes back says if there is a page beyond.
        rows = list(queryset[: page_size + 1])
        beyond = len(rows) > page_size
        rows = rows[:page_size]
        if reverse:
            rows.reverse()

        # An empty page (past the end, or the rows were deleted) keeps the cursor's position.
        empty = cursor.position if cursor is not None else None
        self.first_position = self._position(rows[0]) if rows else empty
        self.last_position = self._position(rows[-1]) if rows else empty
        # Coming from a cursor, there was a page on the side we came from.
        self.has_next = True if reverse else beyond
        self.has_previous = beyond if reverse else cursor is not None
        return rows

    def get_page_size(self, request) -> int:
        """`?page_size=` when it is a positive integer, at most `max_page_size`; else the default."""
        try:
            requested = int(request.query_params[self.page_size_query_param])
        except (KeyError, ValueError):
            return self.page_size
        return min(requested, self.max_page_size) if requested > 0 else self.page_size

    def _position(self, row) -> tuple[Any, ...]:
        if isinstance(row, dict):  # a values() row (the fast_serialization technique)
            return tuple(row[field.attname] for field in self.fields)
        return tuple(field.value_from_object(row) for field in self.fields)

    def decode_cursor(self, request) -> Cursor | None:
        encoded = request.query_params.get(self.cursor_query_param)
        if encoded is None:
            return None
        try:
            payload = json.loads(base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)))
            values, reverse = payload["p"], payload["r"]
            if not isinstance(values, list) or not isinstance(reverse, bool):
                raise ValueError("not a cursor")
            # `encode` writes every value as text. Anything else was crafted: a JSON number
            # such as `1e400` or `Infinity` is a float infinity, which int() refuses with an
            # OverflowError rather than a ValueError.
            if not all(isinstance(value, str) for value in values):
                raise ValueError("not a cursor")
            # Typed as the columns are (a datetime, an int), so the comparison is the column's own.
            position = tuple(
                _utc_only(field.to_python(value))
                for field, value in zip(self.fields, values, strict=True)
            )
        # RecursionError: a crafted cursor nested a thousand levels deep.
        except (
            binascii.Error,
            ValueError,
            KeyError,
            TypeError,
            OverflowError,
            RecursionError,
            ValidationError,
        ):
            raise NotFound(self.invalid_cursor_message) from None
        return Cursor(position=position, reverse=reverse)

    def encode_cursor(self, cursor: Cursor) -> str:
        return replace_query_param(self.base_url, self.cursor_query_param, cursor.encode())

    def get_next_link(self) -> str | None:
        if not self.has_next or self.last_position is None:
            return None
        return self.encode_cursor(Cursor(position=self.last_position))

    def get_previous_link(self) -> str | None:
        if not self.has_previous or self.first_position is None:
            return None
        return self.encode_cursor(Cursor(position=self.first_position, reverse=True))

    def get_paginated_response(self, data) -> Response:
        return Response(
            {"next": self.get_next_link(), "previous": self.get_previous_link(), "results": data}
        )

    def get_paginated_response_schema(self, schema: dict) -> dict:
        link = {"type": "string", "nullable": True, "format": "uri"}
        return {
            "type": "object",
            "required": ["next", "previous", "results"],
            "properties": {"next": link, "previous": link, "results": schema},
        }

    def get_schema_operation_parameters(self, view) -> list[dict]:
        return [
            {
                "name": self.cursor_query_param,
                "required": False,
                "in": "query",
                "description": "Where the page starts: a `next` or `previous` link's cursor. "
                "Without it, the first page.",
                "schema": {"type": "string"},
            },
            {
                "name": self.page_size_query_param,
                "required": False,
                "in": "query",
                "description": f"Rows per page, at most {self.max_page_size}.",
                "schema": {"type": "integer", "minimum": 1, "maximum": self.max_page_size},
            },
        ]


def _text(value: Any) -> str:
    """A position value as the cursor carries it. `isoformat()` keeps a datetime's microseconds:
    DjangoJSONEncoder would cut them to milliseconds, and a cut position skips rows."""
    return value.isoformat() if hasattr(value, "isoformat") else str(value)
