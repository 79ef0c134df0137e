"""Build a list page as plain dicts from `values()` rows and write it with orjson, instead of
walking model instances through DRF serializers and encoding them with the stdlib's json.

Off: the view pages through model instances and hands them to the serializer,
`OrderOutputSerializer(page, many=True).data`. For each row Django builds a model instance
from every column of the table (parsing timestamps nobody shows), and for each field of each
row DRF calls `get_attribute()` and `to_representation()` and stores the result in an ordered
dict. Then DRF's JSONRenderer runs `json.dumps` with its encoder class. On a page of 50 orders
with their 150 items that is over a thousand field calls and 200 model instances, and it is
most of the request's time once the queries are few.

On: the page is read with `values()`, only the columns the serializer shows, as dicts. Each
nested list (an order's items) is read as dicts too and grouped by its parent in Python.
Each row becomes a plain dict in one comprehension, with decimals and datetimes formatted as
DRF formats them. orjson, written in Rust, writes the bytes.

The serializer stays the contract. The OpenAPI schema is generated from it, and the fast path
is compiled from it, once per serializer: the keys and their order, the columns, the decimal
places. The two paths cannot drift apart. Only the field types these lists use are compiled
(integer, char, decimal, ISO 8601 datetime, a nested list over a reverse foreign key, and a
nested object over a forward one). Anything else is refused when it is compiled, not rendered
differently.

What it costs: a second way to represent a row, which has to stay byte for byte DRF's (the
test compares bytes), and no model methods or properties in the output. What does not change:
the bytes, the pagination (the same paginator reads the same rows), and the queries. A nested
list is fetched as the selector asked for it: in one query when it prefetched the relation
(the prefetch_related technique on; `= ANY(array)` where Django's prefetch writes `IN (...)`,
the same rows and plan), otherwise in one query per row, as the serializer would. A nested
object likewise: through the page query's JOIN when the selector select_related() it, otherwise
in one query per row.
"""

from __future__ import annotations

import decimal
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, tzinfo
from functools import cache

import orjson
from django.conf import settings
from django.db.models import F, ForeignKey, ManyToOneRel, Model, Prefetch, QuerySet
from django.utils import timezone
from rest_framework import serializers
from rest_framework.pagination import BasePagination
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.settings import ISO_8601, api_settings

from shop import toggles
from shop.lookups import AnyOf

TOGGLE = toggles.register(
    "fast_serialization",
    group="caching",
    description="Plain dicts from values() rendered by orjson instead of DRF serializers and json",
)


def paginate(
    *,
    queryset: QuerySet,
    request,
    view,
    serializer_class: type[serializers.Serializer],
    paginator: BasePagination | None = None,
) -> Response:
    """Page `queryset` with `paginator` (the view's `pagination_class` by default) and answer
    with the page as `serializer_class` represents it. The path is chosen when the view runs."""
    if paginator is None:
        paginator = view.pagination_class()
    if not toggles.is_enabled(TOGGLE.name):
        return _naive(queryset, request, view, serializer_class, paginator)
    return _optimized(queryset, request, view, serializer_class, paginator)


def _naive(queryset, request, view, serializer_class, paginator) -> Response:
    page = paginator.paginate_queryset(queryset, request, view=view)  # model instances
    # A serializer per row, a to_representation() per field; DRF's JSONRenderer writes it.
    return paginator.get_paginated_response(serializer_class(page, many=True).data)


def _optimized(queryset, request, view, serializer_class, paginator) -> Response:
    shape = _shape(serializer_class, queryset.model)
    prefetched = _prefetched(queryset)
    joined = _joined(queryset)
    # values() rows cannot carry prefetched objects: the nested lists are read below instead.
    # A related object the selector JOINed is read through the same JOIN ("category__name").
    values = queryset.prefetch_related(None).values(*shape.columns_for(joined))
    rows = paginator.paginate_queryset(_CountedAs(values, queryset), request, view=view)
    data = shape.represent(
        rows, prefetched=prefetched, joined=joined, tz=timezone.get_current_timezone()
    )
    # Content negotiation has already picked JSON or the browsable API's HTML. Only the JSON
    # renderer is swapped; `application/json; indent=4` still goes to json (see below).
    if type(request.accepted_renderer) is JSONRenderer:
        request.accepted_renderer = ORJSONRenderer()
    return paginator.get_paginated_response(data)


