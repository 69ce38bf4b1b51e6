"""The engine (materialization.engine): the latest row per entity, written through the real
DuckDB engine into the real SQL online store (SQLite), agrees with the plain-Python
reference (tests/offline_reference.py) on random data, whatever the partitioning and the
order the slices run in; chunks bound what is held at once; progress is reported and
can stop a run."""

import random
import tempfile
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from materialization.engine import Progress, entity_buckets, materialize_window, to_online_rows, view_key
from materialization.errors import JobCancelled
from materialization.planning import Window, plan_slices
from serving.offline.duckdb import DuckDBOfflineEngine
from serving.offline.specs import SourceSpec, ViewSpec
from serving.online.codec import to_micros
from serving.online.sql import SqlOnlineStore
from tests import offline_reference as ref
from tests.unit.test_offline_properties import parquet_source

pytestmark = pytest.mark.django_db


class RecordingStore(SqlOnlineStore):
    """The SQL store, noting the size of every batch it is given."""

    def __init__(self) -> None:
        super().__init__()
        self.batches: list[int] = []

    def write_batch(self, view, rows):
        self.batches.append(len(rows))
        return super().write_batch(view, rows)


def online_state(store, view: ViewSpec, keys) -> dict:
    rows = store.read(view_key(view), [{"user_id": k[0]} for k in keys], view.feature_names)
    return {
        key: (row.values.get("v"), row.values.get("f"), row.event_timestamp)
        for key, row in zip(keys, rows, strict=True)
        if row is not None
    }


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
)
@given(
    scenario=ref.scenarios(),
    window=st.tuples(st.integers(-1, 13), st.integers(-1, 13)),
    partitions=st.integers(1, 5),
    by=st.sampled_from(["time", "entity"]),
    batch_rows=st.integers(1, 7),
    seed=st.integers(0, 1000),
)
def test_latest_per_entity_matches_the_reference(scenario, window, partitions, by, batch_rows, seed):
    start, end = ref.at(min(window)), ref.at(max(window)) + timedelta(seconds=30)
    with tempfile.TemporaryDirectory() as tmp:
        (view, _), _ = ref.scenario_views(scenario, parquet_source(Path(tmp), split=False))
        view = replace(view, name=f"users_{uuid.uuid4().hex[:8]}")  # a fresh view in the store per example
        store, engine = RecordingStore(), DuckDBOfflineEngine()
        slices = plan_slices(Window(start, end), partitions, by)
        random.Random(seed).shuffle(slices)  # workers finish partitions in any order
        runs = [
            materialize_window(
                view, s.window, offline=engine, store=store, batch_rows=batch_rows, bucket=(s.bucket, s.buckets)
            )
            for s in slices
        ]
        expected = ref.pull_latest(view, scenario["rows_a"], start, end)
        every_key = {(row["uid" if scenario["mapped"] else "user_id"],) for row in scenario["rows_a"]}
        got = online_state(store, view, sorted(every_key))
        assert set(got) == set(expected)  # every entity with a row in the window, and no other
        for key, value in got.items():
            assert value in expected[key]
        assert all(size <= batch_rows for size in store.batches)
        if by == "entity":  # disjoint buckets: every entity read and written exactly once
            assert sum(r.rows_read for r in runs) == sum(r.rows_written for r in runs) == len(expected)
        else:  # an entity may be read once per slice it has rows in
            assert sum(r.rows_read for r in runs) >= len(expected)


def test_entity_buckets_are_stable_and_spread():
    ints = pa.record_batch({"k": pa.array(range(-500, 9500), pa.int64())})
    buckets = entity_buckets(ints, ("k",), 4).to_pylist()
    assert buckets == entity_buckets(ints, ("k",), 4).to_pylist()  # the same key, the same bucket
    assert all(2300 < buckets.count(b) < 2700 for b in range(4))  # even for sequential ids
    strings = pa.record_batch({"a": pa.array(["x", "y", "x"]), "b": pa.array([1, 1, 1], pa.int32())})
    keyed = entity_buckets(strings, ("a", "b"), 8).to_pylist()
    assert keyed[0] == keyed[2] and all(0 <= b < 8 for b in keyed)


