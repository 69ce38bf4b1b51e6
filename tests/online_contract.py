"""The online store contract, one set of tests run on every backend.

A tier subclasses `OnlineStoreContract` and provides two fixtures:

- `store`: an empty OnlineStore;
- `round_trips`: a function returning a context manager that yields a counter whose
  `.count` is the number of round trips (SQL statements, Redis socket writes) made
  inside the block.

tests/unit runs it on SQLite, tests/integration on PostgreSQL and real Redis.
"""

from __future__ import annotations

import math
import random
import struct
import threading
from datetime import UTC, datetime, timedelta, timezone

import pyarrow as pa
import pytest

from serving.online import OnlineRows, OnlineStore, ViewKey, WriteResult

T0 = datetime(2025, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)
DRIVERS = ViewKey("proj", "driver_stats", ("driver_id",))


def f32(x: float) -> float:
    """The Python float a Float32 column holds (what Arrow's to_pylist gives)."""
    return struct.unpack("<f", struct.pack("<f", x))[0]


# One row per dtype case: feature name -> (value of row 1, value of row 2).
DTYPE_VALUES = {
    "int32": (2**31 - 1, -(2**31)),
    "int64": (2**62, -(2**63)),
    "int64_max": (2**63 - 1, 0),
    "float32": (f32(0.1), f32(-3.4e38)),
    "float64": (0.1, 5e-324),
    "float64_big": (1e308, -0.0),
    "float_integral": (1.0, -2.0),
    "float_special": (math.inf, -math.inf),
    "string": ("ünïcødé ✓ 🚕", ""),
    "string_json_like": ('{"b": "x"}', "null"),
    "bytes": (b"\x00\xff\x80 raw", b""),
    "bool": (True, False),
    "timestamp": (datetime(2024, 2, 29, 23, 59, 59, 999999, tzinfo=UTC), datetime(1969, 7, 20, 20, 17, tzinfo=UTC)),
    "int64_list": ([1, 2**62, -(2**63)], []),
    "float32_list": ([f32(0.1), f32(1.5)], [math.nan]),
    "float64_list": ([0.1, None, 2.5], [1e-300]),
    "string_list": (["a", "ü", ""], [None]),
    "bytes_list": ([b"\x00", b"\xff"], []),
    "bool_list": ([True, False, True], [False]),
    "timestamp_list": ([datetime(2020, 1, 1, tzinfo=UTC)], [datetime(2030, 6, 1, 0, 0, 0, 1, tzinfo=UTC)]),
    "null": (None, None),
}


def arrow_batch() -> pa.Table:
    """A pull_latest-like batch: 7 rows, 5 entities (1 and 2 twice: 1's later row is the
    newer, 2's rows tie), a created column, and one column per Arrow type."""
    f32_values = [f32(0.1), None, f32(-3.4e38), math.nan, -math.inf, 0.0, f32(1.5)]
    times = [T0, T0 + timedelta(seconds=1), T0, T0, datetime(1969, 7, 20, tzinfo=UTC), T0, T0]
    return pa.table(
        {
            "driver_id": [1, 1, 2, 2, -(2**63), 2**63 - 1, 0],
            "i8": pa.array([1, -128, 127, None, 0, 5, 6], pa.int8()),
            "i64": [2**62, -(2**63), None, 2**63 - 1, 0, -1, 1],
            "u64": pa.array([2**64 - 1, 0, None, 1, 2, 3, 4], pa.uint64()),
            "f32": pa.array(f32_values, pa.float32()),
            "f64": [0.1, 5e-324, -0.0, math.inf, None, 1e308, 1.0],
            "b": [True, False, None, True, False, True, False],
            "s": ["ünï", "", None, '{"b": "x"}', "null", "a,b", "[1]"],
            "bin": [b"\x00\xff", b"", None, b"x", b"y", b"z", b"w"],
            "ts": pa.array([T0, None, T0, T0, T0, T0, T0], pa.timestamp("us", tz="UTC")),
            "ts_naive": pa.array([T0.replace(tzinfo=None)] * 7, pa.timestamp("us")),
            "ints": [[1, 2**62], [], None, [None], [1], [2], [3]],
            "floats": pa.array([[f32(0.1), math.nan], [], None, [1.5], [0.0], [2.0], [-1.0]], pa.list_(pa.float32())),
            "null": pa.nulls(7),
            "event_timestamp": pa.array(times, pa.timestamp("us", tz="UTC")),
            "created": pa.array([T0] * 7, pa.timestamp("us", tz="UTC")),
        }
    )


