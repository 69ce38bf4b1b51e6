"""From names (features, join keys) to a source's columns, and back for writes.

Both engines resolve the same way, so a missing column reads the same whatever the
source kind: `data source 'x' has no column 'y' (feature 'y' of feature view 'v')`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from .base import OfflineInputError
from .entity import normalize_timestamps
from .specs import SourceSpec, ViewSpec


@dataclass(frozen=True, slots=True)
class SourceColumns:
    """The source columns one read needs: join keys and features in the given order."""

    timestamp: str
    created: str | None
    keys: tuple[str, ...]
    features: tuple[str, ...]


def is_time_type(type_name: str) -> bool:
    return type_name.startswith(("timestamp", "date"))


def resolve_columns(view: ViewSpec, features: Sequence[str], available: Mapping[str, str]) -> SourceColumns:
    """Map a view's join keys and `features` to source columns, checking each exists in
    `available` (column -> Arrow type string) and that the time columns hold times."""
    source = view.source
    if not source.timestamp_field:
        raise OfflineInputError(f"data source {source.name!r} has no timestamp_field")

    def need(column: str, what: str) -> str:
        if column not in available:
            raise OfflineInputError(f"data source {source.name!r} has no column {column!r} ({what})")
        return column

    ts = need(source.timestamp_field, f"the timestamp field of feature view {view.name!r}")
    created = None
    if source.created_timestamp_column:
        created = need(source.created_timestamp_column, "its created_timestamp_column")
    for column, role in ((ts, "timestamp_field"), (created, "created_timestamp_column")):
        if column is not None and not is_time_type(available[column]):
            raise OfflineInputError(
                f"data source {source.name!r}: {role} column {column!r} holds {available[column]}, not timestamps"
            )
    keys = tuple(need(source.column_for(k), f"join key {k!r} of feature view {view.name!r}") for k in view.join_keys)
    cols = tuple(need(source.column_for(f), f"feature {f!r} of feature view {view.name!r}") for f in features)
    return SourceColumns(timestamp=ts, created=created, keys=keys, features=cols)


def rows_for_source(source: SourceSpec, rows: pa.Table, target: pa.Schema | None) -> pa.Table:
    """`rows` renamed to source columns (field mapping reversed) and cast to `target`, the
    source's schema (None: the source is empty, keep the rows' own types, timestamps
    as UTC). Columns the rows lack are null; a column the source lacks is an error, and so
    is a missing timestamp column or a value that does not fit its column's type."""
    names = []
    for name in rows.column_names:
        column = name if target is not None and name in target.names else source.column_for(name)
        if column in names:
            raise OfflineInputError(f"rows carry column {column!r} twice (once under a mapped name)")
        names.append(column)
    rows = rows.rename_columns(names)
    if source.timestamp_field not in names:
        raise OfflineInputError(f"rows for data source {source.name!r} have no {source.timestamp_field!r} column")
    if rows.column(source.timestamp_field).null_count:
        raise OfflineInputError(f"rows for data source {source.name!r} have empty {source.timestamp_field!r} values")
    time_columns = {source.timestamp_field, source.created_timestamp_column} - {""}
    if target is None:
        for column in time_columns & set(names):
            i = names.index(column)
            rows = rows.set_column(i, column, normalize_timestamps(rows.column(i), column))
        return rows
    unknown = [n for n in names if n not in target.names]
    if unknown:
        raise OfflineInputError(f"data source {source.name!r} has no column {unknown[0]!r}")
    arrays = []
    for field in target:
        if field.name not in names:
            arrays.append(pa.nulls(rows.num_rows, field.type))
            continue
        column = rows.column(field.name)
        try:
            if pa.types.is_timestamp(field.type) and (
                field.name in time_columns or pa.types.is_timestamp(column.type) or pa.types.is_string(column.type)
            ):
                column = normalize_timestamps(column, field.name)
                if field.type.tz is None:
                    column = pc.cast(column, pa.timestamp("us"))
            arrays.append(pc.cast(column, field.type))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as exc:
            raise OfflineInputError(
                f"column {field.name!r} of data source {source.name!r} holds {field.type}: "
                f"cannot store the given {column.type} values ({exc})"
            ) from exc
    return pa.Table.from_arrays(arrays, schema=target)


def cast_join_key(column: pa.ChunkedArray, target: pa.DataType, key: str, view: ViewSpec) -> pa.ChunkedArray:
    """An entity join key column in the source column's type, so keys compare as values
    (JSON integers arrive as int64, a source may hold int32; "7" is not 7)."""
    if column.type == target:
        return column
    try:
        return pc.cast(column, target)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as exc:
        raise OfflineInputError(
            f"join key {key!r}: the entity table's {column.type} values do not fit the {target} column "
            f"of data source {view.source.name!r}"
        ) from exc
