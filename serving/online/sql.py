"""The `sql` online store: a table in the registry database (the embedded default).

Layout (serving.models.OnlineStoreRow, table `serving_online_row`): one row per
(project, view_name, entity_key), holding all features of the row as one blob
(`feature_data`, serving.online.codec), `event_ts` and `created_ts` as epoch
microseconds. The primary key (entity_key, project, view_name) is the only index:
reads and upserts use it; count and delete_view scan (see the model for why).
Entity keys are canonical strings (serving.online.keys).

Writes: the batch's latest row per entity, sorted by key (concurrent writers lock in
one order), upserted in chunks inside one transaction:

    INSERT ... ON CONFLICT (project, view_name, entity_key) DO UPDATE SET ...
    WHERE excluded.event_ts > serving_online_row.event_ts

so latest-wins holds in the database even between concurrent writers. PostgreSQL gets
the chunk as arrays (`SELECT ... FROM unnest(...)`, six parameters whatever the chunk
size); SQLite as multi-row VALUES. Reads: one SELECT per chunk of distinct keys
(`entity_key = ANY(array)` on PostgreSQL, `IN (...)` on SQLite). Raw SQL through
Django's connection (same transactions, same query capture in tests), no ORM per call.
"""

# ruff: noqa: S608 - statements are built from this module's constants; values are always parameters

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, Self

from django.db import DatabaseError, InterfaceError, OperationalError, connections, transaction

from .base import OnlineRow, OnlineRows, OnlineStore, OnlineStoreError, OnlineStoreUnavailable, ViewKey, WriteResult
from .codec import decode_row, encode_row, from_micros, to_micros
from .keys import encode_entity_key, encode_entity_keys, latest_per_entity

TABLE = "serving_online_row"
_CONFLICT = (
    " ON CONFLICT (project, view_name, entity_key) DO UPDATE SET"
    " feature_data = excluded.feature_data, event_ts = excluded.event_ts, created_ts = excluded.created_ts"
    f" WHERE excluded.event_ts > {TABLE}.event_ts"
)
_INSERT = f"INSERT INTO {TABLE} (project, view_name, entity_key, feature_data, event_ts, created_ts)"
# PostgreSQL: a chunk is four arrays, so the statement text (and its parsing) is fixed.
_PG_UPSERT = (
    f"{_INSERT} SELECT %s, %s, k, d, e, c"
    " FROM unnest(%s::text[], %s::bytea[], %s::bigint[], %s::bigint[]) AS u(k, d, e, c)" + _CONFLICT
)
_SELECT = f"SELECT entity_key, event_ts, feature_data FROM {TABLE} WHERE project = %s AND view_name = %s"
_PG_SELECT = _SELECT + " AND entity_key = ANY(%s::text[])"


def _chunks(items: list, size: int) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


@contextmanager
def _db_errors(store: SqlOnlineStore) -> Iterator[None]:
    """Database exceptions as the store's own (the serving layer handles one family)."""
    try:
        yield
    except (OperationalError, InterfaceError) as exc:
        raise OnlineStoreUnavailable(f"online store {store.describe()} is unavailable: {exc}") from exc
    except DatabaseError as exc:
        raise OnlineStoreError(f"online store {store.describe()} failed: {exc}") from exc


class SqlOnlineStore(OnlineStore):
    """Latest feature rows in a table of a Django database (`using`, default the registry's)."""

    type_name = "sql"

    def __init__(self, using: str = "default", chunk_size: int = 500) -> None:
        self.using = using
        self.chunk_size = chunk_size  # rows per statement (SQLite: 6 parameters each, under its 32,766)

    @classmethod
    def from_settings(cls) -> Self:
        return cls()

    def describe(self) -> str:
        return f"sql ({connections[self.using].vendor} database {self.using!r})"

    def write_batch(self, view: ViewKey, rows: OnlineRows) -> WriteResult:
        if not len(rows):
            return WriteResult(0, 0)
        keys = encode_entity_keys(view.join_keys, rows.entity_keys)
        events = [to_micros(ts) for ts in rows.event_timestamps]
        created = None if rows.created_timestamps is None else [to_micros(ts) for ts in rows.created_timestamps]
        keep = latest_per_entity(keys, events, by_key=True)
        columns = list(rows.features.items())
        # Everything is encoded before the first statement: a bad value writes nothing.
        blobs = [encode_row({name: values[i] for name, values in columns}) for i in keep]
        keys = [keys[i] for i in keep]
        events = [events[i] for i in keep]
        created = [None] * len(keep) if created is None else [created[i] for i in keep]

        connection = connections[self.using]
        written = 0
        with _db_errors(self), transaction.atomic(using=self.using), connection.cursor() as cursor:
            for start in range(0, len(keys), self.chunk_size):
                part = slice(start, start + self.chunk_size)
                if connection.vendor == "postgresql":
                    params = [view.project, view.name, keys[part], blobs[part], events[part], created[part]]
                    cursor.execute(_PG_UPSERT, params)
                else:
                    chunk = list(zip(keys[part], blobs[part], events[part], created[part], strict=True))
                    values = ", ".join(["(%s, %s, %s, %s, %s, %s)"] * len(chunk))
                    flat = [value for row in chunk for value in (view.project, view.name, *row)]
                    cursor.execute(f"{_INSERT} VALUES {values}{_CONFLICT}", flat)
                written += cursor.rowcount
        return WriteResult(written, len(rows) - written)

    def read(
        self, view: ViewKey, entity_keys: Sequence[Mapping[str, Any]], features: Sequence[str]
    ) -> list[OnlineRow | None]:
        keys = [encode_entity_key(view.join_keys, entity) for entity in entity_keys]
        distinct = list(dict.fromkeys(keys))
        wanted = list(features)
        found: dict[str, OnlineRow] = {}
        connection = connections[self.using]
        with _db_errors(self), connection.cursor() as cursor:
            for chunk in _chunks(distinct, self.chunk_size):
                if connection.vendor == "postgresql":
                    cursor.execute(_PG_SELECT, [view.project, view.name, chunk])
                else:
                    marks = ", ".join(["%s"] * len(chunk))
                    cursor.execute(f"{_SELECT} AND entity_key IN ({marks})", [view.project, view.name, *chunk])
                for key, event_ts, blob in cursor.fetchall():
                    found[key] = OnlineRow(decode_row(blob, wanted), from_micros(event_ts))
        return [found.get(key) for key in keys]

    def delete_view(self, view: ViewKey) -> int:
        with _db_errors(self), connections[self.using].cursor() as cursor:
            cursor.execute(f"DELETE FROM {TABLE} WHERE project = %s AND view_name = %s", [view.project, view.name])
            return cursor.rowcount

    def count(self, view: ViewKey) -> int:
        with _db_errors(self), connections[self.using].cursor() as cursor:
            cursor.execute(
                f"SELECT COUNT(*) FROM {TABLE} WHERE project = %s AND view_name = %s",
                [view.project, view.name],
            )
            return cursor.fetchone()[0]

    def ping(self) -> None:
        try:
            with connections[self.using].cursor() as cursor:
                cursor.execute(f"SELECT 1 FROM {TABLE} WHERE 1 = 0")  # also proves the table exists
                cursor.fetchall()
        except DatabaseError as exc:
            raise OnlineStoreUnavailable(f"online store {self.describe()} is unavailable: {exc}") from exc