def arrow_rows(table: pa.Table, names: list[str]) -> OnlineRows:
    """The same rows as OnlineRows, built by hand (Python values; timestamps aware UTC)."""

    def utc(value):
        return value.replace(tzinfo=UTC) if isinstance(value, datetime) and value.tzinfo is None else value

    return rows_of(
        {"driver_id": table.column("driver_id").to_pylist()},
        {name: [utc(v) for v in table.column(name).to_pylist()] for name in names},
        table.column("event_timestamp").to_pylist(),
    )


def rows_of(entities, features, timestamps, created=None) -> OnlineRows:
    return OnlineRows(entity_keys=entities, features=features, event_timestamps=timestamps, created_timestamps=created)


def one_feature(ids, values, timestamps, name="v") -> OnlineRows:
    return rows_of([{"driver_id": i} for i in ids], {name: list(values)}, list(timestamps))


def value_of(store: OnlineStore, view: ViewKey, driver_id, feature="v"):
    (row,) = store.read(view, [{"driver_id": driver_id}], [feature])
    return None if row is None else row.values.get(feature)


def same(got, expected) -> bool:
    """Equal in value and type (1 is not 1.0, True is not 1), NaN equal to NaN, -0.0 signed."""
    if isinstance(expected, list):
        return isinstance(got, list) and len(got) == len(expected) and all(map(same, got, expected))
    if isinstance(expected, float) and math.isnan(expected):
        return isinstance(got, float) and math.isnan(got)
    if isinstance(expected, float):
        return type(got) is float and got == expected and math.copysign(1, got) == math.copysign(1, expected)
    return type(got) is type(expected) and got == expected


