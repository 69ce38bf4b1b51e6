"""Entity tables: which column is the event time, what the output columns are called,
and the checks every engine relies on (each failure names the column or object).

Shared by `retrieval` (which picks the timestamp column) and by every engine's
`get_historical_features`, so an engine called directly validates the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import pyarrow as pa
import pyarrow.compute as pc

from .base import OfflineInputError
from .specs import JoinPlan, ViewSpec

DEFAULT_TIMESTAMP_COLUMN = "event_timestamp"
UTC_MICROS = pa.timestamp("us", tz="UTC")


def infer_timestamp_column(entity: pa.Table) -> str:
    """`event_timestamp` when present, else the single timestamp-typed column (Feast's rule)."""
    if DEFAULT_TIMESTAMP_COLUMN in entity.column_names:
        return DEFAULT_TIMESTAMP_COLUMN
    candidates = [f.name for f in entity.schema if pa.types.is_timestamp(f.type)]
    if len(candidates) == 1:
        return candidates[0]
    if not candidates:
        raise OfflineInputError(
            f"the entity table has no event timestamp: add an {DEFAULT_TIMESTAMP_COLUMN!r} column "
            f"(columns: {', '.join(entity.column_names) or 'none'})"
        )
    raise OfflineInputError(
        f"the entity table has several timestamp columns ({', '.join(candidates)}): "
        f"name the event time {DEFAULT_TIMESTAMP_COLUMN!r}"
    )


def output_name(view: ViewSpec, feature: str, full_feature_names: bool) -> str:
    return f"{view.display_name}__{feature}" if full_feature_names else feature


def plan_join(
    entity: pa.Table,
    views: Sequence[tuple[ViewSpec, Sequence[str]]],
    full_feature_names: bool,
    timestamp_column: str,
) -> list[JoinPlan]:
    """Check the request against the entity table's columns and name the outputs.

    Errors: duplicate entity columns, missing timestamp column, a view without requested
    features or with an unknown one, a join key missing from the entity table, and two
    outputs (or an output and an entity column) with the same name.
    """
    names = entity.column_names
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise OfflineInputError(f"the entity table has two columns named {name!r}")
        seen.add(name)
    if timestamp_column not in seen:
        raise OfflineInputError(f"the entity table has no event timestamp column {timestamp_column!r}")
    if not views:
        raise OfflineInputError("no features requested")
    plans: list[JoinPlan] = []
    taken: dict[str, str] = {}
    for view, features in views:
        if not features:
            raise OfflineInputError(f"no features requested from feature view {view.name!r}")
        known = set(view.feature_names)
        for feature in features:
            if feature not in known:
                raise OfflineInputError(f"feature view {view.name!r} has no feature {feature!r}")
        for key in view.join_keys:
            if key not in seen:
                raise OfflineInputError(
                    f"the entity table has no column {key!r}, a join key of feature view {view.name!r}"
                )
        outputs = []
        for feature in features:
            out = output_name(view, feature, full_feature_names)
            ref = f"{view.display_name}:{feature}"
            if out in seen:
                raise OfflineInputError(f"feature {ref} is named {out!r} in the output, like an entity table column")
            if out in taken:
                hint = "" if full_feature_names else " (use full_feature_names, or an alias)"
                raise OfflineInputError(f"features {taken[out]} and {ref} are both named {out!r}{hint}")
            taken[out] = ref
            outputs.append(out)
        plans.append(JoinPlan(view=view, features=tuple(features), output_names=tuple(outputs)))
    return plans


def normalize_timestamps(column: pa.ChunkedArray | pa.Array, name: str) -> pa.ChunkedArray | pa.Array:
    """A timestamp column as timestamp[us, UTC]: naive values are UTC, strings are ISO 8601
    (with or without offset), dates are midnight UTC; anything else is an input error."""
    typ = column.type
    try:
        if pa.types.is_timestamp(typ):
            if typ.tz is None:
                column = pc.cast(column, pa.timestamp(typ.unit), safe=False)
                return pc.cast(pc.cast(column, pa.timestamp("us"), safe=False), UTC_MICROS)
            return pc.cast(column, UTC_MICROS, safe=False)
        if pa.types.is_date(typ):
            return pc.cast(pc.cast(column, pa.timestamp("us")), UTC_MICROS)
        if pa.types.is_string(typ) or pa.types.is_large_string(typ):
            try:
                return pc.cast(column, UTC_MICROS)
            except pa.ArrowInvalid:
                try:
                    return pc.cast(pc.cast(column, pa.timestamp("us")), UTC_MICROS)
                except pa.ArrowInvalid:
                    return _parse_mixed(column, name)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise OfflineInputError(f"column {name!r} holds values that are not timestamps: {exc}") from exc
    raise OfflineInputError(f"column {name!r} must hold timestamps, not {typ}")


def _parse_mixed(column: pa.ChunkedArray | pa.Array, name: str) -> pa.Array:
    """ISO 8601 strings, some with an offset and some without (naive = UTC), one by one."""
    values = []
    for text in column.to_pylist():
        if text is None:
            values.append(None)
            continue
        try:
            value = datetime.fromisoformat(text)
        except ValueError as exc:
            raise OfflineInputError(f"column {name!r}: {text!r} is not an ISO 8601 timestamp") from exc
        values.append(value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC))
    return pa.array(values, UTC_MICROS)


def prepare_entity(entity: pa.Table, plans: Sequence[JoinPlan], timestamp_column: str) -> pa.Table:
    """The entity table with its timestamp column as timestamp[us, UTC]; null timestamps
    are an input error (they would silently match nothing)."""
    index = entity.column_names.index(timestamp_column)
    ts = normalize_timestamps(entity.column(index), timestamp_column)
    nulls = ts.null_count
    if nulls:
        raise OfflineInputError(f"the entity column {timestamp_column!r} has {nulls} empty value(s)")
    return entity.set_column(index, pa.field(timestamp_column, UTC_MICROS), ts)
