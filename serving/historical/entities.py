"""Entity rows in: JSON columns or an uploaded Parquet/CSV file, as an Arrow table.

JSON has no timestamp type, so `event_timestamp` (and, when there is no such column,
every column whose values all look like ISO 8601 date-times) is parsed from ISO 8601
strings, naive meaning UTC. Join keys and the request fields of on-demand views are
converted to their declared dtypes (serving.convert), so `"1001"` for an Int64 key is
refused naming the column, rather than matching nothing. Files carry their own types.
"""

from __future__ import annotations

import io
import re
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from django.core.files.uploadedfile import UploadedFile

from serving.convert import Unconvertible, convert_column, parse_timestamp
from serving.offline.base import OfflineInputError
from serving.offline.entity import DEFAULT_TIMESTAMP_COLUMN, UTC_MICROS

# dtypes (docs/feature-repo.md) -> Arrow types for converted JSON columns.
ARROW_TYPES: dict[str, pa.DataType] = {
    "Int32": pa.int32(),
    "Int64": pa.int64(),
    "Float32": pa.float32(),
    "Float64": pa.float64(),
    "String": pa.string(),
    "Bytes": pa.binary(),
    "Bool": pa.bool_(),
    "UnixTimestamp": UTC_MICROS,
}
ARROW_TYPES.update({f"Array({k})": pa.list_(v) for k, v in list(ARROW_TYPES.items())})
_DATETIME_TEXT = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")
PARQUET_MAGIC = b"PAR1"


def arrow_type(dtype: str) -> pa.DataType | None:
    return ARROW_TYPES.get(dtype)


def _timestamps(column: str, values: list[Any]) -> pa.Array:
    out = []
    for row, value in enumerate(values):
        if value is None:
            out.append(None)
            continue
        if not isinstance(value, str):
            raise OfflineInputError(
                f"entities column {column!r}, row {row}: {value!r} is not an ISO 8601 timestamp string"
            )
        try:
            out.append(parse_timestamp(value))
        except Unconvertible as exc:
            raise OfflineInputError(f"entities column {column!r}, row {row}: {exc}") from exc
    return pa.array(out, UTC_MICROS)


def _looks_like_datetimes(values: list[Any]) -> bool:
    present = [v for v in values if v is not None]
    return bool(present) and all(isinstance(v, str) and _DATETIME_TEXT.match(v) for v in present)


def table_from_columns(columns: dict[str, list[Any]], dtypes: dict[str, str]) -> pa.Table:
    """JSON columns as a table; `dtypes` gives the declared type of join keys and request
    fields. Errors (OfflineInputError, a 422) name the column and the row."""
    timestamp_columns = (
        {DEFAULT_TIMESTAMP_COLUMN}
        if DEFAULT_TIMESTAMP_COLUMN in columns
        else {name for name, values in columns.items() if _looks_like_datetimes(values)}
    )
    arrays: dict[str, pa.Array] = {}
    for name, values in columns.items():
        if name in timestamp_columns:
            arrays[name] = _timestamps(name, values)
            continue
        dtype = dtypes.get(name, "")
        typ = arrow_type(dtype)
        if typ is not None:
            try:
                converted = convert_column(values, dtype)
            except Unconvertible as exc:
                raise OfflineInputError(f"entities column {name!r}: {exc}") from exc
            except ValueError as exc:
                raise OfflineInputError(f"entities column {name!r}: {exc}") from exc
            arrays[name] = pa.array(converted, typ)
            continue
        try:
            arrays[name] = pa.array(values)
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError) as exc:
            raise OfflineInputError(f"entities column {name!r} mixes value types: {exc}") from exc
    return pa.table(arrays)


def table_from_upload(upload: UploadedFile) -> pa.Table:
    """A Parquet file (by its magic bytes or a .parquet name) or a CSV file with a header
    row (types inferred; ISO 8601 timestamps become timestamps)."""
    head = upload.read(4096)
    upload.seek(0)
    name = (upload.name or "").lower()
    # Large uploads are on disk already (Django's temporary file): read them from there.
    source = upload.temporary_file_path() if hasattr(upload, "temporary_file_path") else io.BytesIO(upload.read())
    try:
        if head[:4] == PARQUET_MAGIC or name.endswith((".parquet", ".pq")):
            return pq.read_table(source)
        if name.endswith((".csv", ".txt")) or (upload.content_type or "").startswith("text/") or b"," in head:
            return pacsv.read_csv(source)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OSError) as exc:
        raise OfflineInputError(f"entity_file {upload.name!r} could not be read: {exc}") from exc
    raise OfflineInputError(f"entity_file {upload.name!r} is neither a Parquet nor a CSV file")