class OnlineStoreContract:
    """What every online store must do (serving/online/base.py)."""

    # --- values -----------------------------------------------------------------

    def test_every_dtype_round_trips_exactly(self, store):
        names = list(DTYPE_VALUES)
        features = {name: list(pair) for name, pair in DTYPE_VALUES.items()}
        result = store.write_batch(DRIVERS, rows_of([{"driver_id": 1}, {"driver_id": 2}], features, [T0, T0]))
        assert result == WriteResult(written=2, skipped=0)

        first, second = store.read(DRIVERS, [{"driver_id": 1}, {"driver_id": 2}], names)
        for row, index in ((first, 0), (second, 1)):
            assert set(row.values) == set(names)
            for name in names:
                expected = DTYPE_VALUES[name][index]
                assert same(row.values[name], expected), (name, row.values[name], expected)

    def test_null_values_read_back_as_none_and_unwritten_features_are_absent(self, store):
        store.write_batch(DRIVERS, rows_of([{"driver_id": 1}], {"a": [None], "b": [5]}, [T0]))
        (row,) = store.read(DRIVERS, [{"driver_id": 1}], ["a", "b", "never_written"])
        assert row.values == {"a": None, "b": 5}
        assert "never_written" not in row.values

    def test_only_requested_features_are_returned(self, store):
        store.write_batch(DRIVERS, rows_of([{"driver_id": 1}], {"a": [1], "b": [2], "c": [3]}, [T0]))
        (row,) = store.read(DRIVERS, [{"driver_id": 1}], ["c", "a"])
        assert row.values == {"c": 3, "a": 1}
        (row,) = store.read(DRIVERS, [{"driver_id": 1}], [])
        assert row.values == {}
        assert row.event_timestamp == T0

    def test_event_timestamp_is_exact_and_utc(self, store):
        plus_two = datetime(2025, 3, 1, 14, 0, 0, 123457, tzinfo=timezone(timedelta(hours=2)))
        store.write_batch(DRIVERS, one_feature([1, 2], [1, 2], [T0, plus_two]))
        first, second = store.read(DRIVERS, [{"driver_id": 1}, {"driver_id": 2}], ["v"])
        assert first.event_timestamp == T0
        assert first.event_timestamp.utcoffset() == timedelta(0)
        assert second.event_timestamp == T0 + timedelta(microseconds=1)

    def test_a_bad_value_or_timestamp_writes_nothing(self, store):
        ids = list(range(3000))
        values = list(range(3000))
        values[2500] = object()
        with pytest.raises(ValueError, match="feature value type"):
            store.write_batch(DRIVERS, one_feature(ids, values, [T0] * 3000))
        naive = [T0] * 3000
        naive[2999] = datetime(2025, 1, 1)  # noqa: DTZ001 - the point of the test
        with pytest.raises(ValueError, match="naive"):
            store.write_batch(DRIVERS, one_feature(ids, range(3000), naive))
        assert store.count(DRIVERS) == 0

    def test_rows_need_one_value_per_row(self, store):
        with pytest.raises(ValueError, match="one value per row"):
            one_feature([1, 2], [1], [T0, T0])

    # --- keys -------------------------------------------------------------------

    def test_missing_entity_reads_none_in_request_order(self, store):
        store.write_batch(DRIVERS, one_feature([1, 3], ["one", "three"], [T0, T0]))
        rows = store.read(DRIVERS, [{"driver_id": i} for i in (3, 2, 1, 3, 99)], ["v"])
        assert [None if r is None else r.values["v"] for r in rows] == ["three", None, "one", "three", None]
        assert store.read(ViewKey("proj", "empty_view", ("driver_id",)), [{"driver_id": 1}], ["v"]) == [None]
        assert store.read(DRIVERS, [], ["v"]) == []

    def test_compound_join_keys_ignore_order(self, store):
        view = ViewKey("proj", "trips", ("driver_id", "customer_id"))
        assert view == ViewKey("proj", "trips", ("customer_id", "driver_id"))
        entities = [{"driver_id": 1, "customer_id": "c1"}, {"customer_id": "c2", "driver_id": 1}]
        store.write_batch(view, rows_of(entities, {"v": [10, 20]}, [T0, T0]))
        columnar = {"customer_id": ["c3"], "driver_id": [1]}
        store.write_batch(view, rows_of(columnar, {"v": [30]}, [T0]))

        keys = [{"customer_id": "c1", "driver_id": 1}, {"driver_id": 1, "customer_id": "c2", "extra": "ignored"}]
        keys += [{"driver_id": 1, "customer_id": "c3"}, {"driver_id": 2, "customer_id": "c1"}]
        rows = store.read(view, keys, ["v"])
        assert [None if r is None else r.values["v"] for r in rows] == [10, 20, 30, None]
        with pytest.raises(ValueError, match="customer_id"):
            store.read(view, [{"driver_id": 1}], ["v"])

    def test_key_types_matter_and_strings_are_not_confused(self, store):
        view = ViewKey("proj", "by_name", ("name",))
        names = ["1001", 1001, 'a",b=c', "a", b"a", "é"]
        store.write_batch(view, rows_of([{"name": n} for n in names], {"v": list(range(6))}, [T0] * 6))
        rows = store.read(view, [{"name": n} for n in names], ["v"])
        assert [r.values["v"] for r in rows] == list(range(6))
        assert store.count(view) == 6

    def test_a_view_without_entities_holds_one_row(self, store):
        view = ViewKey("proj", "global_stats", ())
        store.write_batch(view, rows_of([{}, {}], {"v": [1, 2]}, [T0, T0 + timedelta(seconds=1)]))
        (row,) = store.read(view, [{}], ["v"])
        assert row.values == {"v": 2}

    # --- latest wins ------------------------------------------------------------

    def test_older_and_equal_writes_are_skipped_newer_applied(self, store):
        assert store.write_batch(DRIVERS, one_feature([1], ["first"], [T0])) == WriteResult(1, 0)
        assert store.write_batch(DRIVERS, one_feature([1], ["older"], [T0 - timedelta(microseconds=1)])) == (
            WriteResult(0, 1)
        )
        assert store.write_batch(DRIVERS, one_feature([1], ["equal"], [T0])) == WriteResult(0, 1)
        assert value_of(store, DRIVERS, 1) == "first"
        assert store.write_batch(DRIVERS, one_feature([1], ["newer"], [T0 + timedelta(microseconds=1)])) == (
            WriteResult(1, 0)
        )
        (row,) = store.read(DRIVERS, [{"driver_id": 1}], ["v"])
        assert row.values == {"v": "newer"}
        assert row.event_timestamp == T0 + timedelta(microseconds=1)

    def test_within_a_batch_the_latest_row_wins_and_ties_go_to_the_later_row(self, store):
        later = T0 + timedelta(hours=1)
        ids = [1, 1, 1, 2, 2, 3, 3]
        values = ["newest", "old", "older", "tie-first", "tie-second", "x", "y"]
        times = [later, T0, T0 - timedelta(hours=1), T0, T0, T0, later]
        result = store.write_batch(DRIVERS, one_feature(ids, values, times))
        assert result == WriteResult(written=3, skipped=4)
        assert [value_of(store, DRIVERS, i) for i in (1, 2, 3)] == ["newest", "tie-second", "y"]

    def test_mixed_batch_against_stored_rows(self, store):
        store.write_batch(DRIVERS, one_feature([1, 2], ["a1", "a2"], [T0, T0]))
        result = store.write_batch(
            DRIVERS, one_feature([1, 2, 3], ["b1", "b2", "b3"], [T0 + timedelta(seconds=1), T0, T0])
        )
        assert result == WriteResult(written=2, skipped=1)
        assert [value_of(store, DRIVERS, i) for i in (1, 2, 3)] == ["b1", "a2", "b3"]

    def test_a_newer_write_replaces_nulls_and_values(self, store):
        store.write_batch(DRIVERS, rows_of([{"driver_id": 1}], {"a": [None], "b": [[1, 2]]}, [T0]))
        store.write_batch(DRIVERS, rows_of([{"driver_id": 1}], {"a": [1.5], "b": [None]}, [T0 + timedelta(1)]))
        (row,) = store.read(DRIVERS, [{"driver_id": 1}], ["a", "b"])
        assert row.values == {"a": 1.5, "b": None}

    def test_empty_batch_writes_nothing(self, store):
        assert store.write_batch(DRIVERS, one_feature([], [], [])) == WriteResult(0, 0)

    # --- Arrow batches (write_arrow: what materialization uses) ---------------------

    def test_write_arrow_stores_what_write_batch_stores(self, store):
        """Every Arrow type a feature column can have, with nulls, NaN, infinities, -0.0,
        extremes, duplicate keys (latest wins, ties to the later row): read back the same
        as the same rows given to write_batch, with the same counts."""
        table = arrow_batch()
        by_rows = ViewKey("proj", "by_rows", ("driver_id",))
        by_arrow = ViewKey("proj", "by_arrow", ("driver_id",))
        names = [n for n in table.column_names if n not in ("driver_id", "event_timestamp", "created")]
        expected = store.write_batch(by_rows, arrow_rows(table, names))
        assert expected == WriteResult(written=5, skipped=2)
        assert store.write_arrow(by_arrow, table, names) == expected
        ids = [{"driver_id": i} for i in (-(2**63), 0, 1, 2, 2**63 - 1, 7)]
        for want, got in zip(store.read(by_rows, ids, names), store.read(by_arrow, ids, names), strict=True):
            if want is None:
                assert got is None
                continue
            assert got.event_timestamp == want.event_timestamp
            assert set(got.values) == set(want.values) == set(names)
            for name in names:
                assert same(got.values[name], want.values[name]), (name, got.values[name], want.values[name])
        assert store.write_arrow(by_arrow, table, names) == WriteResult(0, 7)  # all stored already
        assert store.write_arrow(by_arrow, table.slice(0, 0), names) == WriteResult(0, 0)

    def test_write_arrow_keys_compound_string_and_none(self, store):
        trips = ViewKey("proj", "trips", ("driver_id", "customer_id"))
        batch = pa.table(
            {
                "customer_id": ["c1", 'c"2'],
                "driver_id": pa.array([1, 1], pa.int32()),
                "v": [1.5, None],
                "event_timestamp": pa.array([T0, T0], pa.timestamp("us", tz="UTC")),
            }
        )
        assert store.write_arrow(trips, batch, ["v"]) == WriteResult(2, 0)
        rows = store.read(trips, [{"driver_id": 1, "customer_id": 'c"2'}, {"driver_id": 1, "customer_id": "c1"}], ["v"])
        assert [r.values for r in rows] == [{"v": None}, {"v": 1.5}]
        everyone = ViewKey("proj", "global_stats", ())
        batch = pa.table({"v": [1, 2], "event_timestamp": pa.array([T0, T0 + timedelta(1)], pa.timestamp("us"))})
        assert store.write_arrow(everyone, batch, ["v"]) == WriteResult(1, 1)
        (row,) = store.read(everyone, [{}], ["v"])
        assert row.values == {"v": 2}
        assert row.event_timestamp == T0 + timedelta(1)  # a naive event column reads as UTC

    def test_write_arrow_rejects_bad_batches_and_writes_nothing(self, store):
        good = {"driver_id": [1, 2], "v": [1, 2], "event_timestamp": pa.array([T0, T0], pa.timestamp("us", tz="UTC"))}
        with pytest.raises(ValueError, match="no column"):
            store.write_arrow(DRIVERS, pa.table(good), ["v", "w"])
        with pytest.raises(ValueError, match="without an event timestamp"):
            store.write_arrow(DRIVERS, pa.table({**good, "event_timestamp": pa.array([T0, None])}), ["v"])
        with pytest.raises(ValueError, match="entity key"):
            store.write_arrow(DRIVERS, pa.table({**good, "driver_id": [1, None]}), ["v"])
        with pytest.raises(ValueError):
            store.write_arrow(DRIVERS, pa.table({**good, "v": pa.array([1, 2], pa.duration("s"))}), ["v"])
        assert store.count(DRIVERS) == 0

    # --- views and projects -----------------------------------------------------

    def test_views_sharing_entities_are_independent(self, store):
        hourly = ViewKey("proj", "hourly", ("driver_id",))
        daily = ViewKey("proj", "daily", ("driver_id",))
        store.write_batch(hourly, one_feature([1, 2], [10, 20], [T0, T0], name="trips"))
        store.write_batch(daily, one_feature([1], [100], [T0 - timedelta(days=1)], name="trips"))
        # Latest-wins is per view: an older daily row does not lose to the newer hourly one.
        assert value_of(store, hourly, 1, "trips") == 10
        assert value_of(store, daily, 1, "trips") == 100
        assert value_of(store, daily, 2, "trips") is None
        store.write_batch(daily, one_feature([1], [101], [T0 - timedelta(hours=1)], name="trips"))
        assert value_of(store, daily, 1, "trips") == 101
        assert value_of(store, hourly, 1, "trips") == 10
        (row,) = store.read(hourly, [{"driver_id": 1}], ["trips"])
        assert row.event_timestamp == T0

    def test_projects_are_isolated(self, store):
        a, b = ViewKey("alpha", "stats", ("driver_id",)), ViewKey("beta", "stats", ("driver_id",))
        store.write_batch(a, one_feature([1], ["in alpha"], [T0]))
        assert value_of(store, b, 1) is None
        store.write_batch(b, one_feature([1], ["in beta"], [T0 - timedelta(days=1)]))
        assert (value_of(store, a, 1), value_of(store, b, 1)) == ("in alpha", "in beta")
        assert store.delete_view(b) == 1
        assert (value_of(store, a, 1), value_of(store, b, 1)) == ("in alpha", None)

    def test_delete_view_removes_only_that_view(self, store):
        hourly = ViewKey("proj", "hourly", ("driver_id",))
        hourly_elsewhere = ViewKey("other", "hourly", ("driver_id",))
        daily = ViewKey("proj", "daily", ("driver_id",))
        # A view whose name starts with the other's: field prefixes must not match it.
        hourly_2 = ViewKey("proj", "hourly_2", ("driver_id",))
        for view in (hourly, hourly_elsewhere, daily, hourly_2):
            store.write_batch(view, one_feature([1, 2, 3], [1, 2, 3], [T0] * 3))
        store.write_batch(hourly, one_feature([4], [4], [T0]))

        assert store.delete_view(hourly) == 4
        assert store.count(hourly) == 0
        assert store.read(hourly, [{"driver_id": i} for i in (1, 4)], ["v"]) == [None, None]
        assert [store.count(v) for v in (hourly_elsewhere, daily, hourly_2)] == [3, 3, 3]
        assert value_of(store, daily, 1) == 1
        assert value_of(store, hourly_2, 3) == 3
        assert store.delete_view(hourly) == 0
        # After a delete, any timestamp is accepted again.
        store.write_batch(hourly, one_feature([1], ["back"], [T0 - timedelta(days=365)]))
        assert value_of(store, hourly, 1) == "back"

    def test_count(self, store):
        assert store.count(DRIVERS) == 0
        store.write_batch(DRIVERS, one_feature(range(50), range(50), [T0] * 50))
        store.write_batch(DRIVERS, one_feature(range(25, 75), range(50), [T0 + timedelta(1)] * 50))
        assert store.count(DRIVERS) == 75
        assert store.count(ViewKey("proj", "other", ("driver_id",))) == 0

    # --- scale and health -------------------------------------------------------

    def test_large_batch_takes_a_bounded_number_of_round_trips(self, store, round_trips):
        n = 10_000
        features = {f"f{j}": [float(i * 10 + j) for i in range(n)] for j in range(10)}
        features["name"] = [f"driver-{i}" for i in range(n)]
        rows = rows_of({"driver_id": list(range(n))}, features, [T0] * n)
        with round_trips() as writes:
            assert store.write_batch(DRIVERS, rows) == WriteResult(n, 0)
        with round_trips() as again:
            assert store.write_batch(DRIVERS, rows) == WriteResult(0, n)

        ids = random.Random(7).sample(range(n + 500), n)
        with round_trips() as reads:
            got = store.read(DRIVERS, [{"driver_id": i} for i in ids], ["f3", "name"])
        for i, row in zip(ids, got, strict=True):
            assert (row is None) if i >= n else (row.values == {"f3": float(i * 10 + 3), "name": f"driver-{i}"})
        # Per-row round trips would be 10,000; a chunked store makes tens.
        assert 0 < writes.count <= 30, writes.count
        assert 0 < again.count <= 30, again.count
        assert 0 < reads.count <= 30, reads.count
        assert store.count(DRIVERS) == n

    def test_ping_answers(self, store):
        assert store.ping() is None
        assert store.describe()


