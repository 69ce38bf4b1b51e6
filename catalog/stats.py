"""Statistics of features, computed from their offline data through the offline engine.

Per feature: rows, nulls and null rate; for numbers min, max, mean, standard
deviation, percentiles (linear interpolation, numpy's default) and a histogram of
equal-width bins; for strings and booleans the distinct count and the most common
values. Per view: the total row count and the oldest and newest event time.

How: one scan per view. For Parquet sources (the DuckDB engine) a DuckDB query over
the source's files with `USING SAMPLE reservoir(N ROWS)`; for any other engine its
`pull_all` stream, reservoir-sampled batch by batch. Either way at most
LARDER_STATS_SAMPLE_ROWS rows are described (`sampled` says when that was fewer than
all rows; row counts and event-time bounds are always over all rows).

Results are cached in catalog.ViewStatistics, one row per view, valid while the
view's definition (and its source's) is unchanged (`fingerprint`). They are
recomputed on demand (the portal's button, `recompute_view_statistics`, which the
materialization jobs call after each run) and, for sources small enough
(LARDER_STATS_AUTO_ROWS), the first time a page asks for them. A source that cannot
be read gives a payload with `error` ("no offline data found at ..."), never an
exception for the page.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
from django.conf import settings
from django.utils import timezone

from catalog.models import FeatureView, ViewStatistics

log = logging.getLogger(__name__)

PERCENTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
HISTOGRAM_BINS = 20
TOP_VALUES = 10
NUMERIC = {"Int32", "Int64", "Float32", "Float64"}
CATEGORICAL = {"String", "Bool"}
_EARLIEST = datetime(1, 1, 2, tzinfo=UTC)
_LATEST = datetime(9999, 12, 30, tzinfo=UTC)


def sample_rows() -> int:
    return int(getattr(settings, "LARDER_STATS_SAMPLE_ROWS", 100_000))


def auto_rows() -> int:
    return int(getattr(settings, "LARDER_STATS_AUTO_ROWS", 1_000_000))


def kind_of(dtype: str) -> str:
    if dtype in NUMERIC:
        return "numeric"
    if dtype in CATEGORICAL:
        return "categorical"
    return "other"


def fingerprint(feature_view: FeatureView) -> str:
    """What the cached numbers depend on: the view's and its source's definitions."""
    source = feature_view.batch_source
    parts = [
        feature_view.pk,
        feature_view.updated_at.isoformat(),
        source.pk,
        source.updated_at.isoformat(),
        [(f.name, f.dtype) for f in feature_view.fields.all()],
    ]
    return hashlib.md5(json.dumps(parts, default=str).encode(), usedforsecurity=False).hexdigest()


# -- describing a sample -------------------------------------------------------------


def describe(sample: pa.Table, features: list[tuple[str, str]]) -> dict[str, dict[str, Any]]:
    """Per feature (name, dtype) present in `sample`: the numbers the portal shows.

    Runs in an in-memory DuckDB over the Arrow table, so nothing is copied to pandas."""
    import duckdb

    out: dict[str, dict[str, Any]] = {}
    con = duckdb.connect(":memory:")
    try:
        con.register("sample", sample)
        rows = sample.num_rows
        for name, dtype in features:
            if name not in sample.column_names:
                out[name] = {"dtype": dtype, "kind": kind_of(dtype), "error": f"no column {name!r} in the source"}
                continue
            col = '"' + name.replace('"', '""') + '"'
            count = con.execute(f"SELECT count({col}) FROM sample").fetchall()[0][0]  # noqa: S608 - quoted identifier
            stats: dict[str, Any] = {
                "dtype": dtype,
                "kind": kind_of(dtype),
                "rows": rows,
                "count": count,
                "nulls": rows - count,
                "null_rate": (rows - count) / rows if rows else 0.0,
            }
            if stats["kind"] == "numeric" and count:
                stats.update(_numeric(con, col))
            elif stats["kind"] == "categorical" and count:
                stats.update(_categorical(con, col))
            out[name] = stats
    finally:
        con.close()
    return out


def _number(value: Any) -> float | int | None:
    if value is None:
        return None
    if isinstance(value, float) and value != value:  # NaN
        return None
    return value


def _numeric(con: Any, col: str) -> dict[str, Any]:
    x = f"CAST({col} AS DOUBLE)"
    quantiles = ", ".join(f"quantile_cont({x}, {q})" for q in PERCENTILES)
    row = con.execute(
        f"SELECT min({x}), max({x}), avg({x}), stddev_samp({x}), {quantiles} FROM sample WHERE {col} IS NOT NULL"  # noqa: S608
    ).fetchall()[0]
    low, high = row[0], row[1]
    stats = {
        "min": _number(low),
        "max": _number(high),
        "mean": _number(row[2]),
        "std": _number(row[3]),
        "percentiles": {f"p{round(q * 100)}": _number(v) for q, v in zip(PERCENTILES, row[4:], strict=True)},
    }
    bins = HISTOGRAM_BINS if high > low else 1
    width = (high - low) / bins if high > low else 1.0
    counts = [0] * bins
    bucket = f"LEAST(CAST(floor(({x} - $low) / $width) AS BIGINT), {bins - 1})"
    for index, n in con.execute(
        f"SELECT {bucket}, count(*) FROM sample WHERE {col} IS NOT NULL GROUP BY 1",  # noqa: S608
        {"low": low, "width": width},
    ).fetchall():
        counts[int(index)] = n
    stats["histogram"] = {
        "edges": [low + i * width for i in range(bins)] + [high if high > low else low + 1],
        "counts": counts,
    }
    return stats


def _categorical(con: Any, col: str) -> dict[str, Any]:
    distinct = con.execute(f"SELECT count(DISTINCT {col}) FROM sample").fetchall()[0][0]  # noqa: S608
    top = con.execute(
        f"SELECT CAST({col} AS VARCHAR), count(*) FROM sample WHERE {col} IS NOT NULL "  # noqa: S608
        f"GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT {TOP_VALUES}"
    ).fetchall()
    return {"distinct": distinct, "top": [{"value": v, "count": n} for v, n in top]}


# -- reading the offline data --------------------------------------------------------


@dataclass
class Scan:
    """A sample of a view's offline rows, with facts about all of them."""

    sample: pa.Table
    rows: int
    oldest: datetime | None
    newest: datetime | None


