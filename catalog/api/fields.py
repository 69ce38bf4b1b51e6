"""Protobuf-JSON scalars, as Feast's REST server prints them (MessageToDict):
timestamps RFC 3339 in UTC with `Z`, durations as seconds with an `s` suffix, value
types by their enum names."""

from datetime import UTC, datetime, timedelta
from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from catalog.models.types import value_type_name


def proto_timestamp(value: datetime | None) -> str | None:
    """`2024-05-01T12:00:00Z`, with 3 or 6 fractional digits only when needed (as protobuf)."""
    if value is None:
        return None
    value = value.astimezone(UTC)
    text = value.strftime("%Y-%m-%dT%H:%M:%S")
    if value.microsecond:
        fraction = f"{value.microsecond:06d}"
        text += "." + (fraction[:3] if fraction.endswith("000") else fraction)
    return text + "Z"


def proto_duration(value: timedelta | None) -> str:
    """`86400s`, `1.500s`: protobuf's Duration JSON (0 means unlimited TTL in Feast)."""
    if value is None:
        return "0s"
    micros = value // timedelta(microseconds=1)
    seconds, rest = divmod(micros, 1_000_000)
    if not rest:
        return f"{seconds}s"
    fraction = f"{rest:06d}"
    return f"{seconds}.{fraction[:3] if fraction.endswith('000') else fraction}s"


@extend_schema_field({"type": "string", "format": "date-time", "example": "2024-05-01T12:00:00Z"})
class TimestampField(serializers.Field):
    def __init__(self, **kwargs: Any):
        kwargs.setdefault("read_only", True)
        super().__init__(**kwargs)

    def to_representation(self, value: datetime | None) -> str | None:
        return proto_timestamp(value)


@extend_schema_field({"type": "string", "example": "86400s", "description": "seconds, protobuf Duration JSON"})
class DurationField(serializers.Field):
    def __init__(self, **kwargs: Any):
        kwargs.setdefault("read_only", True)
        super().__init__(**kwargs)

    def to_representation(self, value: timedelta | None) -> str:
        return proto_duration(value)


@extend_schema_field({"type": "string", "example": "INT64", "description": "Feast ValueType enum name"})
class ValueTypeField(serializers.Field):
    """A dtype string (`Float32`) shown as Feast's ValueType name (`FLOAT`)."""

    def __init__(self, **kwargs: Any):
        kwargs.setdefault("read_only", True)
        super().__init__(**kwargs)

    def to_representation(self, value: str) -> str:
        return value_type_name(value or "")


def tags_field(**kwargs: Any) -> serializers.DictField:
    """Feast tags: a string-to-string map."""
    return serializers.DictField(child=serializers.CharField(), read_only=True, **kwargs)


class ComputedField(serializers.Field):
    """An optional key computed from the whole object by the parent's `method_name`.

    Unlike SerializerMethodField (read-only, hence "required" in the OpenAPI schema),
    this one is documented as optional: the parent drops it when it does not apply."""

    def __init__(self, method_name: str, schema: Any, **kwargs: Any):
        kwargs["source"] = "*"
        kwargs.setdefault("required", False)
        super().__init__(**kwargs)
        self.method_name = method_name
        extend_schema_field(schema)(self)

    def to_representation(self, value: Any) -> Any:
        return getattr(self.parent, self.method_name)(value)