def test_window_ends_are_inclusive_and_rows_outside_are_ignored(tmp_path):
    rows = [
        {"user_id": 1, "ts": ref.at(0), "v": 10, "f": 0.0},
        {"user_id": 1, "ts": ref.at(5), "v": 11, "f": 0.5},  # the window's end: included, wins
        {"user_id": 1, "ts": ref.at(6), "v": 12, "f": 1.0},  # after the window
        {"user_id": 2, "ts": ref.at(2), "v": 20, "f": 2.0},  # the window's start: included
        {"user_id": 3, "ts": ref.at(1), "v": 30, "f": 3.0},  # before the window
    ]
    source = parquet_source(tmp_path, split=False)(
        "s", rows, [("user_id", "int"), ("ts", "ts"), ("v", "int"), ("f", "float")], timestamp_field="ts"
    )
    view = ViewSpec("p", "edges", "", ("user_id",), (("v", "Int64"), ("f", "Float64")), 0, source)
    store = SqlOnlineStore()
    progress = materialize_window(view, Window(ref.at(2), ref.at(5)), offline=DuckDBOfflineEngine(), store=store)
    assert (progress.rows_read, progress.rows_written, progress.rows_skipped) == (2, 2, 0)
    got = online_state(store, view, [(1,), (2,), (3,)])
    assert got == {(1,): (11, 0.5, ref.at(5)), (2,): (20, 2.0, ref.at(2))}
    # Again over a wider, older window: nothing older may replace what is online.
    again = materialize_window(view, Window(ref.at(0), ref.at(5)), offline=DuckDBOfflineEngine(), store=store)
    assert (again.rows_written, again.rows_skipped) == (1, 2)  # only entity 3 is new
    assert online_state(store, view, [(1,)])[(1,)][0] == 11


def test_progress_is_reported_per_chunk_and_can_stop_the_run(tmp_path):
    rows = [{"user_id": i, "ts": ref.at(i % 10), "v": i, "f": float(i)} for i in range(95)]
    source = parquet_source(tmp_path, split=False)(
        "s", rows, [("user_id", "int"), ("ts", "ts"), ("v", "int"), ("f", "float")], timestamp_field="ts"
    )
    view = ViewSpec("p", "progress", "", ("user_id",), (("v", "Int64"), ("f", "Float64")), 0, source)
    store = RecordingStore()
    seen: list[tuple[int, int]] = []
    result = materialize_window(
        view,
        Window(ref.at(0), ref.at(10)),
        offline=DuckDBOfflineEngine(),
        store=store,
        batch_rows=10,
        on_progress=lambda p: seen.append((p.rows_read, p.rows_written)),
    )
    assert store.batches == [10] * 9 + [5]
    assert seen == [(10 * i, 10 * i) for i in range(1, 10)] + [(95, 95)]
    assert result.chunks == 10

    def stop_after_three(progress: Progress) -> None:
        if progress.chunks == 3:
            raise JobCancelled("cancelled")

    stopped = RecordingStore()
    with pytest.raises(JobCancelled):
        materialize_window(
            replace(view, name="stopped"),
            Window(ref.at(0), ref.at(10)),
            offline=DuckDBOfflineEngine(),
            store=stopped,
            batch_rows=10,
            on_progress=stop_after_three,
        )
    assert stopped.batches == [10, 10, 10]  # nothing written after the callback said stop


def _naive(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC).replace(tzinfo=None)


def test_rows_are_converted_for_the_online_store():
    naive = pa.timestamp("us")
    batch = pa.record_batch(
        {
            "k": pa.array([1, 2], pa.int64()),
            "x": pa.array([1.5, None], pa.float32()),
            "when": pa.array([_naive(2026, 1, 1), None], naive),  # a timestamp feature, naive: UTC
            "event_timestamp": pa.array([_naive(2026, 1, 2), _naive(2026, 1, 3)], naive),
            "created": pa.array([datetime(2026, 1, 2, tzinfo=UTC), None], pa.timestamp("us", tz="UTC")),
        }
    )
    view = ViewSpec("p", "v", "", ("k",), (("x", "Float32"), ("when", "UnixTimestamp")), 0, SourceSpec("s", "file"))
    rows = to_online_rows(batch, view)
    assert rows.entity_keys == {"k": [1, 2]}
    assert rows.features["x"] == [1.5, None]
    assert rows.features["when"] == [datetime(2026, 1, 1, tzinfo=UTC), None]
    assert rows.event_timestamps == [datetime(2026, 1, 2, tzinfo=UTC), datetime(2026, 1, 3, tzinfo=UTC)]
    assert rows.created_timestamps is None  # a null created cannot be stored: left out (inspection only)
    with pytest.raises(ValueError, match="returned no column"):
        to_online_rows(batch.drop_columns(["x"]), view)


def _latest(engine: DuckDBOfflineEngine, view: ViewSpec, window: Window, bucket=None) -> dict:
    batches = list(engine.pull_latest(view, window.start, window.end, bucket=bucket))
    rows = pa.Table.from_batches(batches).drop_columns(["created"]).to_pylist() if batches else []  # may be infinite
    return {row[view.join_keys[0]]: row for row in rows}


