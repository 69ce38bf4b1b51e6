"""Arrow batches for the online stores: what materialization hands them.

A batch has one column per join key of the view, one per feature, the event time
(`event_timestamp`) and optionally the created time (`created`): the columns of the
offline engines' `pull_latest`. `OnlineStore.write_arrow` takes it as is, so a store
can encode whole columns at once (the Redis store does); `to_online_rows` is the
row-wise form every store understands, the default `write_arrow`.
"""

from __future__ import annotations

from collections.abc import Sequence

import pyarrow as pa

from serving.offline.base import CREATED_TIMESTAMP, EVENT_TIMESTAMP

from .base import OnlineRows, ViewKey
from .codec import micros_column, utc_pylist

__all__ = ["CREATED_TIMESTAMP", "EVENT_TIMESTAMP", "check_columns", "event_micros", "to_online_rows"]


def check_columns(batch: pa.RecordBatch | pa.Table, view: ViewKey, features: Sequence[str]) -> None:
    """ValueError naming the columns a batch lacks (join keys, features, event time)."""
    names = set(batch.schema.names)
    missing = [n for n in (*view.join_keys, *features, EVENT_TIMESTAMP) if n not in names]
    if missing:
        raise ValueError(f"feature view {view.name!r}: the offline engine returned no column(s) {missing}")


def _null_events(view: ViewKey) -> ValueError:
    return ValueError(f"feature view {view.name!r}: rows without an event timestamp cannot be materialized")


def event_micros(batch: pa.RecordBatch | pa.Table, view: ViewKey) -> list[int]:
    """The event times of a batch as epoch microseconds (naive read as UTC)."""
    column = batch.column(EVENT_TIMESTAMP)
    if column.null_count:
        raise _null_events(view)
    return micros_column(column)


def to_online_rows(batch: pa.RecordBatch | pa.Table, view: ViewKey, features: Sequence[str]) -> OnlineRows:
    """A batch as OnlineRows (join keys, features, event and, when the batch has one and
    it is never null, created timestamps; timestamps as aware UTC datetimes)."""
    check_columns(batch, view, features)
    entity_keys = {key: batch.column(key).to_pylist() for key in view.join_keys}
    values = {name: utc_pylist(batch.column(name)) for name in features}
    events = utc_pylist(batch.column(EVENT_TIMESTAMP))
    if any(ts is None for ts in events):
        raise _null_events(view)
    created = None
    if CREATED_TIMESTAMP in batch.schema.names:
        column = batch.column(CREATED_TIMESTAMP)
        if column.null_count == 0 and pa.types.is_timestamp(column.type):
            created = utc_pylist(column)
    if not view.join_keys:  # an entity-less view: one row under the dummy key
        entity_keys = [{} for _ in events]
    return OnlineRows(entity_keys=entity_keys, features=values, event_timestamps=events, created_timestamps=created)
