"""What the API's schema says beyond what DRF and drf-spectacular infer: component names for
nested serializers, and limits that something other than the field checks."""

import drf_spectacular.openapi
from django.conf import settings
from django.core import validators


class AutoSchema(drf_spectacular.openapi.AutoSchema):
    """Name schema components after the view that owns a nested serializer.

    Views keep their serializers inside them (`ProductDetailApi.OutputSerializer`), so plain
    class names collide; `ProductDetailOutput` and `OrderDetailOutputPayment` do not.
    """

    def _get_serializer_name(self, serializer, direction, bypass_extensions=False):
        name = super()._get_serializer_name(serializer, direction, bypass_extensions)
        cls = serializer if isinstance(serializer, type) else type(serializer)
        parts = cls.__qualname__.split(".")
        # A PATCH body's component is "Patched" + the name (every field optional).
        patched = (
            "Patched"
            if name.startswith("Patched") and not cls.__name__.startswith("Patched")
            else ""
        )
        if len(parts) > 1 and name.removeprefix(patched) == cls.__name__.removesuffix("Serializer"):
            name = patched + "".join(
                part.removesuffix("Serializer").removesuffix("Api") for part in parts
            )
        return name


class Stated:
    """A limit the schema states and something else checks.

    drf-spectacular writes a field's Min/MaxValue and Min/MaxLength validators into the schema
    (`minimum`, `maxItems`...), but not the `max_length` of a list of serializers, which DRF
    checks itself. These carry the limit (or the setting's value) when the schema is built, and
    check nothing themselves. An order's lines are checked by `orders.services.lines_validate`,
    for every caller (the API, the bench, the seed) and with every bad line reported at once;
    a product import's size by DRF's list serializer.
    """

    def __init__(self, limit: int | str) -> None:
        self._limit = limit  # a number, or the name of the setting that holds it

    @property
    def limit_value(self) -> int:
        return getattr(settings, self._limit) if isinstance(self._limit, str) else self._limit

    def __call__(self, value) -> None:
        pass


class StatedMinValue(Stated, validators.MinValueValidator):
    pass


class StatedMaxValue(Stated, validators.MaxValueValidator):
    pass


class StatedMinLength(Stated, validators.MinLengthValidator):
    pass


class StatedMaxLength(Stated, validators.MaxLengthValidator):
    pass
