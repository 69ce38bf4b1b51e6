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
"""

from __future__ import annotations

import base64
import math
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME  # datetimes go through `_default`, so they get a tag
_NON_FINITE = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


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


def decode_row(data: bytes | memoryview | str, features: list[str]) -> dict[str, Any]:
    """The requested features of a blob `encode_row` wrote; features not in it are left out."""
    stored = orjson.loads(data)
    out = {}
    for name in features:
        if name in stored:
            value = stored[name]
            out[name] = _untag(value) if type(value) in (dict, list) else value
    return out
