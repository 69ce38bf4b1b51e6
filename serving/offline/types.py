"""Feast dtypes (`Float32`, `Array(String)`) as Arrow types, for columns an engine has to
make up: features of a view whose source holds no rows yet."""

from __future__ import annotations

import pyarrow as pa

SCALARS: dict[str, pa.DataType] = {
    "Int32": pa.int32(),
    "Int64": pa.int64(),
    "Float32": pa.float32(),
    "Float64": pa.float64(),
    "String": pa.string(),
    "Bytes": pa.binary(),
    "Bool": pa.bool_(),
    "UnixTimestamp": pa.timestamp("us", tz="UTC"),
}


def arrow_type(dtype: str) -> pa.DataType:
    """The Arrow type of a Feast dtype; unknown dtypes read as strings."""
    if dtype.startswith("Array(") and dtype.endswith(")"):
        return pa.list_(arrow_type(dtype[6:-1]))
    return SCALARS.get(dtype, pa.string())


def quote(identifier: str) -> str:
    """A SQL identifier in double quotes (DuckDB and PostgreSQL rules)."""
    return '"' + identifier.replace('"', '""') + '"'