@pytest.mark.parametrize("key_type", [pa.int64(), pa.int32(), pa.uint16(), pa.string()], ids=str)
def test_duckdb_buckets_hold_the_entities_of_entity_buckets(tmp_path, key_type):
    """pull_latest(bucket=(i, n)) computes the engine's Fibonacci bucket in SQL for one
    integer key: bucket i holds exactly the entities entity_buckets puts in i, and the
    buckets together are the whole read. Other keys: the bucket is ignored (the engine
    filters afterwards)."""
    ids = [-(2**63), -(2**31), -7, -1, 0, 1, 2, 3, 1000, 2**31 - 1, 2**40 + 5, 2**63 - 1]
    if key_type == pa.int32():
        ids = [i for i in ids if -(2**31) <= i < 2**31]
    elif key_type == pa.uint16():
        ids = list(range(0, 65536, 997))
    elif key_type == pa.string():
        ids = [f"k{i}" for i in range(40)]
    table = pa.table(
        {
            "k": pa.array(ids * 2, key_type),
            "ts": pa.array([ref.at(1)] * len(ids) + [ref.at(2)] * len(ids), pa.timestamp("us", tz="UTC")),
            "v": list(range(2 * len(ids))),
        }
    )
    pq.write_table(table, tmp_path / "s.parquet")
    source = SourceSpec("s", "file", path=str(tmp_path / "s.parquet"), timestamp_field="ts")
    view = ViewSpec("p", "b", "", ("k",), (("v", "Int64"),), 0, source)
    engine, window = DuckDBOfflineEngine(), Window(ref.at(0), ref.at(3))
    everything = _latest(engine, view, window)
    assert sorted(everything, key=str) == sorted(ids, key=str)
    assert all(row["v"] >= len(ids) for row in everything.values())  # the later row of each
    for n in (2, 3, 5):
        parts = [_latest(engine, view, window, bucket=(i, n)) for i in range(n)]
        if key_type == pa.string():
            assert all(part == everything for part in parts)
            continue
        assert sum(len(part) for part in parts) == len(ids)
        assert {k: r for part in parts for k, r in part.items()} == everything
        expected = entity_buckets(pa.table({"k": pa.array(ids, key_type)}), ("k",), n).to_pylist()
        for key, bucket in zip(ids, expected, strict=True):
            assert key in parts[bucket]


def test_duckdb_latest_orders_by_event_then_created_at_the_extremes(tmp_path):
    """The (event, created) ordering packed into one HUGEINT keeps the struct's order:
    event first, then created; a null created lowest, +infinity highest; times before
    1970 (negative epoch microseconds) included."""
    far = datetime(1950, 1, 1, tzinfo=UTC)
    infinity = 2**63 - 1  # DuckDB reads this timestamp as 'infinity'
    rows = [  # (key, event, created, v); the winner of each key has v = 1
        (1, ref.at(5), None, 0),
        (1, ref.at(5), ref.at(4), 0),
        (1, ref.at(5), infinity, 1),
        (2, ref.at(5), None, 0),
        (2, ref.at(5), datetime(1900, 1, 1, tzinfo=UTC), 1),
        (3, datetime(1960, 1, 1, tzinfo=UTC), None, 1),
        (3, far, ref.at(9), 0),
        (4, ref.at(5), ref.at(5), 0),
        (4, ref.at(5) + timedelta(microseconds=1), None, 1),
        (5, far, None, 1),
    ]
    micros = pa.array([c if isinstance(c, int) or c is None else to_micros(c) for _, _, c, _ in rows], pa.int64())
    table = pa.table(
        {
            "k": [r[0] for r in rows],
            "ts": pa.array([r[1] for r in rows], pa.timestamp("us", tz="UTC")),
            "created": micros.cast(pa.timestamp("us", tz="UTC")),
            "v": [r[3] for r in rows],
        }
    )
    pq.write_table(table, tmp_path / "s.parquet")
    source = SourceSpec(
        "s", "file", path=str(tmp_path / "s.parquet"), timestamp_field="ts", created_timestamp_column="created"
    )
    view = ViewSpec("p", "x", "", ("k",), (("v", "Int64"),), 0, source)
    got = _latest(DuckDBOfflineEngine(), view, Window(far, ref.at(10)))
    assert {k: r["v"] for k, r in got.items()} == {1: 1, 2: 1, 3: 1, 4: 1, 5: 1}
    assert got[3]["event_timestamp"] == datetime(1960, 1, 1, tzinfo=UTC)
