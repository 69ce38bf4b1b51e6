"""Result formats of historical retrieval: chosen by `format` (query or body) or the
Accept header, written from Arrow.

| format    | media type                            | notes |
| --------- | ------------------------------------- | ----- |
| `parquet` | application/vnd.apache.parquet        | the lossless default of the Python client |
| `arrow`   | application/vnd.apache.arrow.stream   | Arrow IPC stream, lossless |
| `csv`     | text/csv                              | header row; timestamps ISO 8601 UTC; lists as JSON |
| `json`    | application/json                      | columnar, below |

JSON is columnar, `{"columns": {name: [values]}}`, the shape of the request's
`entities`; timestamps RFC 3339 in UTC with Z, NaN and infinities as null, bytes base64.

Without `format` and without a recognised Accept type the answer is JSON.
"""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.ipc as ipc
import pyarrow.parquet as pq
from rest_framework.request import Request

from access.api_errors import RequestValidationError

MEDIA_TYPES = {
    "parquet": "application/vnd.apache.parquet",
    "arrow": "application/vnd.apache.arrow.stream",
    "csv": "text/csv",
    "json": "application/json",
}
# Accept types understood besides the canonical ones.
ACCEPT_ALIASES = {
    "application/x-parquet": "parquet",
    "application/parquet": "parquet",
    "application/vnd.apache.arrow.file": "arrow",
    "application/x-arrow": "arrow",
    "text/plain": "csv",
}
EXTENSIONS = {"parquet": "parquet", "arrow": "arrows", "csv": "csv", "json": "json"}
DEFAULT_FORMAT = "json"
BATCH_ROWS = 65_536


def check_format(value: str, location: str = "query") -> str:
    name = value.strip().lower()
    if name not in MEDIA_TYPES:
        raise RequestValidationError.invalid(
            location, "format", f"format must be one of {', '.join(MEDIA_TYPES)}, not {value!r}"
        )
    return name


def format_from_accept(accept: str) -> str | None:
    """The first format the Accept header names, by quality then order (None: no preference)."""
    choices: list[tuple[float, int, str]] = []
    for index, part in enumerate(accept.split(",")):
        media, *params = [p.strip() for p in part.split(";")]
        quality = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        name = next((k for k, v in MEDIA_TYPES.items() if v == media.lower()), None) or ACCEPT_ALIASES.get(
            media.lower()
        )
        if name and quality > 0:
            choices.append((-quality, index, name))
    return min(choices)[2] if choices else None


def format_from_request(request: Request, body_value: Any = None, default: str = DEFAULT_FORMAT) -> str:
    """`?format=`, else the body's `format`, else the Accept header, else `default`."""
    query_value = request.query_params.get("format")
    if query_value:
        return check_format(query_value, "query")
    if body_value:
        if not isinstance(body_value, str):
            raise RequestValidationError.invalid("body", "format", "format must be a string")
        return check_format(body_value, "body")
    return format_from_accept(request.headers.get("Accept", "")) or default


# -- writing ---------------------------------------------------------------------------


def _json_default(value: Any) -> Any:
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode()
    return str(value)  # Decimal, time, ...


def _plain(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """Durations and decimals as strings (orjson takes neither); Float32 through its
    shortest text, so 0.1 stays 0.1 rather than 0.10000000149011612."""
    if pa.types.is_duration(column.type) or pa.types.is_decimal(column.type):
        return column.cast(pa.string())
    if pa.types.is_float32(column.type):
        return column.cast(pa.string()).cast(pa.float64())
    return column


def json_bytes(table: pa.Table) -> bytes:
    """`{"columns": {name: [values]}}`: timestamps RFC 3339 with Z, NaN/inf as null."""
    columns = {name: _plain(table.column(name)).to_pylist() for name in table.column_names}
    return orjson.dumps({"columns": columns}, option=orjson.OPT_UTC_Z | orjson.OPT_NAIVE_UTC, default=_json_default)


def _csv_ready(table: pa.Table) -> pa.Table:
    """CSV takes no nested or binary values: lists and structs as JSON text, bytes as base64."""
    for index, fld in enumerate(table.schema):
        typ = fld.type
        binary = pa.types.is_binary(typ) or pa.types.is_large_binary(typ)
        if not (binary or pa.types.is_nested(typ)):
            continue
        encode = _json_default if binary else (lambda v: json.dumps(v, default=_json_default))
        values = [None if v is None else encode(v) for v in table.column(index).to_pylist()]
        table = table.set_column(index, pa.field(fld.name, pa.string()), pa.array(values, pa.string()))
    return table


def table_bytes(table: pa.Table, fmt: str) -> bytes:
    """The whole table in one format (synchronous answers)."""
    if fmt == "json":
        return json_bytes(table)
    sink = io.BytesIO()
    if fmt == "parquet":
        pq.write_table(table, sink)
    elif fmt == "arrow":
        with ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table, max_chunksize=BATCH_ROWS)
    elif fmt == "csv":
        pacsv.write_csv(_csv_ready(table), sink)
    else:
        raise ValueError(f"unknown format {fmt!r}")
    return sink.getvalue()


class _Sink(io.RawIOBase):
    """A write-only file that hands each write to a generator (streamed downloads)."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self.parts.append(bytes(data))
        return len(data)

    def drain(self) -> bytes:
        out, self.parts = b"".join(self.parts), []
        return out


def parquet_file_chunks(path: Path, fmt: str) -> Iterator[bytes]:
    """A stored Parquet result in another format, batch by batch (memory stays bounded,
    except JSON, which is columnar and so built whole)."""
    source = pq.ParquetFile(path)
    if fmt == "json":
        yield json_bytes(source.read())
        return
    sink = _Sink()
    batches: Iterable[pa.RecordBatch] = source.iter_batches(batch_size=BATCH_ROWS)
    if fmt == "arrow":
        with ipc.new_stream(sink, source.schema_arrow) as writer:
            for batch in batches:
                writer.write_batch(batch)
                yield sink.drain()
    elif fmt == "csv":
        first = True
        for batch in batches:
            table = _csv_ready(pa.Table.from_batches([batch]))
            options = pacsv.WriteOptions(include_header=first)
            pacsv.write_csv(table, sink, write_options=options)
            first = False
            yield sink.drain()
        if first:  # no rows: still the header
            pacsv.write_csv(_csv_ready(source.schema_arrow.empty_table()), sink)
    else:
        raise ValueError(f"unknown format {fmt!r}")
    yield sink.drain()