def _scan_parquet(engine: Any, view: Any, limit: int) -> Scan:
    """DuckDB straight over the Parquet files: exact count and time bounds, a reservoir sample."""
    from serving.offline.resolve import resolve_columns

    files = engine.files(view.source)
    if not files:
        raise FileNotFoundError(f"no offline data found at {view.source.path}")
    scan = "read_parquet($files, union_by_name = true, hive_partitioning = false)"
    with engine.connect() as con:
        schema = con.sql(f"SELECT * FROM {scan} LIMIT 0", params={"files": files}).to_arrow_table().schema  # noqa: S608
        cols = resolve_columns(view, view.feature_names, {f.name: str(f.type) for f in schema})
        ts = f'CAST("{cols.timestamp}" AS TIMESTAMPTZ)'
        rows, oldest, newest = con.execute(
            f"SELECT count(*), min({ts}), max({ts}) FROM {scan}",  # noqa: S608
            {"files": files},
        ).fetchall()[0]
        select = ", ".join(f'"{c}" AS "{f}"' for f, c in zip(view.feature_names, cols.features, strict=True))
        sample = con.sql(
            f"SELECT {select} FROM {scan} USING SAMPLE reservoir({int(limit)} ROWS) REPEATABLE (7)",  # noqa: S608
            params={"files": files},
        ).to_arrow_table()
    return Scan(sample, rows, oldest, newest)


def _scan_stream(engine: Any, view: Any, limit: int) -> Scan:
    """Any engine: its pull_all stream, reservoir-sampled batch by batch."""
    from serving.offline.base import EVENT_TIMESTAMP

    rnd = random.Random(7)  # noqa: S311 - sampling, not secrets
    kept: pa.Table | None = None
    rows = 0
    oldest = newest = None
    for batch in engine.pull_all(view, _EARLIEST, _LATEST):
        if batch.num_rows == 0:
            continue
        rows += batch.num_rows
        times = batch.column(batch.schema.get_field_index(EVENT_TIMESTAMP)).to_pylist()
        times = [t for t in times if t is not None]
        if times:
            oldest = min([t for t in (oldest, min(times)) if t is not None])
            newest = max([t for t in (newest, max(times)) if t is not None])
        table = pa.Table.from_batches([batch]).select(list(view.feature_names))
        kept = table if kept is None else pa.concat_tables([kept, table])
        if kept.num_rows > limit:
            # Keep each row seen so far with equal probability: sample `limit` of them.
            kept = kept.take(sorted(rnd.sample(range(kept.num_rows), limit)))
    if kept is None:
        raise FileNotFoundError(f"no offline data found for {view.source.name}")
    return Scan(kept, rows, oldest, newest)


def _where(view: Any) -> str:
    source = view.source
    return source.path or source.table or (source.query[:80] + "…" if len(source.query) > 80 else source.query)


