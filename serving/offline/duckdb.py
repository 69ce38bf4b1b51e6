"""DuckDB over Parquet files and folders: the embedded default engine.

Reads stream from the files (DuckDB's Parquet scan; nothing is loaded into pandas).
Each call has its own connection (a cursor on one in-memory DuckDB instance per
process, so a call costs no instance start-up), and the instance has
LARDER_DUCKDB_MEMORY_LIMIT and LARDER_DUCKDB_THREADS: a join that outgrows the limit
spills to a private temporary folder instead of failing.

Point-in-time join, two plans with one result:

- ASOF: DuckDB's ASOF LEFT JOIN finds, per entity row, the source row with the same
  keys and the greatest ordering value not above the entity's. ASOF alone does not break
  ties on the event time by created time, so with a created column the ordering value
  is the struct {t: event time, c: created} (null created as -infinity, compared field
  by field) and the entity side's is {t: T, c: +infinity}: the greatest (ts, created)
  with ts <= T wins, without a deduplication pass (which costs more than the wider sort
  key). The ttl lower bound is applied to the match (a match older than T - ttl gives
  nulls), which equals filtering before it because the best candidate is the newest.
- hash: a hash join on the keys with `ts <= T` (and `ts >= T - ttl`) as join
  conditions, then per entity row the candidate with the greatest (ts, created)
  (arg_max); only matched entity rows come out, the others get nulls when the rows are
  put back in order. With a ttl the keys are joined together with a time bucket: the
  source rows are cut into buckets of ttl width (counted from min T - ttl), and each
  entity row probes its own bucket and the one before, which hold every row inside
  [T - ttl, T] (the bounds themselves are still checked exactly), so an entity row
  meets about 2 x ttl of its key's history instead of all of it (10M source rows over
  30 days, ttl 2 days: 9 times fewer pairs). It touches every pair it joins, so it wins
  when those pairs are few and loses when they are many. `join_strategy="auto"`
  estimates them first (one aggregate per side, ~5% of the join: per key, entity rows x
  source rows x the share of the key's buckets that two buckets are) and takes the hash
  join up to HASH_JOIN_PAIRS_PER_ROW pairs per source row; skewed keys (one hot key in
  both tables) therefore go to ASOF. Its per-entity-row aggregate spills badly (and
  fails far below the limit, where ASOF spills and finishes), so it is kept to entity
  tables whose estimated state fits in half the memory limit, and a hash join that runs
  out of memory anyway is run again as ASOF. Times are compared as integer microseconds
  and ordered by one HUGEINT (ts, created), cheaper than timestamps, intervals and
  structs; the hash table is built on the smaller side by exact count (DuckDB's own
  choice flips on its estimates, and probing with a one-row-group Parquet file would
  run on one thread).

Both read only source rows inside [min T - ttl, max T]. Each entity row carries a row id,
and the result is put back in entity order by it.

Layout: a source `path` is a Parquet file or a folder read recursively
(`**/*.parquet`; names starting with `.` or `_` are skipped; hive partitioning off,
files with different column sets are unioned by name). Appends (`write`) never touch
existing files: each is a new file written to a temporary name and renamed into place.
A single-file source cannot grow in place, so its appends go to the sibling folder
`<path>.appended/`, which every read of that source includes.
"""

# ruff: noqa: S608 - SQL is built from quoted identifiers (types.quote); values are always parameters

from __future__ import annotations

import os
import re
import tempfile
import threading
import uuid
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Self

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from .base import CREATED_TIMESTAMP, EVENT_TIMESTAMP, OfflineEngine, OfflineEngineError, OfflineInputError
from .resolve import SourceColumns, cast_join_key, resolve_columns, rows_for_source
from .specs import JoinPlan, SourceSpec, ViewSpec
from .types import arrow_type, quote

