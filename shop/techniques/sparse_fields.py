"""`?fields=id,name` answers with those fields only, and fetches only the columns they need.

Off: the naive sparse fieldset, the way most APIs add one (and what drf-flex-fields or
djangorestframework-dynamic-fields do when the queryset is left alone): the selector fetches
the whole representation (every column, every JOIN, the aggregate, the prefetched children),
the serializer represents all of it, and the fields nobody asked for are dropped from the
JSON at the end. The payload shrinks; the database does the same work as without `fields`.

On: the fields asked for decide what is fetched. The selector skips the annotations no shown
field reads (`Fetch.needs`), and `Fetch.trim` narrows the queryset to the rest: `only()` the
columns the shown fields read (the primary key is always loaded with a model instance), the
JOINs (`select_related`) and prefetches of shown nested objects only, and only their columns.
The page is then represented by the serializer with the other fields removed, through
fast_serialization, which compiles the same serializer into a `values()` read of exactly its
columns when it is on. The body is byte for byte the one the naive path writes.

The serializer is the contract: the fields a client may name are the serializer's, which is
the public representation, so a private column (a password, an email, a cost) is never even
a candidate. Any other name is a 400 that lists the allowed ones, and nothing is fetched.
A nested object or list (`category`, `items`) is one field: it is shown whole or not at all.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache

from django.db.models import Model, Prefetch, QuerySet
from drf_spectacular.utils import OpenApiParameter
from rest_framework import serializers
from rest_framework.pagination import BasePagination
from rest_framework.response import Response

from shop import toggles
from shop.errors import InvalidInput
from shop.techniques import fast_serialization

TOGGLE = toggles.register(
    "sparse_fields",
    group="caching",
    description="?fields= trims the columns and JOINs fetched, not only the JSON",
)

PARAMETER = "fields"
MAX_LENGTH = 500  # far above every field of a representation, comma-separated
NAME = re.compile(r"[a-z][a-z0-9_]*")
_ECHO = 40  # a rejected name is quoted up to this many characters


@dataclass(frozen=True)
class Fetch:
    """What a selector fetches: everything (`EVERYTHING`), or what a set of fields needs.

    Selectors take one (`fetch=`) and ask it two things: whether an annotation they would add
    is read by a shown field (`needs`), and to narrow the queryset to the shown fields
    (`trim`). Off, or without `fields`, it is EVERYTHING, which answers yes and changes nothing.
    """

    # The serializer with the shown fields only; None: the whole representation.
    shown: type[serializers.Serializer] | None = None

    def needs(self, *sources: str) -> bool:
        """Whether a shown field reads any of these sources (an annotation's name)."""
        return self.shown is None or not _sources(self.shown).isdisjoint(sources)

    def trim(self, queryset: QuerySet) -> QuerySet:
        """The queryset narrowed to the shown fields: their columns, JOINs and prefetches."""
        if self.shown is None:
            return queryset
        plan = _plan(self.shown, queryset.model)
        selected = queryset.query.select_related  # False, True (all) or {"category": {}, ...}
        joined = [name for name in plan.relations if selected is True or name in (selected or ())]
        queryset = queryset.select_related(None)
        if joined:
            queryset = queryset.select_related(*joined)
        lookups = queryset._prefetch_related_lookups
        kept = [lookup for lookup in lookups if _root(lookup) in plan.nested]
        queryset = queryset.prefetch_related(None).prefetch_related(*kept)
        # A related object's columns are named through its JOIN ("category__name"); one that
        # is not JOINed is read by its id, one query per row, as the serializer would.
        through = [column for name in joined for column in plan.joined_columns[name]]
        return queryset.only(*plan.columns, *through)


@dataclass(frozen=True)
class _Plan:
    columns: tuple[str, ...]  # the model's own columns the shown fields read, pk first
    relations: tuple[str, ...]  # forward foreign keys shown
    joined_columns: dict[str, tuple[str, ...]]  # their columns, through the JOIN
    nested: frozenset[str]  # reverse relations shown


EVERYTHING = Fetch()


@dataclass(frozen=True)
class Requested:
    """The `fields` a request asked for, checked against a serializer, and the way the answer
    is built: the one object a view gets from this module (`requested()`)."""

    serializer_class: type[serializers.Serializer]
    names: tuple[str, ...] | None  # the shown fields, in the serializer's order; None: all
    trims_queries: bool  # the technique's side, decided when the request was read
    fetch: Fetch = field(default=EVERYTHING)

    @property
    def sparse(self) -> bool:
        """Whether `fields` was given: the answer is not the whole representation (a page
        cache keyed on the URL path alone must not answer it, nor store it)."""
        return self.names is not None

    def paginate(
        self, *, queryset: QuerySet, request, view, paginator: BasePagination | None = None
    ) -> Response:
        """A page of `queryset` (already trimmed by the selector through `fetch`)."""
        if not self.sparse:
            return fast_serialization.paginate(
                queryset=queryset,
                request=request,
                view=view,
                serializer_class=self.serializer_class,
                paginator=paginator,
            )
        if not self.trims_queries:
            return self._naive_page(queryset, request, view, paginator)
        return self._optimized_page(queryset, request, view, paginator)

    def represent(self, instance: Model) -> dict:
        """One object (a detail page) as the shown fields represent it."""
        if not self.sparse:
            return self.serializer_class(instance).data
        if not self.trims_queries:
            return _keep(self.serializer_class(instance).data, self.names)  # naive: all, then cut
        return _trimmed(self.serializer_class, self.names)(instance).data

    def _naive_page(self, queryset, request, view, paginator) -> Response:
        # The whole representation, fetched and represented, then cut down to the fields.
        response = fast_serialization.paginate(
            queryset=queryset,
            request=request,
            view=view,
            serializer_class=self.serializer_class,
            paginator=paginator,
        )
        response.data["results"] = [_keep(row, self.names) for row in response.data["results"]]
        return response

    def _optimized_page(self, queryset, request, view, paginator) -> Response:
        # The selector fetched what the fields need; the serializer without the other fields
        # represents it (a values() read of the same columns when fast_serialization is on).
        return fast_serialization.paginate(
            queryset=queryset,
            request=request,
            view=view,
            serializer_class=_trimmed(self.serializer_class, self.names),
            paginator=paginator,
        )


def requested(request, serializer_class: type[serializers.Serializer]) -> Requested:
    """Read and check `?fields=` against `serializer_class`'s fields: a 400 with the field
    messages for anything that is not one of them. The technique's side is read here, once."""
    raw = request.query_params.getlist(PARAMETER)
    if not raw:
        return Requested(serializer_class=serializer_class, names=None, trims_queries=False)
    names = _checked(raw, allowed=public_fields(serializer_class))
    if not toggles.is_enabled(TOGGLE.name):
        return Requested(serializer_class=serializer_class, names=names, trims_queries=False)
    return Requested(
        serializer_class=serializer_class,
        names=names,
        trims_queries=True,
        fetch=Fetch(shown=_trimmed(serializer_class, names)),
    )


def public_fields(serializer_class: type[serializers.Serializer]) -> tuple[str, ...]:
    """The names a client may ask for: the serializer's readable fields, in its order."""
    return tuple(name for name, field in serializer_class().fields.items() if not field.write_only)


def parameter(serializer_class: type[serializers.Serializer]) -> OpenApiParameter:
    """The `fields` query parameter, for the view's schema."""
    return OpenApiParameter(
        name=PARAMETER,
        type=str,
        required=False,
        description=(
            "Answer with these fields only, comma-separated (a nested object or list is one "
            f"field). Allowed: {', '.join(public_fields(serializer_class))}. Any other name "
            "is a 400."
        ),
    )


def _checked(raw: list[str], *, allowed: tuple[str, ...]) -> tuple[str, ...]:
    """The asked names, deduplicated and in the serializer's order; InvalidInput otherwise."""
    if len(raw) > 1:
        raise InvalidInput({PARAMETER: ["Give `fields` once, as a comma-separated list."]})
    text = raw[0]
    if len(text) > MAX_LENGTH:
        raise InvalidInput({PARAMETER: [f"At most {MAX_LENGTH} characters."]})
    parts = [part.strip() for part in text.split(",")]
    if parts == [""]:
        raise InvalidInput(
            {PARAMETER: [f"Name at least one field; allowed: {', '.join(allowed)}."]}
        )
    errors = []
    for part in dict.fromkeys(parts):  # a name given twice is reported (or kept) once
        if not part:
            errors.append("An empty name: separate the names with single commas.")
        elif part not in allowed:
            shown = part if len(part) <= _ECHO else part[:_ECHO] + "..."
            kind = "unknown field" if NAME.fullmatch(part) else "not a field name"
            errors.append(f"{kind} {shown!r}; allowed: {', '.join(allowed)}")
    if errors:
        raise InvalidInput({PARAMETER: errors})
    asked = set(parts)
    return tuple(name for name in allowed if name in asked)


def _keep(row: dict, names: Iterable[str]) -> dict:
    wanted = set(names)
    return {key: value for key, value in row.items() if key in wanted}


@cache
def _trimmed(
    serializer_class: type[serializers.Serializer], names: tuple[str, ...]
) -> type[serializers.Serializer]:
    """`serializer_class` with the named fields only (one class per set of names, so
    fast_serialization compiles each once). Bounded: the names are checked subsets of the
    serializer's fields, in its order, so a serializer of n fields has at most 2**n."""

    def get_fields(self):
        return {
            name: field
            for name, field in serializers.Serializer.get_fields(self).items()
            if name in names
        }

    return type(
        f"{serializer_class.__name__}Fields", (serializer_class,), {"get_fields": get_fields}
    )


@cache
def _sources(serializer_class: type[serializers.Serializer]) -> frozenset[str]:
    """What the serializer's fields read: "name", "average_rating", "category", ..."""
    return frozenset("__".join(field.source_attrs) for field in serializer_class().fields.values())


@cache
def _plan(serializer_class: type[serializers.Serializer], model: type[Model]) -> _Plan:
    """What the trimmed serializer reads, from fast_serialization's compiled form of it: the
    one description of a serializer's columns the project has."""
    shape = fast_serialization.compiled(serializer_class, model)
    concrete = {f.name for f in model._meta.concrete_fields} | {
        f.attname for f in model._meta.concrete_fields
    }
    # Annotations ("average_rating") are not columns: the selector adds them when needed.
    own = [column for column in shape.columns if column in concrete]
    return _Plan(
        columns=tuple(dict.fromkeys([model._meta.pk.attname, *own])),
        relations=tuple(related.foreign_key.name for related in shape.related),
        joined_columns={
            related.foreign_key.name: related.joined_columns() for related in shape.related
        },
        nested=frozenset(nested.relation.get_accessor_name() for nested in shape.nested),
    )


def _root(lookup: str | Prefetch) -> str:
    path = lookup.prefetch_to if isinstance(lookup, Prefetch) else lookup
    return path.split("__")[0]