def _prefetched(queryset: QuerySet) -> set[str]:
    """The relations the selector prefetched, which the fast path reads in one query each:
    "items__variant" stands for "items" and "items__variant"."""
    names = set()
    for lookup in queryset._prefetch_related_lookups:
        if isinstance(lookup, Prefetch):
            raise ValueError(f"{lookup.prefetch_to!r}: a Prefetch() has no values() twin here")
        parts = lookup.split("__")
        names.update("__".join(parts[:depth]) for depth in range(1, len(parts) + 1))
    return names


class _CountedAs:
    """A values() queryset whose count() is the model queryset's, for the page numbers.

    values() JOINs every table it reads a column from ("category__name"), and a COUNT(*) of it
    keeps those JOINs: on the product list, counting 9,700 products joined to their categories
    and brands instead of the products alone, about ten times the work. The model queryset's
    count drops select_related(), so it sends the statement the serializer path sends. Anything
    else (slicing, ordering, filtering for a cursor) goes to the values() queryset."""

    def __init__(self, rows: QuerySet, counted: QuerySet) -> None:
        self._rows, self._counted = rows, counted

    def count(self) -> int:
        return self._counted.count()

    def __getitem__(self, key):
        return self._rows[key]

    def __getattr__(self, name: str):
        return getattr(self._rows, name)


def _joined(queryset: QuerySet) -> set[str] | bool:
    """The forward relations the selector select_related(): their names, or True for all."""
    selected = queryset.query.select_related
    return True if selected is True else set(selected or ())


class ORJSONRenderer(JSONRenderer):
    """The bytes DRF's JSONRenderer writes (compact, UTF-8 rather than `\\u` escapes), written
    by orjson. For plain data only: dicts, lists, str, int, bool and None."""

    def render(self, data, accepted_media_type=None, renderer_context=None) -> bytes:
        if data is None:
            return b""
        if self.get_indent(accepted_media_type, renderer_context or {}) is not None:
            # Pretty-printing asked for in the Accept header: a debugging aid, left to json.
            return super().render(data, accepted_media_type, renderer_context)
        body = orjson.dumps(data)
        # DRF escapes U+2028 and U+2029 (JavaScript reads them as line ends); orjson does not.
        return body.replace(b"\xe2\x80\xa8", b"\\u2028").replace(b"\xe2\x80\xa9", b"\\u2029")


# How DRF represents a value, for each field type compiled: (value, timezone) -> JSON value.
# A None never reaches them: the serializer writes None for a None attribute, and so does
# _Shape.represent.
Convert = Callable[[object, tzinfo], object]


def _integer(value, tz):
    return int(value)


def _text(value, tz):
    return str(value)


def _datetime(value: datetime, tz: tzinfo) -> str:
    """DateTimeField with the default ISO 8601 format: in the current time zone, `Z` for UTC."""
    text = value.astimezone(tz).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def _decimal(field: serializers.DecimalField) -> Convert:
    """DecimalField: quantized to its places in a context of its digits, as a string."""
    places = decimal.Decimal(".1") ** field.decimal_places
    context = decimal.getcontext().copy()
    if field.max_digits is not None:
        context.prec = field.max_digits

    def convert(value, tz):
        if not isinstance(value, decimal.Decimal):
            value = decimal.Decimal(str(value).strip())
        return f"{value.quantize(places, rounding=field.rounding, context=context):f}"

    return convert


def _as_is(value, tz):
    return value  # a nested list, already represented


