"""Values in and out of the serving API: JSON request values converted to a field's
dtype (docs/feature-repo.md), and stored values rendered as Feast's feature server
renders them.

In (entity keys, request fields, pushed rows), by dtype:

    Int32, Int64        ints (not bools) in range; floats with no fraction (1001.0)
    Float32, Float64    ints and floats; "NaN", "Infinity", "-Infinity" (Feast's JSON)
    String              strings
    Bytes               base64 strings (bytes as they are, from Parquet)
    Bool                true / false
    UnixTimestamp       RFC 3339 / ISO 8601 strings (no offset: UTC), or epoch seconds
    Array(T)            lists of T (no nulls inside)

null is a null value (a feature) and an error for a join key. Anything else is an
error naming the column and the row.

Out (Feast's `convert_response_to_dict`): native JSON numbers, strings, booleans and
lists; NaN and infinities as "NaN" / "Infinity" / "-Infinity"; bytes as base64;
UnixTimestamp values as integer epoch seconds (Feast's `unix_timestamp_val`);
event timestamps as RFC 3339 in UTC with "Z" and 0, 3 or 6 fractional digits.
"""

from __future__ import annotations

import base64
import binascii
import math
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
EPOCH_TEXT = "1970-01-01T00:00:00Z"
FLOAT32_MAX = 3.4028234663852886e38
_INT_RANGES = {"Int32": (-(2**31), 2**31 - 1), "Int64": (-(2**63), 2**63 - 1)}
_NON_FINITE_IN = {"NaN": math.nan, "nan": math.nan, "Infinity": math.inf, "inf": math.inf}
_NON_FINITE_IN.update({"-Infinity": -math.inf, "-inf": -math.inf})

Converter = Callable[[Any], Any]


class Unconvertible(ValueError):
    """A value that is not of the field's dtype; the message says what was expected."""


def _int(dtype: str) -> Converter:
    low, high = _INT_RANGES[dtype]

    def convert(value: Any) -> int:
        if type(value) is int:
            result = value
        elif (isinstance(value, float) and value.is_integer()) or (
            isinstance(value, int) and not isinstance(value, bool)
        ):
            result = int(value)
        elif hasattr(value, "__index__") and not isinstance(value, bool | str | bytes):
            result = value.__index__()  # numpy integers
        else:
            raise Unconvertible(f"{value!r} is not an {dtype}")
        if not low <= result <= high:
            raise Unconvertible(f"{value!r} is out of the {dtype} range")
        return result

    return convert


def _float(dtype: str) -> Converter:
    def convert(value: Any) -> float:
        if isinstance(value, bool):
            raise Unconvertible(f"{value!r} is not a {dtype}")
        if isinstance(value, float | int):
            result = float(value)
        elif isinstance(value, str) and value in _NON_FINITE_IN:
            return _NON_FINITE_IN[value]
        else:
            try:
                result = float(value) if hasattr(value, "__float__") and not isinstance(value, str) else None
            except (TypeError, ValueError):
                result = None
            if result is None:
                raise Unconvertible(f"{value!r} is not a {dtype}")
        if dtype == "Float32" and math.isfinite(result) and abs(result) > FLOAT32_MAX:
            raise Unconvertible(f"{value!r} is out of the Float32 range")
        return result

    return convert


def _string(value: Any) -> str:
    if isinstance(value, str):
        return value
    raise Unconvertible(f"{value!r} is not a String")


def _bytes(value: Any) -> bytes:
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    if isinstance(value, str):
        try:
            return base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise Unconvertible(f"{value!r} is not base64 (Bytes)") from None
    raise Unconvertible(f"{value!r} is not Bytes (a base64 string)")


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if type(value).__name__ == "bool_":  # numpy
        return bool(value)
    raise Unconvertible(f"{value!r} is not a Bool")