def online_freshness(feature_view: FeatureView) -> dict[str, Any] | None:
    """Newest event time and row count of the view in the online store, when the store
    can tell with one query (the `sql` store: a scan of its table); None otherwise
    (Redis keeps no per-view index of event times)."""
    from serving.online.registry import get_online_store
    from serving.online.sql import TABLE, SqlOnlineStore

    try:
        store = get_online_store()
        if not isinstance(store, SqlOnlineStore):
            return None
        from django.db import connections

        with connections[store.using].cursor() as cursor:
            cursor.execute(
                f"SELECT max(event_ts), count(*) FROM {TABLE} WHERE project = %s AND view_name = %s",  # noqa: S608
                [feature_view.project.name, feature_view.name],
            )
            newest, rows = cursor.fetchone()
    except Exception as exc:  # an unreachable store is "unknown", not an error page
        log.info("online freshness of view %s unavailable: %s", feature_view.name, exc)
        return None
    when = datetime.fromtimestamp(newest / 1_000_000, UTC) if newest is not None else None
    return {"newest_event": when.isoformat() if when else None, "rows": rows}


def compute_view_statistics(feature_view: FeatureView) -> dict[str, Any]:
    """Read the view's offline data and describe every feature (the cached payload)."""
    from serving.offline.duckdb import DuckDBOfflineEngine
    from serving.offline.registry import engine_for
    from serving.offline.specs import view_spec

    payload: dict[str, Any] = {"features": {}, "online": online_freshness(feature_view)}
    try:
        view = view_spec(feature_view)
        payload["source"] = _where(view)
        engine = engine_for(view.source)
        limit = sample_rows()
        if isinstance(engine, DuckDBOfflineEngine):
            scan = _scan_parquet(engine, view, limit)
        else:
            scan = _scan_stream(engine, view, limit)
        described = describe(scan.sample, list(view.features))
    except Exception as exc:  # every failure becomes a message on the page, never a 500
        log.info("statistics of view %s unavailable: %s", feature_view.name, exc)
        message = str(exc)
        if "does not exist" in message or "no offline data" in message:
            message = f"no offline data found at {payload.get('source') or feature_view.batch_source.path}"
        payload["error"] = message
        return payload
    payload.update(
        rows=scan.rows,
        sample_rows=scan.sample.num_rows,
        sampled=scan.sample.num_rows < scan.rows,
        oldest_event=scan.oldest.isoformat() if scan.oldest else None,
        newest_event=scan.newest.isoformat() if scan.newest else None,
        features=described,
    )
    return payload


# -- the cache -----------------------------------------------------------------------


def recompute_view_statistics(feature_view: FeatureView) -> ViewStatistics:
    """Compute and store the statistics of one view (the button, and materialization)."""
    started = time.perf_counter()
    payload = compute_view_statistics(feature_view)
    row, _ = ViewStatistics.objects.update_or_create(
        feature_view=feature_view,
        defaults={
            "computed_at": timezone.now(),
            "fingerprint": fingerprint(feature_view),
            "payload": payload,
            "duration_ms": int((time.perf_counter() - started) * 1000),
        },
    )
    return row


def current_statistics(feature_view: FeatureView) -> ViewStatistics | None:
    """The cached statistics, if computed for the view as it is defined now."""
    row = ViewStatistics.objects.filter(feature_view=feature_view).first()
    if row is None or row.fingerprint != fingerprint(feature_view):
        return None
    return row


def small_enough(feature_view: FeatureView) -> bool:
    """Whether the view's source is a Parquet source of at most LARDER_STATS_AUTO_ROWS rows
    (read from the files' metadata), so a page may compute its statistics inline."""
    from serving.offline.duckdb import DuckDBOfflineEngine
    from serving.offline.registry import engine_for
    from serving.offline.specs import view_spec

    try:
        view = view_spec(feature_view)
        engine = engine_for(view.source)
        if not isinstance(engine, DuckDBOfflineEngine):
            return False
        files = engine.files(view.source)
        if not files:
            return True  # nothing to read: computing is instant and says so
        with engine.connect() as con:
            rows = con.execute("SELECT sum(num_rows) FROM parquet_file_metadata($files)", {"files": files}).fetchall()[
                0
            ][0]
        return (rows or 0) <= auto_rows()
    except Exception:  # unreadable: computing records the error message, which is instant too
        return True


def statistics_for(feature_view: FeatureView, compute: bool = True) -> ViewStatistics | None:
    """Current statistics of a view; computed now when missing and the source is small."""
    row = current_statistics(feature_view)
    if row is None and compute and small_enough(feature_view):
        row = recompute_view_statistics(feature_view)
    return row