@dataclass(frozen=True)
class _Nested:
    """A `many=True` serializer over a reverse foreign key: an order's items."""

    key: str  # the output key, and where represent() puts the child dicts on the row
    relation: ManyToOneRel  # its accessor is the serializer field's source: "items"
    shape: _Shape

    def attach(self, rows: list[dict], *, pk: str, prefetched: set[str], tz: tzinfo) -> None:
        name = self.relation.get_accessor_name()
        foreign_key = self.relation.field
        children = self.relation.related_model._default_manager.all()  # its default ordering
        if name in prefetched:
            # One query for the page: WHERE order_id = ANY(<the page's ids, one array>).
            ids = [row[pk] for row in rows]
            columns = dict.fromkeys((foreign_key.attname, *self.shape.columns))
            found = (
                list(children.filter(AnyOf(F(foreign_key.attname), ids)).values(*columns))
                if ids
                else []
            )
            parents = [child[foreign_key.attname] for child in found]
        else:
            # As the serializer reads `order.items.all()`: WHERE order_id = %s, per row.
            found, parents = [], []
            for row in rows:
                own = list(
                    children.filter(**{foreign_key.name: row[pk]}).values(*self.shape.columns)
                )
                found += own
                parents += [row[pk]] * len(own)
        # "items__variant" prefetched for the orders is "variant" for their items.
        deeper = {
            lookup[len(name) + 2 :] for lookup in prefetched if lookup.startswith(name + "__")
        }
        # Every child of the page in one pass, then handed to its parent.
        grouped: dict[object, list[dict]] = {row[pk]: [] for row in rows}
        shown = self.shape.represent(found, prefetched=deeper, joined=set(), tz=tz)
        for parent, child in zip(parents, shown, strict=True):
            grouped[parent].append(child)
        for row in rows:
            row[self.key] = grouped[row[pk]]


@dataclass(frozen=True)
class _Related:
    """A nested serializer over a forward foreign key: a product's category."""

    key: str  # the output key, and where represent() puts the child dict on the row
    foreign_key: ForeignKey  # the serializer field's source: "category"
    shape: _Shape

    def joined_columns(self) -> tuple[str, ...]:
        """The child's columns read through the JOIN: "category__id", "category__name"."""
        return tuple(f"{self.foreign_key.name}__{column}" for column in self.shape.columns)

    def attach(self, rows: list[dict], *, joined: bool, tz: tzinfo) -> None:
        attname = self.foreign_key.attname  # "category_id"
        if joined:
            # The selector JOINed the table: the child's columns are on each row already.
            prefix = f"{self.foreign_key.name}__"
            children = [
                {column: row[prefix + column] for column in self.shape.columns}
                if row[attname] is not None
                else None
                for row in rows
            ]
        else:
            # As the serializer reads `product.category`: a query per row, WHERE id = %s.
            model = self.foreign_key.related_model
            target = self.foreign_key.target_field.attname
            children = [
                model._default_manager.filter(**{target: row[attname]})
                .values(*self.shape.columns)
                .first()
                if row[attname] is not None
                else None
                for row in rows
            ]
        present = [child for child in children if child is not None]
        shown = iter(self.shape.represent(present, prefetched=set(), joined=set(), tz=tz))
        for row, child in zip(rows, children, strict=True):
            # An unset foreign key is None, as DRF writes a None attribute.
            row[self.key] = None if child is None else next(shown)


