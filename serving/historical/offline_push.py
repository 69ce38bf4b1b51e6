"""Offline push (/push with `to: offline` or `online_and_offline`): rows appended to the
push source's batch source, so later training sets and materializations see them.

The rows are the ones serving.ingest already validated for every view the source feeds
(join keys, the timestamp, every feature, each converted to its dtype), written once
through the offline engine of the batch source (`write`: a new Parquet file written
atomically under the source's folder; one transaction for PostgreSQL): all or nothing.

`online_and_offline` writes offline first: a failure there leaves both stores untouched.
If the online write then fails, the offline rows stay (they cannot be taken back from a
PostgreSQL table someone may already read), and the answer says exactly that
(PartialPush, docs/api.md): push again with `"to": "online"` to complete it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from catalog.models import DataSource
from serving.errors import InvalidRequest, ServingError
from serving.offline.base import OfflineEngineError, OfflineInputError
from serving.offline.entity import UTC_MICROS
from serving.offline.registry import engine_for
from serving.offline.specs import SourceSpec, source_spec
from serving.online import OnlineRows
from serving.registry_cache import FeatureViewMeta

from .entities import arrow_type


class OfflineWriteFailed(ServingError):
    """The offline engine could not append the rows; nothing was written anywhere."""

    status_code = 502


class PartialPush(ServingError):
    """online_and_offline: the offline rows were written, the online write failed."""

    status_code = 500


@dataclass(frozen=True)
class OfflineBatch:
    source: SourceSpec
    rows: pa.Table


def _column(values: list[Any], dtype: str) -> pa.Array:
    typ = arrow_type(dtype)
    return pa.array(values, typ) if typ is not None else pa.array(values)


def batch_for(
    project_id: int, push_source: str, prepared: Sequence[tuple[FeatureViewMeta, OnlineRows]]
) -> OfflineBatch:
    """One table for the batch source: the join keys and features of every view the push
    source feeds (under the views' names; the engine maps them to source columns), the
    event timestamp, and the created timestamp when it was sent."""
    row = DataSource.objects.select_related("batch_source").get(project_id=project_id, name=push_source)
    try:
        spec = source_spec(row)
    except OfflineInputError as exc:
        raise InvalidRequest(f"to: {exc}") from exc
    columns: dict[str, pa.Array] = {}
    rows = prepared[0][1]  # every view got the same rows: their timestamps are the same
    for view, view_rows in prepared:
        for key in view.join_keys:
            if key not in columns:
                columns[key] = _column(view_rows.entity_keys[key], view.join_key_dtypes.get(key, ""))
        for feature, dtype in view.features.items():
            if feature not in columns:
                columns[feature] = _column(view_rows.features[feature], dtype)
    columns[spec.name_for(spec.timestamp_field)] = pa.array(rows.event_timestamps, UTC_MICROS)
    if spec.created_timestamp_column and rows.created_timestamps is not None:
        columns[spec.name_for(spec.created_timestamp_column)] = pa.array(rows.created_timestamps, UTC_MICROS)
    return OfflineBatch(spec, pa.table(columns))


def write(batch: OfflineBatch) -> int:
    """Append the batch (all or nothing); InvalidRequest (422) for rows the source cannot
    take, OfflineWriteFailed (502) when the engine fails."""
    try:
        return engine_for(batch.source).write(batch.source, batch.rows)
    except OfflineInputError as exc:
        raise InvalidRequest(f"df: {exc} (nothing was written)") from exc
    except OfflineEngineError as exc:
        raise OfflineWriteFailed(f"offline store: {exc} (nothing was written)") from exc


def partial(batch: OfflineBatch, written: int, exc: Exception) -> PartialPush:
    reason = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    return PartialPush(
        f"to: online_and_offline: offline written ({written} rows appended to data source "
        f"{batch.source.name!r}); online failed: {reason}. Push the same rows again with "
        '"to": "online" to complete it (not "online_and_offline": the offline rows would be added twice).'
    )
