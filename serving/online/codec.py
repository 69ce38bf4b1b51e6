"""The one value serialization both online stores use: compact JSON (orjson) with tags.

A feature value is one of int, float, str, bytes, bool, None, an aware datetime
(UnixTimestamp), or a list of these. JSON carries int, float, str, bool, null and
lists as they are; the three things it cannot carry are written as one-key objects
(feature values are never objects, so any object read back is a tag):

    bytes           {"b": "<base64>"}
    datetime        {"t": <epoch microseconds>}      read back as an aware UTC datetime
    NaN, +/-inf     {"f": "nan" | "inf" | "-inf"}     plain JSON would turn them into null

Round trips are exact: floats are written as the shortest repr that reads back to the
same double (so a Float32 value given as a Python float stays that float), ints up to
the 64-bit range are exact, bools stay bools, 1.0 stays a float. Numpy scalars and
arrays are accepted and stored as their Python values. Ints beyond 64 bits, naive
datetimes and other types raise ValueError at write time.

Timestamps of rows (event, created) are kept as integer epoch microseconds: exact,
comparable in SQL and in Lua (doubles are exact for them until the year 2255).

Arrow columns (materialization writes them) are encoded a column at a time by
`encode_column`: the same bytes as `encode_value` of each value, but numbers and bools
go through one orjson call over the column's numpy buffer (orjson writes numpy
float64 and ints exactly as it writes Python floats and ints) instead of one call per
value, about 40x faster.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME  # datetimes go through `_default`, so they get a tag
_NON_FINITE = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}
_NUMPY = orjson.OPT_SERIALIZE_NUMPY
_TAGGED = (dict, list)  # decoded types that may hold a tag
UTC_MICROS = pa.timestamp("us", tz="UTC")


def to_micros(ts: datetime) -> int:
    """Epoch microseconds of an aware datetime (exact integer arithmetic, no float)."""
    if ts.tzinfo is None or ts.utcoffset() is None:
        raise ValueError(f"timestamp {ts!r} is naive: online stores need timezone-aware (UTC) timestamps")
    return (ts - EPOCH) // _MICROSECOND


def from_micros(micros: int) -> datetime:
    """The aware UTC datetime of epoch microseconds."""
    return EPOCH + timedelta(microseconds=micros)


def _non_finite_tag(value: float) -> dict[str, str]:
    return {"f": "nan" if value != value else ("inf" if value > 0 else "-inf")}


def _needs_prep(value: Any) -> bool:
    """Whether the value needs a look before orjson: a float JSON cannot carry (NaN, inf;
    orjson would silently write null) or a dict (never a feature value: dicts are tags)."""
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, list | tuple):
        return any(
            (isinstance(item, float) and not math.isfinite(item)) or isinstance(item, dict | list | tuple)
            for item in value
        )
    return isinstance(value, dict)


def _prep(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else _non_finite_tag(value)
    if isinstance(value, list | tuple):
        return [_prep(item) for item in value]
    if isinstance(value, dict):
        raise ValueError(f"cannot store {value!r} in the online store: dict is not a feature value type")
    return value


def _default(obj: Any) -> Any:
    """What orjson calls for types it does not serialize itself."""
    if isinstance(obj, bytes | bytearray | memoryview):
        return {"b": base64.b64encode(obj).decode("ascii")}
    if isinstance(obj, datetime):
        return {"t": to_micros(obj)}
    tolist = getattr(obj, "tolist", None)  # numpy scalars and arrays
    if tolist is not None:
        return _prep(tolist())
    raise TypeError(f"{type(obj).__name__} is not a feature value type")


def _dumps(value: Any) -> bytes:
    try:
        return orjson.dumps(value, default=_default, option=_OPTIONS)
    except orjson.JSONEncodeError as exc:
        # orjson keeps `_default`'s own error (naive datetime, unknown type) as the cause.
        raise ValueError(f"cannot store {value!r} in the online store: {exc.__cause__ or exc}") from exc


def encode_value(value: Any) -> bytes:
    """One feature value as bytes (a Redis hash field's value); ValueError when it cannot be stored."""
    if _needs_prep(value):
        value = _prep(value)
    return _dumps(value)


def encode_row(values: Mapping[str, Any]) -> bytes:
    """All features of one row, by name, as one blob (the SQL store's column)."""
    if any(_needs_prep(v) for v in values.values()):
        values = {name: _prep(v) for name, v in values.items()}
    return _dumps(values)


def _untag(value: Any) -> Any:
    if type(value) is dict:
        if "b" in value:
            return base64.b64decode(value["b"])
        if "t" in value:
            return from_micros(value["t"])
        if "f" in value:
            return _NON_FINITE[value["f"]]
        raise ValueError(f"unknown tag in a stored online value: {value!r}")
    if type(value) is list:
        return [_untag(item) if type(item) in (dict, list) else item for item in value]
    return value


def decode_value(data: bytes | str) -> Any:
    """The feature value `encode_value` wrote."""
    value = orjson.loads(data)
    return _untag(value) if type(value) in (dict, list) else value


def decode_rows(rows: Sequence[Sequence[bytes]]) -> list[list[Any]] | None:
    """`[int(r[0]), decode_value(r[1]), ...]` for rows of stored bytes (an epoch-micros
    time, then values), all parsed by one orjson call over `[r0v0,r0v1,...,r1v0,...]`
    instead of one call per value; None when the bytes are not all single JSON
    documents (not written by this codec: the caller decodes value by value, which
    raises on bad bytes). Every row must have the same length and no None."""
    if not rows:
        return []
    width = len(rows[0])
    joined = b",".join([b",".join(row) for row in rows])
    try:
        flat = orjson.loads(b"[" + joined + b"]")
    except orjson.JSONDecodeError:
        return None
    if len(flat) != width * len(rows) or not all(type(ts) is int for ts in flat[::width]):
        return None
    if b"{" in joined or b"[" in joined:  # a tag or a list somewhere: untag those values
        flat = [_untag(v) if type(v) in _TAGGED else v for v in flat]
    return [flat[i : i + width] for i in range(0, len(flat), width)]


def decode_row(data: bytes | memoryview | str, features: list[str]) -> dict[str, Any]:
    """The requested features of a blob `encode_row` wrote; features not in it are left out."""
    stored = orjson.loads(data)
    out = {}
    for name in features:
        if name in stored:
            value = stored[name]
            out[name] = _untag(value) if type(value) in (dict, list) else value
    return out


# -- Arrow columns ------------------------------------------------------------------------


def utc_pylist(column: pa.Array | pa.ChunkedArray) -> list[Any]:
    """Python values of an Arrow column; timestamps as aware UTC datetimes (naive read as UTC)."""
    if pa.types.is_timestamp(column.type):
        if column.type.tz is None:
            column = pc.assume_timezone(column, "UTC")
        column = column.cast(UTC_MICROS)
    return column.to_pylist()


def _vectorised(dtype: pa.DataType) -> bool:
    return pa.types.is_integer(dtype) or pa.types.is_boolean(dtype) or dtype in (pa.float32(), pa.float64())


def encode_column(column: pa.Array | pa.ChunkedArray) -> list[bytes]:
    """`encode_value` of every value of an Arrow column (timestamps as aware UTC), in order.

    Ints, bools, float32 and float64: one orjson call over the numpy values, split at
    the commas (numbers and `true`/`false` hold none), then nulls and non-finite floats
    patched one by one. float32 values are widened to float64 first, exactly as
    `to_pylist` does, so the bytes are those of the per-value path. Other types go
    value by value through `encode_value` (same errors)."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    if not _vectorised(column.type):
        return [encode_value(v) for v in utc_pylist(column)]
    if len(column) == 0:
        return []
    nulls = column.null_count
    filled = column.fill_null(False if pa.types.is_boolean(column.type) else 0) if nulls else column
    values = filled.to_numpy(zero_copy_only=False)
    floats = pa.types.is_floating(column.type)
    if floats:
        with np.errstate(invalid="ignore"):  # a signalling NaN widens to a NaN, as in to_pylist
            values = values.astype(np.float64, copy=False)
        odd = np.flatnonzero(~np.isfinite(values))
    encoded = orjson.dumps(values, option=_NUMPY)[1:-1].split(b",")
    if floats:
        for i in odd.tolist():  # orjson would write null; encode_value writes the tag
            encoded[i] = encode_value(float(values[i]))
    if nulls:
        for i in np.flatnonzero(column.is_null().to_numpy(zero_copy_only=False)).tolist():
            encoded[i] = b"null"
    return encoded


def micros_column(column: pa.Array | pa.ChunkedArray) -> list[int]:
    """Epoch microseconds of a timestamp column (naive read as UTC), as `to_micros` gives
    them; ValueError on a null. Non-timestamp columns go value by value."""
    if column.null_count:
        raise ValueError("a timestamp column holds nulls")
    if not pa.types.is_timestamp(column.type):
        return [to_micros(v) for v in column.to_pylist()]
    if column.type.tz is None:
        column = pc.assume_timezone(column, "UTC")
    return pc.cast(column.cast(UTC_MICROS), pa.int64()).to_numpy(zero_copy_only=False).tolist()


def int_text_column(column: pa.Array | pa.ChunkedArray) -> list[bytes]:
    """The decimal text of every value of an integer column (as `str(int)`); ValueError on a null."""
    if column.null_count:
        raise ValueError("None cannot be an entity key value (ints, strings, bytes or timestamps)")
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    if len(column) == 0:
        return []
    return orjson.dumps(column.to_numpy(zero_copy_only=False), option=_NUMPY)[1:-1].split(b",")
