"""PostgreSQL sources joined inside PostgreSQL: the data stays in the database until
the result.

A source is a table (optionally schema-qualified, `schema.table`) or a query (wrapped as
a subquery); its DSN comes from the setting or environment variable the source names
(`dsn_setting`), never from the registry. Identifiers are quoted with
psycopg.sql.Identifier; values are always bound parameters.

Point-in-time join: the entity rows (row id, keys, time) are copied into a temporary
table (COPY, CSV written by Arrow), ANALYZEd, and joined with the source:

    SELECT DISTINCT ON (e.row_id) ...
    FROM entity e JOIN source s ON s.keys = e.keys AND s.ts <= e.t [AND s.ts >= e.t - ttl]
    ORDER BY e.row_id, s.ts DESC, s.created DESC NULLS LAST

then LEFT JOINed back to every entity row, in row order, and streamed out through a
server-side cursor. Recommended: an index on the source's (join keys, timestamp) columns
(`CREATE INDEX ON t (driver_id, event_timestamp)`), which PostgreSQL uses for the join
when it pays; without it the join is a hash join plus a sort, which still finishes.
The temporary table lives in the call's transaction (ON COMMIT DROP).

Naive `timestamp` columns are read as UTC (the session time zone is UTC); the entity
time is written in the source column's own type so the comparison can use an index.
"""

from __future__ import annotations

import io
import os
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, Self

import numpy as np
import psycopg
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
from psycopg import sql

from .base import CREATED_TIMESTAMP, EVENT_TIMESTAMP, OfflineEngine, OfflineEngineError, OfflineInputError
from .resolve import SourceColumns, cast_join_key, resolve_columns, rows_for_source
from .specs import JoinPlan, SourceSpec, ViewSpec
from .types import arrow_type

BATCH_ROWS = 50_000
COPY_CHUNK_ROWS = 100_000

# PostgreSQL type name -> Arrow type (columns(), result conversion).
PG_ARROW: dict[str, pa.DataType] = {
    "int2": pa.int16(),
    "int4": pa.int32(),
    "int8": pa.int64(),
    "float4": pa.float32(),
    "float8": pa.float64(),
    "bool": pa.bool_(),
    "text": pa.string(),
    "varchar": pa.string(),
    "bpchar": pa.string(),
    "name": pa.string(),
    "uuid": pa.string(),
    "json": pa.string(),
    "jsonb": pa.string(),
    "bytea": pa.binary(),
    "date": pa.date32(),
    "timestamp": pa.timestamp("us"),
    "timestamptz": pa.timestamp("us", tz="UTC"),
}