def write_concurrently(
    store: OnlineStore, view: ViewKey, *, entities: int = 200, rounds: int = 30, after_thread=None, arrow=False
) -> None:
    """Two threads write the same entities with interleaved timestamps (one even, one
    odd microseconds, in shuffled orders, batches of 50; through write_arrow with
    `arrow`); afterwards every entity holds the newest value either thread wrote for it."""
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []
    newest: list[dict[int, int]] = [{}, {}]

    def writer(parity: int) -> None:
        rng = random.Random(parity)
        try:
            barrier.wait()
            for step in range(rounds):
                ids = list(range(entities))
                rng.shuffle(ids)
                micros = [2 * (step * entities + rng.randrange(entities)) + parity for _ in ids]
                for i, m in zip(ids, micros, strict=True):
                    newest[parity][i] = max(newest[parity].get(i, -1), m)
                times = [T0 + timedelta(microseconds=m) for m in micros]
                for start in range(0, entities, 50):
                    part = slice(start, start + 50)
                    if arrow:
                        batch = pa.table({"driver_id": ids[part], "v": micros[part], "event_timestamp": times[part]})
                        store.write_arrow(view, batch, ["v"])
                    else:
                        store.write_batch(view, one_feature(ids[part], micros[part], times[part]))
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)
        finally:
            if after_thread is not None:
                after_thread()

    threads = [threading.Thread(target=writer, args=(parity,)) for parity in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    rows = store.read(view, [{"driver_id": i} for i in range(entities)], ["v"])
    expected = [max(newest[0][i], newest[1][i]) for i in range(entities)]
    assert [row.values["v"] for row in rows] == expected
    assert [(row.event_timestamp - T0) // timedelta(microseconds=1) for row in rows] == expected