def parse_timestamp(value: Any) -> datetime:
    """An aware UTC datetime from an ISO 8601 string (no offset: UTC), epoch seconds
    (int or float) or a datetime (naive: UTC)."""
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.strip())
        except ValueError:
            raise Unconvertible(f"{value!r} is not an ISO 8601 timestamp") from None
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        try:
            return EPOCH + timedelta(seconds=value)
        except OverflowError:
            raise Unconvertible(f"{value!r} is out of the timestamp range") from None
    raise Unconvertible(f"{value!r} is not a timestamp (ISO 8601 string or epoch seconds)")


_SCALARS: dict[str, Converter] = {
    "Int32": _int("Int32"),
    "Int64": _int("Int64"),
    "Float32": _float("Float32"),
    "Float64": _float("Float64"),
    "String": _string,
    "Bytes": _bytes,
    "Bool": _bool,
    "UnixTimestamp": parse_timestamp,
}


def _array(dtype: str, item: Converter) -> Converter:
    def convert(value: Any) -> list[Any]:
        if not isinstance(value, list | tuple):
            raise Unconvertible(f"{value!r} is not an {dtype} (a list)")
        out = []
        for element in value:
            if element is None:
                raise Unconvertible(f"{dtype} values cannot hold null")
            out.append(item(element))
        return out

    return convert


def converter(dtype: str) -> Converter:
    """The function converting one non-null value to `dtype`; an unknown or empty dtype
    (an entity without a declared value type) accepts ints and strings as given."""
    scalar = _SCALARS.get(dtype)
    if scalar is not None:
        return scalar
    if dtype.startswith("Array(") and dtype.endswith(")") and dtype[6:-1] in _SCALARS:
        return _array(dtype, _SCALARS[dtype[6:-1]])
    return _untyped_key


def _untyped_key(value: Any) -> Any:
    if isinstance(value, int | str) and not isinstance(value, bool):
        return value
    raise Unconvertible(f"{value!r} is not an entity key value (an integer or a string)")


def convert_column(values: Sequence[Any], dtype: str, *, nullable: bool = True) -> list[Any]:
    """Every value converted to `dtype`; raises Unconvertible("[row]: why") at the first bad one."""
    convert = converter(dtype)
    if dtype == "Int64" and all(type(v) is int for v in values):  # the common key column
        low, high = _INT_RANGES["Int64"]
        if all(low <= v <= high for v in values):
            return list(values)
    out = []
    for row, value in enumerate(values):
        if value is None:
            if not nullable:
                raise Unconvertible(f"[{row}]: null is not allowed")
            out.append(None)
            continue
        try:
            out.append(convert(value))
        except Unconvertible as exc:
            raise Unconvertible(f"[{row}]: {exc}") from None
    return out


# -- out --------------------------------------------------------------------------------------


def rfc3339(ts: datetime) -> str:
    """Feast's rendering of a timestamp: UTC, "Z", fractional digits only as needed (3 or 6)."""
    if ts.tzinfo is not None and ts.utcoffset():
        ts = ts.astimezone(UTC)
    base = f"{ts.year:04d}-{ts.month:02d}-{ts.day:02d}T{ts.hour:02d}:{ts.minute:02d}:{ts.second:02d}"
    micros = ts.microsecond
    if not micros:
        return base + "Z"
    if micros % 1000 == 0:
        return f"{base}.{micros // 1000:03d}Z"
    return f"{base}.{micros:06d}Z"


def _render(value: Any) -> Any:
    kind = type(value)
    if kind is int or kind is str or kind is bool or value is None:
        return value
    if kind is float:
        if math.isfinite(value):
            return value
        return "NaN" if value != value else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, list | tuple):
        return [_render(v) for v in value]
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, datetime):
        aware = value if value.tzinfo else value.replace(tzinfo=UTC)
        return (aware - EPOCH) // timedelta(seconds=1)
    tolist = getattr(value, "tolist", None)  # numpy scalars and arrays from python-mode views
    if tolist is not None:
        return _render(tolist())
    return value


def render_column(values: list[Any], dtype: str) -> list[Any]:
    """Values of one response column as JSON natives (see module docstring)."""
    if dtype in ("Int64", "Int32", "String", "Bool"):
        return values  # stored values of these types are JSON natives already
    return [_render(v) for v in values]