APPENDED_SUFFIX = ".appended"
# Hash join when the (entity row, source row) pairs sharing keys are at most this many per
# source row scanned (measured break-even ~5-10 in bench/historical.py).
HASH_JOIN_PAIRS_PER_ROW = 3
# Without time buckets the hash join is about as fast as ASOF up to ~10 pairs per source row
# (1M x 1M: 0.90 s CPU against 0.96; 10M x 1M: 1.2 times ASOF's): below that the bucketed
# pairs are estimated from the time range alone.
HASH_JOIN_PAIRS_UNBUCKETED = 10
# Rough size of the hash plan's aggregate state per entity row: the plan is taken only while
# that stays under HASH_MEMORY_SHARE of the memory limit (bench/historical.py's 10M x 1M,
# 10 features, estimated at 640 MB, finishes with a 300 MB limit, spilling, fails at 250 MB).
HASH_STATE_BYTES = 160
HASH_STATE_BYTES_PER_FEATURE = 48
HASH_MEMORY_SHARE = 0.5
_UNITS = {"": 1, "B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12}
_UNITS.update({"KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40})
BATCH_ROWS = 64 * 1024
# Results of at least this many values are put back in entity order by several threads.
PARALLEL_PLACE_VALUES = 1_000_000


def _aware(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _ts(column: str) -> str:
    """A source time column as TIMESTAMPTZ: the session is UTC, so naive values read as UTC."""
    return f"CAST({quote(column)} AS TIMESTAMPTZ)"


def _order(ts_sql: str, created: str | None) -> str:
    """The ASOF ordering value of a source row: its event time, then its created time."""
    if created is None:
        return ts_sql
    return f"{{'t': {ts_sql}, 'c': COALESCE({_ts(created)}, '-infinity'::TIMESTAMPTZ)}}"


def _micros_sql(ts_sql: str) -> str:
    """A TIMESTAMPTZ as BIGINT microseconds since the epoch; -infinity as the lowest value
    (epoch_us gives NULL for it), +infinity stays NULL (it is after every entity time)."""
    return f"COALESCE(epoch_us({ts_sql}), CASE WHEN {ts_sql} = '-infinity'::TIMESTAMPTZ THEN {-(2**63) + 1} END)"


def _order_micros(micros: str, created: str | None) -> str:
    """The hash join's ordering value: one HUGEINT, event µs * 2^64 + created µs (a null or
    -infinity created lowest, +infinity highest), the order of the struct {ts, created} for
    less CPU in arg_max (10M x 1M: 3.1 s instead of 3.7 s)."""
    if created is None:
        return micros
    c = _ts(created)
    low = f"CASE WHEN {c} = 'infinity'::TIMESTAMPTZ THEN {2**63 - 1} ELSE {-(2**63)} END"
    return f"{micros}::HUGEINT * {2**64} + COALESCE(epoch_us({c}), {low})"


class DuckDBOfflineEngine(OfflineEngine):
    """Parquet files and folders through DuckDB (source kind `file`)."""

    def __init__(
        self, memory_limit: str = "2GB", threads: int = 2, temp_dir: str = "", join_strategy: str = "auto"
    ) -> None:
        if join_strategy not in ("auto", "asof", "hash"):
            raise ValueError(f"join_strategy must be auto, asof or hash, not {join_strategy!r}")
        self.join_strategy = join_strategy
        self.memory_limit = memory_limit
        self.threads = threads
        self.temp_dir = temp_dir or os.path.join(tempfile.gettempdir(), "larder-duckdb")
        self._lock = threading.Lock()
        self._db: duckdb.DuckDBPyConnection | None = None
        self._pid = 0

    @classmethod
    def from_settings(cls) -> Self:
        from django.conf import settings

        return cls(
            memory_limit=getattr(settings, "LARDER_DUCKDB_MEMORY_LIMIT", "2GB"),
            threads=int(getattr(settings, "LARDER_DUCKDB_THREADS", 2)),
            temp_dir=getattr(settings, "LARDER_DUCKDB_TEMP_DIR", ""),
        )

    # -- connections and files ---------------------------------------------------

    def _database(self) -> duckdb.DuckDBPyConnection:
        """The process's in-memory DuckDB instance (memory limit, threads and spill folder
        are instance-wide), created lazily and again after a fork (Celery, gunicorn)."""
        pid = os.getpid()
        if self._db is None or self._pid != pid:
            with self._lock:
                if self._db is None or self._pid != pid:
                    # DuckDB creates the spill folder on first spill and removes it on close.
                    os.makedirs(self.temp_dir, exist_ok=True)
                    spill = os.path.join(self.temp_dir, f"spill-{pid}-{uuid.uuid4().hex[:8]}")
                    config = {
                        "memory_limit": self.memory_limit,
                        "threads": self.threads,
                        "temp_directory": spill,
                        # results are put in entity order by row id: DuckDB need not keep any order,
                        # which lets more operators stream and spill
                        "preserve_insertion_order": False,
                        # a hash join builds on its right side as the query is written: the engine
                        # picks the side from exact counts, where DuckDB's estimate of an unnest or
                        # a filtered Parquet scan is a guess (and probing a one-row-group Parquet
                        # file runs on one thread)
                        "disabled_optimizers": "build_side_probe_side",
                    }
                    try:
                        self._db = duckdb.connect(":memory:", config=config)
                    except duckdb.Error as exc:
                        raise OfflineEngineError(f"cannot start DuckDB: {exc}") from exc
                    self._pid = pid
        return self._db

    def _memory_bytes(self) -> float:
        """LARDER_DUCKDB_MEMORY_LIMIT in bytes ("2GB", "512MiB"); 1 GB when unreadable."""
        match = re.fullmatch(r"\s*([0-9.]+)\s*([A-Za-z]*)\s*", self.memory_limit)
        if not match or match.group(2).upper() not in _UNITS:
            return 1e9
        return float(match.group(1)) * _UNITS[match.group(2).upper()]

    @contextmanager
    def connect(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A connection of its own for one call (DuckDB connections must not be shared
        between threads): a cursor on the process's instance, session time zone UTC."""
        con = self._database().cursor()
        try:
            con.execute("SET TimeZone = 'UTC'")
            con.execute("SET enable_progress_bar = false")  # a server has no terminal to draw on
            yield con
        finally:
            con.close()

    @staticmethod
    def files(source: SourceSpec) -> list[str]:
        """The Parquet files of a source, sorted (a file source, plus its appended folder)."""
        if not source.path:
            raise OfflineEngineError(f"data source {source.name!r} has no path")
        path = Path(source.path)
        if path.is_file():
            return [str(path), *_parquet_files(Path(str(path) + APPENDED_SUFFIX))]
        if path.is_dir():
            return _parquet_files(path)
        raise OfflineEngineError(f"data source {source.name!r}: {source.path} does not exist")

    @staticmethod
    def _scan() -> str:
        return "read_parquet($files, union_by_name = true, hive_partitioning = false)"

    def _schema(self, con: duckdb.DuckDBPyConnection, source: SourceSpec, files: list[str]) -> pa.Schema | None:
        if not files:
            return None
        try:
            return con.sql(f"SELECT * FROM {self._scan()} LIMIT 0", params={"files": files}).to_arrow_table().schema
        except duckdb.Error as exc:
            raise OfflineEngineError(f"data source {source.name!r}: cannot read {source.path}: {exc}") from exc

    def columns(self, source: SourceSpec) -> dict[str, str]:
        with self.connect() as con:
            schema = self._schema(con, source, self.files(source))
        return {} if schema is None else {f.name: str(f.type) for f in schema}

    def _resolve(
        self, con: duckdb.DuckDBPyConnection, view: ViewSpec, features: Sequence[str]
    ) -> tuple[list[str], pa.Schema | None, SourceColumns | None]:
        files = self.files(view.source)
        schema = self._schema(con, view.source, files)
        if schema is None:
            return files, None, None
        cols = resolve_columns(view, features, {f.name: str(f.type) for f in schema})
        return files, schema, cols

    # -- point-in-time join --------------------------------------------------------

    def point_in_time_join(self, entity: pa.Table, plans: Sequence[JoinPlan], timestamp_column: str) -> pa.Table:
        names: list[str] = []
        arrays: list[pa.ChunkedArray] = []
        with self.connect() as con:
            for plan in plans:
                table = self._join_view(con, entity, plan, timestamp_column)
                names.extend(plan.output_names)
                arrays.extend(table.columns)
        return pa.Table.from_arrays(arrays, names=names)

    def _join_view(
        self, con: duckdb.DuckDBPyConnection, entity: pa.Table, plan: JoinPlan, timestamp_column: str
    ) -> pa.Table:
        view = plan.view
        files, schema, cols = self._resolve(con, view, plan.features)
        if cols is None:  # no files yet: every feature is null
            n = entity.num_rows
            return pa.table({f"f{i}": pa.nulls(n, arrow_type(view.dtype(f))) for i, f in enumerate(plan.features)})

        times = entity.column(timestamp_column)
        arrays = {"row": pa.array(np.arange(entity.num_rows, dtype=np.int64)), "t": times}
        for i, (key, column) in enumerate(zip(view.join_keys, cols.keys, strict=True)):
            arrays[f"k{i}"] = cast_join_key(entity.column(key), schema.field(column).type, key, view)
        entity_view = f"larder_entity_{uuid.uuid4().hex}"
        con.register(entity_view, pa.table(arrays))
        try:
            ts_sql = _ts(cols.timestamp)
            # Only rows inside [min T - ttl, max T] can match: skip the rest early.
            params: dict[str, object] = {"files": files, "max_t": pc.max(times).as_py()}
            window = f"{ts_sql} <= $max_t"
            bucketed = False
            if view.ttl_seconds > 0:
                params["ttl"] = view.ttl_seconds
                params["min_t"] = pc.min(times).as_py()
                params["ttl_us"] = view.ttl_seconds * 1_000_000
                window += f" AND {ts_sql} >= $min_t - to_seconds($ttl)"
                # time buckets of ttl width from min T - ttl for the hash join, worth it past two
                width, low = view.ttl_seconds * 1_000_000, pc.min(times).value
                if pc.max(times).value - low > width:
                    bucketed = True
                    params.update(origin=low - width, width=width)
            keys = [f"{quote(c)} AS k{i}" for i, c in enumerate(cols.keys)]
            bucket = [f"(epoch_us({ts_sql}) - $origin) // $width AS b"] if bucketed else []
            scan = f"FROM {self._scan()} WHERE {window}"
            n, n_keys, n_features = entity.num_rows, len(cols.keys), len(cols.features)
            key_rows = f"(SELECT {', '.join(keys + bucket)} {scan})"
            times_sql = f"SELECT min({ts_sql}), max({ts_sql}) FROM {self._scan()}" if bucketed else ""
            strategy, source_rows = self._strategy(con, entity_view, n, n_keys, n_features, key_rows, params, times_sql)
            values = [f"{quote(c)} AS f{i}" for i, c in enumerate(cols.features)]
            created = cols.created is not None
            if strategy == "hash":
                # times as integer microseconds: cheaper to compare than timestamps with intervals
                micros = _micros_sql(ts_sql)
                order = _order_micros(micros, cols.created)
                source = f"(SELECT {', '.join([*keys, f'{micros} AS ts', f'{order} AS o', *values, *bucket])} {scan})"
                # build the hash table on the smaller side (see _database): the source when it has
                # fewer rows than the entity rows' probes (the probe side's scan then runs in parallel)
                build_source = source_rows is not None and source_rows < n * (2 if bucketed else 1)
                sql = _hash_join_sql(entity_view, source, n_keys, n_features, created, view, bucketed, build_source)
                try:
                    return _in_entity_order(_fetch(con, sql, params), n, self.threads)
                except duckdb.OutOfMemoryException:
                    if self.join_strategy == "hash":
                        raise
                    # estimated to fit, but the memory limit is the instance's, shared by every
                    # query of the process: ASOF spills where the hash aggregate fails
            order = _order(ts_sql, cols.created)
            source = f"(SELECT {', '.join([*keys, f'{ts_sql} AS ts', f'{order} AS o', *values])} {scan})"
            sql = _asof_join_sql(entity_view, source, n_keys, n_features, created, view)
            return _in_entity_order(_fetch(con, sql, params), n, self.threads)
        except duckdb.Error as exc:
            raise _engine_error(view.source, exc) from exc
        finally:
            con.unregister(entity_view)

    def _strategy(
        self,
        con: duckdb.DuckDBPyConnection,
        entity_view: str,
        entity_rows: int,
        n_keys: int,
        n_features: int,
        key_rows: str,
        params: dict,
        times_sql: str,
    ) -> tuple[str, float | None]:
        """`asof` or `hash` (see the module docstring): the hash join when the (entity row,
        source row) pairs it would join are few and its per-entity-row aggregate fits easily
        in memory.

        The pairs sharing a key are counted exactly (one aggregate per side): at most
        HASH_JOIN_PAIRS_PER_ROW per source row is a hash join even without buckets. With time
        buckets (`times_sql` given, `key_rows` has the bucket `b`) the joined pairs are fewer:
        up to HASH_JOIN_PAIRS_UNBUCKETED per source row (where a hash join without buckets is
        still about as fast as ASOF, so a wrong guess costs little) they are estimated as if
        each key's rows were spread evenly over the source's time range (from the Parquet
        statistics); above, each key's own range of buckets is counted (one more aggregate).
        Also returns the number of source rows in the window when it was counted."""
        if self.join_strategy != "auto" or n_keys == 0:
            return ("asof" if n_keys == 0 else self.join_strategy), None
        state = entity_rows * (HASH_STATE_BYTES + HASH_STATE_BYTES_PER_FEATURE * n_features)
        if state > self._memory_bytes() * HASH_MEMORY_SHARE:
            return "asof", None
        keys = ", ".join(f"k{i}" for i in range(n_keys))

        def count(span: str = "", share: str = "") -> tuple[float, float]:
            sql = (
                f"WITH s AS (SELECT {keys}, count(*) AS n{span} FROM {key_rows} GROUP BY ALL), "
                f"e AS (SELECT {keys}, count(*) AS n FROM {entity_view} GROUP BY ALL) "
                f"SELECT (SELECT sum(n) FROM s), (SELECT sum(e.n * s.n{share}) FROM e JOIN s USING ({keys}))"
            )
            rows, pairs = con.sql(sql, params=_used(params, sql)).fetchall()[0]
            return float(rows or 0), float(pairs or 0)

        rows, pairs = count()
        if pairs <= HASH_JOIN_PAIRS_PER_ROW * rows:
            return "hash", rows
        if not times_sql:
            return "asof", rows
        width = params["width"]
        if pairs <= HASH_JOIN_PAIRS_UNBUCKETED * rows:
            low, high = con.sql(times_sql, params=_used(params, times_sql)).fetchall()[0]
            if low is None or high is None:
                return "hash", rows
            start = max(_micros(low), params["origin"])
            end = min(_micros(high), _micros(params["max_t"]))
            pairs *= min(1.0, 2 * width / max(end - start, 1))
        else:
            _, pairs = count(", min(b) AS lo, max(b) AS hi", " * least(1.0, 2.0 / (s.hi - s.lo + 1))")
        return ("hash" if pairs <= HASH_JOIN_PAIRS_PER_ROW * rows else "asof"), rows

    # -- window reads --------------------------------------------------------------

    def pull_latest(
        self, view: ViewSpec, start: datetime, end: datetime, bucket: tuple[int, int] | None = None
    ) -> Iterator[pa.RecordBatch]:
        """As OfflineEngine.pull_latest. With `bucket=(i, n)` and one integer join key, only
        the entities of bucket i of n (materialization.engine.entity_buckets' Fibonacci
        hash, computed in SQL) are aggregated, so n partitions divide the work; with any
        other key the bucket is ignored here (the caller filters)."""
        return self._pull(view, start, end, latest=True, bucket=bucket)

    def pull_all(self, view: ViewSpec, start: datetime, end: datetime) -> Iterator[pa.RecordBatch]:
        return self._pull(view, start, end, latest=False)

    def _pull(
        self, view: ViewSpec, start: datetime, end: datetime, latest: bool, bucket: tuple[int, int] | None = None
    ) -> Iterator[pa.RecordBatch]:
        _check_pull_names(view)
        with self.connect() as con:
            files, schema, cols = self._resolve(con, view, view.feature_names)
            if cols is None:
                return
            ts_sql = _ts(cols.timestamp)
            created_sql = _ts(cols.created) if cols.created else "NULL::TIMESTAMPTZ"
            keys = [f"{quote(c)} AS {quote(k)}" for k, c in zip(view.join_keys, cols.keys, strict=True)]
            values = [f"{quote(c)} AS {quote(f)}" for f, c in zip(view.feature_names, cols.features, strict=True)]
            values += [f"{ts_sql} AS {quote(EVENT_TIMESTAMP)}", f"{created_sql} AS {quote(CREATED_TIMESTAMP)}"]
            where, params = _window(schema.field(cols.timestamp).type, cols.timestamp, start, end)
            params["files"] = files
            key_type = schema.field(cols.keys[0]).type if len(cols.keys) == 1 else pa.null()
            int_key = pa.types.is_signed_integer(key_type) or key_type in (pa.uint8(), pa.uint16(), pa.uint32())
            if bucket is not None and bucket[1] > 1 and int_key:
                # bucket = ((uint64(k) * 0x9E3779B97F4A7C15 mod 2^64) >> 32) mod n, in 32-bit
                # halves so that no UBIGINT product overflows (a UHUGEINT product is ~60x slower)
                k = f"CAST({quote(cols.keys[0])} AS BIGINT)"
                lo, hi = f"CAST({k} & 4294967295 AS UBIGINT)", f"CAST(({k} >> 32) & 4294967295 AS UBIGINT)"
                mid = f"(({hi} * 2135587861) & 4294967295) + (({lo} * 2654435769) & 4294967295)"
                # literals, not parameters: a parameter here costs twice the CPU (no constant folding)
                mine, buckets = int(bucket[0]), int(bucket[1])
                where += f" AND (((({lo} * 2135587861) >> 32) + {mid}) & 4294967295) % {buckets} = {mine}"
            if not latest:
                sql = f"SELECT {', '.join(keys + values)} FROM {self._scan()} WHERE {where}"
            else:
                # Latest per key by one hash aggregate: arg_max over the (ts, created) ordering
                # value. With a created column it is one HUGEINT, ts µs * 2^64 + created µs (a
                # null or -infinity created lowest, +infinity highest): the same order as the
                # struct {ts, created}, for ~40% less CPU (10M rows: 1.5 s instead of 2.5 s).
                order = ts_sql
                if cols.created:
                    c = _ts(cols.created)
                    low = f"CASE WHEN {c} = 'infinity'::TIMESTAMPTZ THEN {2**63 - 1} ELSE {-(2**63)} END"
                    order = f"epoch_us({ts_sql})::HUGEINT * {2**64} + COALESCE(epoch_us({c}), {low})"
                carried = [*view.feature_names, EVENT_TIMESTAMP, CREATED_TIMESTAMP]
                packed = ", ".join(f"{quote(n)}: {quote(n)}" for n in carried)
                key_names = [quote(k) for k in view.join_keys]
                group = f"GROUP BY {', '.join(key_names)}" if key_names else "HAVING count(*) > 0"
                sql = (
                    f"SELECT {', '.join([*key_names, f'UNNEST(arg_max({{{packed}}}, o))'])} FROM "
                    f"(SELECT {', '.join(keys + values)}, {order} AS o "
                    f"FROM {self._scan()} WHERE {where}) {group}"
                )
            try:
                reader = con.sql(sql, params=params).to_arrow_reader(BATCH_ROWS)
                yield from reader
            except duckdb.Error as exc:
                raise _engine_error(view.source, exc) from exc

    # -- appends -------------------------------------------------------------------

    def write(self, source: SourceSpec, rows: pa.Table) -> int:
        """Append as one new Parquet file under the source's folder (or `<file>.appended/`
        for a single-file source), written to a hidden temporary name and renamed into
        place, so readers see all of the rows or none."""
        files = self.files(source)
        with self.connect() as con:
            target = self._schema(con, source, files)
        table = rows_for_source(source, rows, target)
        if table.num_rows == 0:
            return 0
        path = Path(source.path)
        folder = Path(str(path) + APPENDED_SUFFIX) if path.is_file() else path
        folder.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        final = folder / f"part-{stamp}-{uuid.uuid4().hex[:12]}.parquet"
        partial = folder / f".{final.name}.partial"
        try:
            pq.write_table(table, partial)
            with open(partial, "rb") as fh:
                os.fsync(fh.fileno())
            os.replace(partial, final)
            _fsync_dir(folder)
        except OSError as exc:
            partial.unlink(missing_ok=True)
            raise OfflineEngineError(f"data source {source.name!r}: cannot write to {folder}: {exc}") from exc
        return table.num_rows


def _window(ts_type: pa.DataType, column: str, start: datetime, end: datetime) -> tuple[str, dict[str, object]]:
    """`start <= ts <= end` on the raw column, so DuckDB can skip row groups by their
    statistics: a naive timestamp column (UTC wall times) is compared with naive UTC bounds."""
    start, end = _aware(start), _aware(end)
    if pa.types.is_timestamp(ts_type) and ts_type.tz is None:
        start, end = start.replace(tzinfo=None), end.replace(tzinfo=None)
    elif not pa.types.is_timestamp(ts_type):
        return f"{_ts(column)} BETWEEN $start AND $end", {"start": start, "end": end}
    return f"{quote(column)} BETWEEN $start AND $end", {"start": start, "end": end}


def _asof_join_sql(entity: str, source: str, n_keys: int, n_features: int, created: bool, view: ViewSpec) -> str:
    """ASOF LEFT JOIN on (keys, ordering value); the ttl bound applied to the match."""
    entity_order = "{'t': e.t, 'c': 'infinity'::TIMESTAMPTZ}" if created else "e.t"
    on = [f"e.k{i} = s.k{i}" for i in range(n_keys)] + [f"{entity_order} >= s.o"]
    if view.ttl_seconds > 0:
        outputs = [f"CASE WHEN s.ts >= e.t - to_seconds($ttl) THEN s.f{i} END" for i in range(n_features)]
    else:
        outputs = [f"s.f{i}" for i in range(n_features)]
    return f"SELECT e.row, {', '.join(outputs)} FROM {entity} e ASOF LEFT JOIN {source} s ON {' AND '.join(on)}"


def _hash_join_sql(
    entity: str,
    source: str,
    n_keys: int,
    n_features: int,
    created: bool,
    view: ViewSpec,
    bucketed: bool = False,
    build_source: bool = False,
) -> str:
    """Hash join on the keys (and time bucket) with the time bounds as join conditions,
    then per entity row the candidate with the greatest ordering value (arg_max): one
    row per matched entity row (row id, features); unmatched entity rows are left out.

    The source's `ts` is in microseconds since the epoch, like the entity's `tu`.
    Bucketed: T - $origin >= ttl, so the integer divisions are floors of non-negative
    numbers and b - 1 is the bucket of T - ttl."""
    entity = f"(SELECT *, epoch_us(t) AS tu FROM {entity})"
    on = [f"e.k{i} = s.k{i}" for i in range(n_keys)] + ["s.ts <= e.tu"]
    if view.ttl_seconds > 0:
        on.append("s.ts >= e.tu - $ttl_us")
    if bucketed:
        probes = f"(SELECT *, (tu - $origin) // $width AS b0 FROM {entity})"
        entity = f"(SELECT *, unnest([b0, b0 - 1]) AS b FROM {probes})"
        on.append("e.b = s.b")
    packed = ", ".join(f"f{i}: s.f{i}" for i in range(n_features))
    return (
        f"SELECT e.row, unnest(arg_max({{{packed}}}, s.o)) FROM "
        + (f"{entity} e JOIN {source} s" if build_source else f"{source} s JOIN {entity} e")
        + f" ON {' AND '.join(on)} GROUP BY e.row"
    )


def _in_entity_order(table: pa.Table, n: int, threads: int = 1) -> pa.Table:
    """The join's rows (row id first, then features) put back in the order of the n entity
    rows, entity rows the join left out as nulls: O(n) instead of a sort in the query.
    Numeric columns without nulls are scattered with numpy (half the time of Arrow's take
    with null indices; numpy lets go of the GIL, so `threads` columns at a time); the
    others are taken."""
    rows = table.column(0).to_numpy()
    features = table.drop_columns([table.column_names[0]])
    m = len(rows)
    if m == n and (n < 2 or bool(np.all(rows[1:] > rows[:-1]))):
        return features
    missing = None
    if m < n:
        missing = np.ones(n, dtype=bool)
        missing[rows] = False

    def numeric(column: pa.ChunkedArray) -> bool:
        return column.null_count == 0 and (pa.types.is_integer(column.type) or pa.types.is_floating(column.type))

    indices = None
    if not all(numeric(column) for column in features.columns):
        position = np.full(n, -1, dtype=np.int64)
        position[rows] = np.arange(m, dtype=np.int64)
        indices = pa.array(position, mask=missing)

    def place(column: pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
        if indices is None or numeric(column):
            values = column.to_numpy()
            out = np.zeros(n, dtype=values.dtype)
            out[rows] = values
            return pa.array(out, type=column.type, mask=missing)
        return column.take(indices)

    if threads > 1 and n * features.num_columns >= PARALLEL_PLACE_VALUES:
        with ThreadPoolExecutor(max_workers=threads) as pool:
            arrays = list(pool.map(place, features.columns))
    else:
        arrays = [place(column) for column in features.columns]
    return pa.Table.from_arrays(arrays, schema=features.schema)


def _micros(value: datetime) -> int:
    """An aware datetime as microseconds since the epoch (exact, no float)."""
    delta = _aware(value) - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds


def _fetch(con: duckdb.DuckDBPyConnection, sql: str, params: dict[str, object]) -> pa.Table:
    return con.sql(sql, params=_used(params, sql)).to_arrow_table()


def _used(params: dict[str, object], sql: str) -> dict[str, object]:
    """The parameters `sql` names (DuckDB refuses unused ones)."""
    return {name: value for name, value in params.items() if re.search(rf"\${name}\b", sql)}


def _parquet_files(folder: Path) -> list[str]:
    if not folder.is_dir():
        return []
    found = []
    for root, dirs, names in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith((".", "_")))
        found.extend(os.path.join(root, n) for n in names if n.endswith(".parquet") and not n.startswith((".", "_")))
    return sorted(found)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _check_pull_names(view: ViewSpec) -> None:
    for name in (EVENT_TIMESTAMP, CREATED_TIMESTAMP):
        if name in view.join_keys or name in view.feature_names:
            raise OfflineInputError(f"feature view {view.name!r}: {name!r} is reserved in window reads")


def _engine_error(source: SourceSpec, exc: Exception) -> OfflineEngineError:
    return OfflineEngineError(f"data source {source.name!r}: DuckDB failed: {exc}")