@dataclass(frozen=True)
class _Shape:
    """A serializer compiled for values() rows of its model."""

    columns: tuple[str, ...]  # what values() reads, without the JOINed children's columns
    fields: tuple[tuple[str, str, Convert], ...]  # (output key, row key, convert), in order
    nested: tuple[_Nested, ...]
    related: tuple[_Related, ...]
    pk: str

    def columns_for(self, joined: set[str] | bool) -> tuple[str, ...]:
        """What values() reads when the selector JOINed the relations named in `joined`."""
        extra = [
            column
            for related in self.related
            if joined is True or related.foreign_key.name in joined
            for column in related.joined_columns()
        ]
        return (*self.columns, *extra)

    def represent(
        self, rows: list[dict], *, prefetched: set[str], joined: set[str] | bool, tz: tzinfo
    ) -> list[dict]:
        for nested in self.nested:
            nested.attach(rows, pk=self.pk, prefetched=prefetched, tz=tz)
        for related in self.related:
            name = related.foreign_key.name
            related.attach(rows, joined=joined is True or name in joined, tz=tz)
        return [
            {
                key: None if (value := row[column]) is None else convert(value, tz)
                for key, column, convert in self.fields
            }
            for row in rows
        ]


def compiled(serializer_class: type[serializers.Serializer], model: type[Model]) -> _Shape:
    """The serializer compiled for `model`'s values() rows: the columns it reads, its nested
    objects and lists. sparse_fields reads it to know what a set of fields needs fetched."""
    return _shape(serializer_class, model)


@cache
def _shape(serializer_class: type[serializers.Serializer], model: type[Model]) -> _Shape:
    if not settings.USE_TZ:
        raise ValueError("the fast path formats aware datetimes only (USE_TZ = True)")
    pk = model._meta.pk.attname
    columns: list[str] = []
    fields: list[tuple[str, str, Convert]] = []
    nested: list[_Nested] = []
    related: list[_Related] = []
    for field in serializer_class().fields.values():
        if field.write_only:
            continue
        if isinstance(field, serializers.BaseSerializer) and not isinstance(
            field, serializers.ListSerializer
        ):
            foreign_key = model._meta.get_field(field.source)
            if not isinstance(foreign_key, ForeignKey):
                raise ValueError(f"{field.field_name}: only a forward foreign key can be nested")
            child = _shape(type(field), foreign_key.related_model)
            if child.nested or child.related:
                raise ValueError(f"{field.field_name}: a nested object must hold plain fields")
            related.append(_Related(key=field.field_name, foreign_key=foreign_key, shape=child))
            columns.append(foreign_key.attname)  # to find the child, or to know it is unset
            fields.append((field.field_name, field.field_name, _as_is))
            continue
        if isinstance(field, serializers.ListSerializer):
            relation = model._meta.get_field(field.source)
            if not isinstance(relation, ManyToOneRel):
                raise ValueError(f"{field.field_name}: only a reverse foreign key can be nested")
            child = _shape(type(field.child), relation.related_model)
            nested.append(_Nested(key=field.field_name, relation=relation, shape=child))
            fields.append((field.field_name, field.field_name, _as_is))
            continue
        column = "__".join(field.source_attrs)  # "user.username" → "user__username"
        columns.append(column)
        fields.append((field.field_name, column, _converter(field)))
    if nested and pk not in columns:
        columns.append(pk)  # to find each row's children
    return _Shape(
        columns=tuple(dict.fromkeys(columns)),
        fields=tuple(fields),
        nested=tuple(nested),
        related=tuple(related),
        pk=pk,
    )


def _converter(field: serializers.Field) -> Convert:
    """The field's to_representation(), for the types and options compiled; an error for the
    others, so nothing is ever represented differently from DRF."""
    kind = type(field)
    if kind is serializers.IntegerField:
        return _integer
    if kind is serializers.CharField:
        return _text
    if (
        kind is serializers.DateTimeField
        and getattr(field, "format", api_settings.DATETIME_FORMAT) == ISO_8601
        and not hasattr(field, "timezone")
    ):
        return _datetime
    if (
        kind is serializers.DecimalField
        and getattr(field, "coerce_to_string", api_settings.COERCE_DECIMAL_TO_STRING)
        and not field.localize
        and not field.normalize_output
        and field.decimal_places is not None
    ):
        return _decimal(field)
    raise ValueError(f"{field.field_name}: no fast representation of {field!r}")
