"""Load the latest row per entity of each feature view's Parquet batch source into the
online store: how the demo gets online data before materialization exists.

It stands in for `materialize` (a later issue) and goes through the same write path as
/write-to-online-store (serving.ingest), so the rows are validated and written
latest-wins exactly as a client's would be.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from serving import ingest, registry_cache
from serving.errors import InvalidRequest
from serving.registry_cache import FeatureViewMeta


@dataclass(frozen=True)
class Seeded:
    view: str
    path: str
    rows_read: int
    entities: int
    written: int


def latest_per_entity(table: pa.Table, key_columns: list[str], ts_column: str, created_column: str = "") -> pa.Table:
    """The newest row of each entity (by event time, ties broken by the created column,
    then by file order); rows without an event time are dropped."""
    table = table.filter(pc.is_valid(table.column(ts_column)))
    order = [(ts_column, "ascending")]
    if created_column and created_column in table.column_names:
        order.append((created_column, "ascending"))
    table = table.sort_by(order)  # stable: equal rows keep file order, the later one wins below
    if not key_columns:  # an entity-less view: one row
        return table.slice(table.num_rows - 1) if table.num_rows else table
    last: dict[tuple, int] = {}
    for i, key in enumerate(zip(*(table.column(k).to_pylist() for k in key_columns), strict=True)):
        last[key] = i
    return table.take(sorted(last.values()))


def seed_view(view: FeatureViewMeta) -> Seeded | None:
    """Seed one view from its file batch source; None when it has none to read."""
    source = view.batch_source
    if source.kind != "file" or not source.path or not Path(source.path).exists():
        return None
    table = pq.read_table(source.path)
    mapping = source.field_mapping
    by_feast_name = {mapping.get(name, name): name for name in table.column_names}
    key_columns = [by_feast_name.get(k, k) for k in view.join_keys]
    missing = [k for k in key_columns if k not in table.column_names]
    if missing or source.timestamp_field not in table.column_names:
        raise InvalidRequest(f"{source.path}: no column(s) {missing or [source.timestamp_field]} for {view.name}")
    latest = latest_per_entity(table, key_columns, source.timestamp_field, source.created_timestamp_column)
    rows = ingest.prepare(view, latest.to_pydict(), source=source, field=Path(source.path).name)
    result = ingest.write(view, rows)
    return Seeded(view.name, source.path, table.num_rows, latest.num_rows, result.written)


def seed_project(project: str, views: list[str] | None = None) -> list[Seeded]:
    """Seed every feature view of `project` (or the named ones) that reads a Parquet file."""
    ref = registry_cache.project_ref(project)
    if ref is None:
        raise InvalidRequest(f"project {project} does not exist")
    snap = registry_cache.snapshot(ref)
    unknown = sorted(set(views or []) - set(snap.feature_views))
    if unknown:
        raise InvalidRequest(f"no feature view(s) {unknown} in project {project}")
    done = []
    for name, view in snap.feature_views.items():
        if views and name not in views:
            continue
        seeded = seed_view(view)
        if seeded is not None:
            done.append(seeded)
    return done