def _aware(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class PostgresOfflineEngine(OfflineEngine):
    """PostgreSQL tables and queries (source kind `postgres`)."""

    def __init__(self, work_mem: str = "256MB") -> None:
        self.work_mem = work_mem

    @classmethod
    def from_settings(cls) -> Self:
        from django.conf import settings

        return cls(work_mem=getattr(settings, "LARDER_POSTGRES_OFFLINE_WORK_MEM", "256MB"))

    # -- connections and sources ---------------------------------------------------

    @staticmethod
    def dsn(source: SourceSpec) -> str:
        """The DSN held by the source's setting / environment variable (never logged)."""
        name = source.dsn_setting or "LARDER_OFFLINE_DSN"
        value = ""
        try:
            from django.conf import settings

            value = getattr(settings, name, "") or ""
        except Exception:  # noqa: S110 - settings not configured: the environment decides
            pass
        value = value or os.environ.get(name, "")
        if not value:
            raise OfflineEngineError(f"data source {source.name!r}: {name} (its dsn_setting) is not set")
        return value

    @contextmanager
    def connect(self, source: SourceSpec) -> Iterator[psycopg.Connection]:
        """A connection for one call, session in UTC; closed afterwards."""
        try:
            conn = psycopg.connect(self.dsn(source), autocommit=False)
        except psycopg.Error as exc:
            raise OfflineEngineError(f"data source {source.name!r}: cannot connect to PostgreSQL: {exc}") from exc
        try:
            conn.execute("SET TIME ZONE 'UTC'")
            conn.execute("SELECT set_config('work_mem', %s, false)", [self.work_mem])
            # results are read to the end: plan server-side cursors for all rows, not the first 10%
            conn.execute("SET cursor_tuple_fraction = 1.0")
            yield conn
        except psycopg.Error as exc:
            raise OfflineEngineError(f"data source {source.name!r}: PostgreSQL failed: {exc}") from exc
        finally:
            conn.close()

    @staticmethod
    def relation(source: SourceSpec, alias: str = "larder_source") -> sql.Composable:
        """The source as a FROM item named `alias`: a (schema-qualified) table, or the query
        as a subquery (the query is the registry's, written by the repo's owners)."""
        if source.table:
            return sql.SQL("{} AS {}").format(PostgresOfflineEngine.table(source), sql.Identifier(alias))
        if source.query:
            query = sql.SQL(source.query.strip().rstrip(";"))  # operator-defined (registry), not request input
            return sql.SQL("({}) AS {}").format(query, sql.Identifier(alias))
        raise OfflineEngineError(f"data source {source.name!r} has neither a table nor a query")

    @staticmethod
    def table(source: SourceSpec) -> sql.Identifier:
        """A table source's name, schema-qualified when it has a dot, quoted."""
        return sql.Identifier(*source.table.split("."))

    def _types(self, conn: psycopg.Connection, source: SourceSpec) -> dict[str, str]:
        """Source column -> PostgreSQL type name."""
        with conn.cursor() as cur:
            cur.execute(sql.SQL("SELECT * FROM {} LIMIT 0").format(self.relation(source)))
            out = {}
            for column in cur.description:
                info = conn.adapters.types.get(column.type_code)
                out[column.name] = info.name if info else column.type_display
            return out

    def columns(self, source: SourceSpec) -> dict[str, str]:
        with self.connect(source) as conn:
            types = self._types(conn, source)
            conn.rollback()
        return {name: _arrow_type_name(pg) for name, pg in types.items()}

    def _resolve(
        self, conn: psycopg.Connection, view: ViewSpec, features: Sequence[str]
    ) -> tuple[SourceColumns, dict[str, str]]:
        """The columns a read needs, and every source column's PostgreSQL type."""
        types = self._types(conn, view.source)
        cols = resolve_columns(view, features, {name: _arrow_type_name(pg) for name, pg in types.items()})
        return cols, types

    # -- point-in-time join --------------------------------------------------------

    def point_in_time_join(self, entity: pa.Table, plans: Sequence[JoinPlan], timestamp_column: str) -> pa.Table:
        names: list[str] = []
        arrays: list[pa.Array | pa.ChunkedArray] = []
        by_source: dict[str, list[JoinPlan]] = {}
        for plan in plans:
            by_source.setdefault(self.dsn(plan.view.source), []).append(plan)
        results: dict[int, list[pa.Array]] = {}
        for group in by_source.values():
            with self.connect(group[0].view.source) as conn:
                for plan in group:
                    results[id(plan)] = self._join_view(conn, entity, plan, timestamp_column)
                conn.rollback()
        for plan in plans:
            names.extend(plan.output_names)
            arrays.extend(results[id(plan)])
        return pa.Table.from_arrays(arrays, names=names)

    def _join_view(
        self, conn: psycopg.Connection, entity: pa.Table, plan: JoinPlan, timestamp_column: str
    ) -> list[pa.Array]:
        view = plan.view
        cols, types = self._resolve(conn, view, plan.features)
        source = self.relation(view.source, "s")
        naive = types[cols.timestamp] == "timestamp"
        temp = sql.Identifier(f"larder_entity_{uuid.uuid4().hex}")
        key_ids = [sql.Identifier(f"k{i}") for i in range(len(cols.keys))]

        # The entity table takes its key and time types from the source columns.
        shape = [
            sql.SQL("NULL::bigint AS row_id"),
            sql.SQL("NULL::timestamp AS t" if naive else "NULL::timestamptz AS t"),
        ]
        shape += [sql.SQL("{} AS {}").format(sql.Identifier(c), k) for c, k in zip(cols.keys, key_ids, strict=True)]
        conn.execute(
            sql.SQL("CREATE TEMP TABLE {} ON COMMIT DROP AS SELECT {} FROM {} LIMIT 0").format(
                temp, sql.SQL(", ").join(shape), source
            )
        )
        upload = {"row_id": pa.array(np.arange(entity.num_rows, dtype=np.int64))}
        t = entity.column(timestamp_column)
        upload["t"] = pc.cast(t, pa.timestamp("us")) if naive else t
        for i, (key, column) in enumerate(zip(view.join_keys, cols.keys, strict=True)):
            target = _pg_arrow(types[column])
            keys = entity.column(key)
            upload[f"k{i}"] = keys if target is None else cast_join_key(keys, target, key, view)
        self._copy_in(conn, temp, pa.table(upload), view)
        conn.execute(sql.SQL("ANALYZE {}").format(temp))

        s_ts = sql.SQL("s.{}").format(sql.Identifier(cols.timestamp))
        conditions = [
            sql.SQL("s.{} = e.{}").format(sql.Identifier(c), k) for c, k in zip(cols.keys, key_ids, strict=True)
        ]
        conditions.append(sql.SQL("{} <= e.t").format(s_ts))
        params: list[Any] = []
        if view.ttl_seconds > 0:
            conditions.append(sql.SQL("{} >= e.t - %s").format(s_ts))
            params.append(timedelta(seconds=view.ttl_seconds))
        order = [sql.SQL("e.row_id"), sql.SQL("{} DESC").format(s_ts)]
        if cols.created:
            order.append(sql.SQL("s.{} DESC NULLS LAST").format(sql.Identifier(cols.created)))
        picked = [
            sql.SQL("s.{} AS {}").format(sql.Identifier(c), sql.Identifier(f"f{i}"))
            for i, c in enumerate(cols.features)
        ]
        query = sql.SQL(
            "SELECT {outputs} FROM {temp} x LEFT JOIN ("
            "SELECT DISTINCT ON (e.row_id) e.row_id, {picked} FROM {temp} e JOIN {source} ON {on} ORDER BY {order}"
            ") m ON m.row_id = x.row_id ORDER BY x.row_id"
        ).format(
            outputs=sql.SQL(", ").join(
                sql.SQL("m.{}").format(sql.Identifier(f"f{i}")) for i in range(len(cols.features))
            ),
            temp=temp,
            picked=sql.SQL(", ").join(picked),
            source=source,
            on=sql.SQL(" AND ").join(conditions),
            order=sql.SQL(", ").join(order),
        )
        fallback = [arrow_type(view.dtype(f)) for f in plan.features]
        batches = list(self._stream(conn, query, params, [f"f{i}" for i in range(len(cols.features))], fallback))
        table = pa.Table.from_batches(batches) if batches else None
        if table is None:
            return [pa.nulls(0, typ) for typ in fallback]
        return [table.column(i).combine_chunks() for i in range(table.num_columns)]

    @staticmethod
    def _copy_in(conn: psycopg.Connection, temp: sql.Identifier, table: pa.Table, view: ViewSpec) -> None:
        """COPY the entity rows in as CSV written by Arrow (fast, and NULL stays NULL)."""
        names = sql.SQL(", ").join(sql.Identifier(n) for n in table.column_names)
        options = pacsv.WriteOptions(include_header=False, quoting_style="needed")
        try:
            with conn.cursor().copy(sql.SQL("COPY {} ({}) FROM STDIN WITH (FORMAT csv)").format(temp, names)) as copy:
                for start in range(0, table.num_rows, COPY_CHUNK_ROWS):
                    buffer = io.BytesIO()
                    pacsv.write_csv(table.slice(start, COPY_CHUNK_ROWS), buffer, options)
                    copy.write(buffer.getvalue())
        except psycopg.errors.DataError as exc:
            raise OfflineInputError(
                f"the entity table's join keys do not fit the columns of data source {view.source.name!r}: {exc}"
            ) from exc

    def _stream(
        self,
        conn: psycopg.Connection,
        query: sql.Composable,
        params: Sequence[Any],
        names: Sequence[str],
        fallback: Sequence[pa.DataType] | None = None,
    ) -> Iterator[pa.RecordBatch]:
        """Rows of `query` through a server-side cursor, as record batches typed from the
        result's PostgreSQL types (`fallback` types for columns PostgreSQL cannot name)."""
        with conn.cursor(name=f"larder_{uuid.uuid4().hex}") as cur:
            cur.itersize = BATCH_ROWS
            cur.execute(query, params)
            types: list[pa.DataType | None] | None = None
            while True:
                rows = cur.fetchmany(BATCH_ROWS)
                if types is None:
                    types = []
                    for i, column in enumerate(cur.description or []):
                        info = conn.adapters.types.get(column.type_code)
                        typ = _pg_arrow(info.name if info else column.type_display)
                        types.append(typ if typ is not None else (fallback[i] if fallback else None))
                if not rows:
                    return
                columns = list(zip(*rows, strict=True))
                arrays = [_to_arrow(values, typ) for values, typ in zip(columns, types, strict=True)]
                yield pa.RecordBatch.from_arrays(arrays, names=list(names))

    # -- window reads --------------------------------------------------------------

    def pull_latest(self, view: ViewSpec, start: datetime, end: datetime) -> Iterator[pa.RecordBatch]:
        return self._pull(view, start, end, latest=True)

    def pull_all(self, view: ViewSpec, start: datetime, end: datetime) -> Iterator[pa.RecordBatch]:
        return self._pull(view, start, end, latest=False)

    def _pull(self, view: ViewSpec, start: datetime, end: datetime, latest: bool) -> Iterator[pa.RecordBatch]:
        for name in (EVENT_TIMESTAMP, CREATED_TIMESTAMP):
            if name in view.join_keys or name in view.feature_names:
                raise OfflineInputError(f"feature view {view.name!r}: {name!r} is reserved in window reads")
        with self.connect(view.source) as conn:
            cols, types = self._resolve(conn, view, view.feature_names)
            ts = sql.Identifier(cols.timestamp)
            created = sql.Identifier(cols.created) if cols.created else None
            outputs = [
                sql.SQL("{} AS {}").format(sql.Identifier(c), sql.Identifier(k))
                for k, c in zip(view.join_keys, cols.keys, strict=True)
            ]
            outputs += [
                sql.SQL("{} AS {}").format(sql.Identifier(c), sql.Identifier(f))
                for f, c in zip(view.feature_names, cols.features, strict=True)
            ]
            outputs.append(sql.SQL("{}::timestamptz AS {}").format(ts, sql.Identifier(EVENT_TIMESTAMP)))
            outputs.append(
                sql.SQL("{}::timestamptz AS {}").format(created or sql.SQL("NULL"), sql.Identifier(CREATED_TIMESTAMP))
            )
            where = sql.SQL("FROM {} WHERE {} BETWEEN %s AND %s").format(self.relation(view.source), ts)
            select = sql.SQL(", ").join(outputs)
            if not latest:
                query = sql.SQL("SELECT {} {}").format(select, where)
            else:
                keys = [sql.Identifier(c) for c in cols.keys]
                order = [*keys, sql.SQL("{} DESC").format(ts)]
                if created is not None:
                    order.append(sql.SQL("{} DESC NULLS LAST").format(created))
                distinct = sql.SQL("DISTINCT ON ({}) ").format(sql.SQL(", ").join(keys)) if keys else sql.SQL("")
                limit = sql.SQL("") if keys else sql.SQL(" LIMIT 1")
                query = sql.SQL("SELECT {}{} {} ORDER BY {}{}").format(
                    distinct, select, where, sql.SQL(", ").join(order), limit
                )
            naive = types[cols.timestamp] != "timestamptz"
            params = [_bound(start, naive), _bound(end, naive)]
            names = [*view.join_keys, *view.feature_names, EVENT_TIMESTAMP, CREATED_TIMESTAMP]
            fallback = [None] * len(view.join_keys) + [arrow_type(d) for _, d in view.features] + [None, None]
            yield from self._stream(conn, query, params, names, fallback)
            conn.rollback()

    # -- appends -------------------------------------------------------------------

    def write(self, source: SourceSpec, rows: pa.Table) -> int:
        """INSERT the rows (COPY) in one transaction: all of them or none."""
        if not source.table:
            raise OfflineInputError(f"data source {source.name!r} is a query: rows can only be appended to a table")
        with self.connect(source) as conn:
            types = self._types(conn, source)
            target = pa.schema([(name, PG_ARROW.get(pg) or pa.string()) for name, pg in types.items()])
            table = rows_for_source(source, rows, target)
            if table.num_rows == 0:
                return 0
            present = [n for n in table.column_names if rows_has(rows, source, n)]
            columns = sql.SQL(", ").join(sql.Identifier(n) for n in present)
            statement = sql.SQL("COPY {} ({}) FROM STDIN").format(self.table(source), columns)
            with conn.transaction(), conn.cursor().copy(statement) as copy:
                values = [table.column(n).to_pylist() for n in present]
                for row in zip(*values, strict=True):
                    copy.write_row(row)
            conn.commit()
        return table.num_rows


def rows_has(rows: pa.Table, source: SourceSpec, column: str) -> bool:
    """Whether the pushed rows carry `column` (by source name or mapped name): columns they
    lack are left to the table's defaults instead of written as NULL."""
    return column in rows.column_names or source.name_for(column) in rows.column_names


def _pg_arrow(pg_type: str) -> pa.DataType | None:
    if pg_type in PG_ARROW:
        return PG_ARROW[pg_type]
    if pg_type.startswith("_") and pg_type[1:] in PG_ARROW:  # arrays: _int8, _text, ...
        return pa.list_(PG_ARROW[pg_type[1:]])
    if pg_type.endswith("[]") and pg_type[:-2] in PG_ARROW:
        return pa.list_(PG_ARROW[pg_type[:-2]])
    return None


def _arrow_type_name(pg_type: str) -> str:
    typ = _pg_arrow(pg_type)
    return str(typ) if typ is not None else pg_type


def _to_arrow(values: Sequence[Any], typ: pa.DataType | None) -> pa.Array:
    if typ is not None and pa.types.is_timestamp(typ) and typ.tz is None:
        # naive `timestamp` values are UTC wall times
        return pa.array(values, pa.timestamp("us"))
    try:
        return pa.array(values, typ)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return pa.array([None if v is None else str(v) for v in values], pa.string())


def _bound(value: datetime, naive: bool) -> datetime:
    """A window bound in the type of the column it is compared with (so an index applies):
    aware UTC for `timestamptz`, the UTC wall time for naive `timestamp` columns."""
    value = _aware(value)
    return value.replace(tzinfo=None) if naive else value
