"""The DuckDB engine and the retrieval entry point on hand-made cases: feast-reference
§2.2's verified matrix, bad input (each error names the column or object), window reads,
and appends read back."""

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from serving.offline.base import OfflineEngineError, OfflineInputError
from serving.offline.duckdb import APPENDED_SUFFIX, DuckDBOfflineEngine
from serving.offline.retrieval import get_historical_features
from serving.offline.specs import SourceSpec, ViewSpec


def at(hour: int, minute: int = 0, day: int = 1) -> datetime:
    return datetime(2024, 1, day, hour, minute, tzinfo=UTC)


def naive(value: datetime) -> datetime:
    return value.replace(tzinfo=None)


@pytest.fixture
def engine() -> DuckDBOfflineEngine:
    return DuckDBOfflineEngine()


@pytest.fixture
def matrix_source(tmp_path) -> SourceSpec:
    """feast-reference §2.2: user 1 at 10:00 v=1, 11:00 v=2 (created 11:00), 11:00 v=3
    (created 12:00); user 3 at 01:00 v=30. Source columns are mapped (uid -> user_id)
    and the event time is naive (read as UTC)."""
    table = pa.table(
        {
            "uid": [1, 1, 1, 3],
            "ts": pa.array([naive(at(10)), naive(at(11)), naive(at(11)), naive(at(1))], pa.timestamp("ns")),
            "created": pa.array([at(10), at(11), at(12), None], pa.timestamp("us", tz="UTC")),
            "value": [1, 2, 3, 30],
        }
    )
    pq.write_table(table, tmp_path / "users.parquet")
    return SourceSpec(
        "users",
        "file",
        path=str(tmp_path / "users.parquet"),
        timestamp_field="ts",
        created_timestamp_column="created",
        field_mapping={"uid": "user_id", "value": "v"},
    )


def view(source: SourceSpec, name: str = "fv", ttl: int = 7200, alias: str = "", keys=("user_id",)) -> ViewSpec:
    return ViewSpec("p", name, alias, keys, (("v", "Int64"),), ttl, source)


MATRIX = [
    # (user, time, fv (ttl 2h), fv0 (ttl 0))
    (1, at(10, 30), 1, 1),
    (1, at(11), 3, 3),  # tie on ts: the later created wins
    (1, at(9), None, None),  # before any row: kept, nulls
    (1, at(20), None, 3),  # outside the 2h ttl
    (2, at(10, 30), None, None),  # no data
    (1, at(10, 30), 1, 1),  # duplicate entity row: kept
    (3, at(23), None, 30),  # only an old row
    (1, at(13), 3, 3),  # exactly T - ttl: inclusive
    (1, at(10), 1, 1),  # exactly at T: inclusive
]


@pytest.mark.parametrize("through", ["asof", "hash", "retrieval"])
def test_verified_matrix(matrix_source, through):
    entity = pa.table(
        {
            "user_id": [u for u, *_ in MATRIX],
            "event_timestamp": [t for _, t, *_ in MATRIX],
            "label": list(range(len(MATRIX))),
        }
    )
    views = [(view(matrix_source, "fv", 7200), ["v"]), (view(matrix_source, "fv0", 0), ["v"])]
    if through != "retrieval":
        result = DuckDBOfflineEngine(join_strategy=through).get_historical_features(entity, views, True)
    else:
        result = get_historical_features(entity, views, full_feature_names=True)
    assert result.column_names == ["user_id", "event_timestamp", "label", "fv__v", "fv0__v"]
    assert result.column("label").to_pylist() == list(range(len(MATRIX)))
    assert result.column("fv__v").to_pylist() == [fv for *_, fv, _ in MATRIX]
    assert result.column("fv0__v").to_pylist() == [fv0 for *_, fv0 in MATRIX]
    assert result.schema.field("event_timestamp").type == pa.timestamp("us", tz="UTC")


def test_naive_entity_times_are_utc_and_other_timestamp_names_are_inferred(matrix_source):
    entity = pa.table({"user_id": [1, 1], "asof": pa.array([naive(at(10, 30)), naive(at(11))], pa.timestamp("ns"))})
    result = get_historical_features(entity, [(view(matrix_source), ["v"])], full_feature_names=False)
    assert result.column_names == ["user_id", "asof", "v"]
    assert result.column("v").to_pylist() == [1, 3]
    assert result.column("asof").to_pylist() == [at(10, 30), at(11)]


def test_iso_strings_as_entity_times(matrix_source):
    entity = pa.table({"user_id": [1, 1], "event_timestamp": ["2024-01-01T10:30:00Z", "2024-01-01 13:00:01"]})
    result = get_historical_features(entity, [(view(matrix_source), ["v"])], False)
    assert result.column("v").to_pylist() == [1, None]


def test_alias_names_full_feature_names(matrix_source):
    entity = pa.table({"user_id": [1], "event_timestamp": [at(12)]})
    views = [(view(matrix_source, alias="recent"), ["v"]), (view(matrix_source, "fv0", 0), ["v"])]
    result = get_historical_features(entity, views, True)
    assert result.column_names[-2:] == ["recent__v", "fv0__v"]


def test_views_keyed_by_different_entities_from_different_sources(tmp_path, matrix_source):
    pq.write_table(
        pa.table({"merchant_id": ["m1", "m1"], "ts": [at(9), at(10)], "score": [0.5, 0.7]}), tmp_path / "m.parquet"
    )
    merchants = SourceSpec("m", "file", path=str(tmp_path / "m.parquet"), timestamp_field="ts")
    mview = ViewSpec("p", "merchant_fv", "", ("merchant_id",), (("score", "Float64"),), 0, merchants)
    entity = pa.table(
        {"merchant_id": ["m1", "m2", "m1"], "user_id": [1, 1, 3], "event_timestamp": [at(9, 30), at(11), at(23)]}
    )
    result = get_historical_features(entity, [(mview, ["score"]), (view(matrix_source, ttl=0), ["v"])], False)
    assert result.column_names == ["merchant_id", "user_id", "event_timestamp", "score", "v"]
    assert result.column("score").to_pylist() == [0.5, None, 0.7]
    assert result.column("v").to_pylist() == [None, 3, 30]


# -- bad input ---------------------------------------------------------------------------


def entity_for(**columns) -> pa.Table:
    return pa.table(columns)


@pytest.mark.parametrize(
    ("entity", "message"),
    [
        (entity_for(user_id=[1]), "no event timestamp"),
        (entity_for(user_id=[1], a=[at(1)], b=[at(2)]), "several timestamp columns (a, b)"),
        (entity_for(event_timestamp=[at(1)]), "no column 'user_id', a join key of feature view 'fv'"),
        (entity_for(user_id=pa.array([], pa.int64()), event_timestamp=pa.array([], pa.timestamp("us"))), "no rows"),
        (entity_for(user_id=[1], event_timestamp=[5]), "'event_timestamp' must hold timestamps"),
        (entity_for(user_id=[1], event_timestamp=["yesterday"]), "'event_timestamp': 'yesterday' is not an ISO 8601"),
        (entity_for(user_id=[1], event_timestamp=pa.array([None], pa.timestamp("us"))), "1 empty value"),
        (entity_for(user_id=["abc"], event_timestamp=[at(1)]), "join key 'user_id'"),
        (entity_for(user_id=[1], v=[2], event_timestamp=[at(1)]), "named 'v' in the output, like an entity"),
    ],
)
def test_bad_entity_tables_are_named(matrix_source, entity, message):
    with pytest.raises(OfflineInputError, match=".*".join(map(_escape, message.split("*")))):
        get_historical_features(entity, [(view(matrix_source), ["v"])], False)


def _escape(text: str) -> str:
    import re

    return re.escape(text)


def test_feature_name_clash_needs_full_names(matrix_source):
    entity = entity_for(user_id=[1], event_timestamp=[at(11)])
    views = [(view(matrix_source, "a"), ["v"]), (view(matrix_source, "b"), ["v"])]
    with pytest.raises(OfflineInputError, match=r"features a:v and b:v are both named 'v' \(use full_feature_names"):
        get_historical_features(entity, views, False)
    assert get_historical_features(entity, views, True).column_names[-2:] == ["a__v", "b__v"]


def test_unknown_feature_and_missing_source_columns(tmp_path, matrix_source):
    entity = entity_for(user_id=[1], event_timestamp=[at(11)])
    with pytest.raises(OfflineInputError, match="feature view 'fv' has no feature 'nope'"):
        get_historical_features(entity, [(view(matrix_source), ["nope"])], False)
    with pytest.raises(OfflineInputError, match="no features requested from feature view 'fv'"):
        get_historical_features(entity, [(view(matrix_source), [])], False)

    pq.write_table(pa.table({"user_id": [1], "ts": [at(1)]}), tmp_path / "thin.parquet")
    thin = SourceSpec("thin", "file", path=str(tmp_path / "thin.parquet"), timestamp_field="ts")
    with pytest.raises(OfflineInputError, match=r"data source 'thin' has no column 'v' \(feature 'v' of feature view"):
        get_historical_features(entity, [(view(thin), ["v"])], False)
    no_ts = SourceSpec("thin", "file", path=str(tmp_path / "thin.parquet"), timestamp_field="when")
    with pytest.raises(OfflineInputError, match="data source 'thin' has no column 'when'"):
        get_historical_features(entity, [(view(no_ts), ["v"])], False)
    bad_ts = SourceSpec("thin", "file", path=str(tmp_path / "thin.parquet"), timestamp_field="user_id")
    with pytest.raises(OfflineInputError, match="timestamp_field column 'user_id' holds int64, not timestamps"):
        get_historical_features(entity, [(view(bad_ts), ["v"])], False)
    missing = SourceSpec("gone", "file", path=str(tmp_path / "gone.parquet"), timestamp_field="ts")
    with pytest.raises(OfflineEngineError, match=r"data source 'gone'.*does not exist"):
        get_historical_features(entity, [(view(missing), ["v"])], False)


# -- window reads ----------------------------------------------------------------------


def collect(batches) -> list[dict]:
    return [row for batch in batches for row in batch.to_pylist()]


def test_pull_latest_inclusive_window_latest_per_entity_ties_by_created(matrix_source, engine):
    rows = collect(engine.pull_latest(view(matrix_source), at(1), at(11)))
    assert sorted(rows, key=lambda r: r["user_id"]) == [
        {"user_id": 1, "v": 3, "event_timestamp": at(11), "created": at(12)},
        {"user_id": 3, "v": 30, "event_timestamp": at(1), "created": None},
    ]
    # end excludes 11:00 by one microsecond: the 10:00 row is the latest
    rows = collect(engine.pull_latest(view(matrix_source), at(1, 0), at(11) - timedelta(microseconds=1)))
    assert {r["user_id"]: r["v"] for r in rows} == {1: 1, 3: 30}
    # start excludes 01:00 by one microsecond; naive bounds are UTC
    rows = collect(engine.pull_latest(view(matrix_source), naive(at(1)) + timedelta(microseconds=1), naive(at(23))))
    assert {r["user_id"]: r["v"] for r in rows} == {1: 3}
    assert collect(engine.pull_latest(view(matrix_source), at(12), at(23))) == []


def test_pull_all_inclusive_window(matrix_source, engine):
    rows = collect(engine.pull_all(view(matrix_source), at(10), at(11)))
    assert sorted(r["v"] for r in rows) == [1, 2, 3]
    assert set(rows[0]) == {"user_id", "v", "event_timestamp", "created"}


def test_pull_latest_streams_batches(tmp_path, engine):
    n = 200_000
    pq.write_table(
        pa.table({"user_id": pa.array(range(n), pa.int64()), "ts": pa.array([at(1)] * n), "v": pa.array(range(n))}),
        tmp_path / "big.parquet",
    )
    source = SourceSpec("big", "file", path=str(tmp_path / "big.parquet"), timestamp_field="ts")
    batches = list(engine.pull_latest(view(source, ttl=0), at(0), at(2)))
    assert len(batches) > 1
    assert sum(b.num_rows for b in batches) == n
    assert all(b.schema.field("created").type == pa.timestamp("us", tz="UTC") for b in batches)


# -- appends ---------------------------------------------------------------------------


def test_write_to_a_folder_then_read_back(tmp_path, engine):
    folder = tmp_path / "pushed"
    folder.mkdir()
    source = SourceSpec(
        "pushed", "file", path=str(folder), timestamp_field="ts", field_mapping={"uid": "user_id", "value": "v"}
    )
    entity = entity_for(user_id=[7], event_timestamp=[at(12)])
    # an empty folder: features are null, typed from the view's dtypes
    empty = get_historical_features(entity, [(view(source), ["v"])], False)
    assert empty.column("v").to_pylist() == [None]
    assert empty.schema.field("v").type == pa.int64()
    assert engine.columns(source) == {}

    # rows named by feature / join-key names (mapped back) or by source column names
    assert engine.write(source, pa.table({"user_id": [7], "ts": [naive(at(10))], "v": [70]})) == 1
    assert engine.write(source, pa.table({"uid": [7], "ts": [at(11)], "value": [71]})) == 1
    assert engine.columns(source) == {"uid": "int64", "ts": "timestamp[us, tz=UTC]", "value": "int64"}
    assert get_historical_features(entity, [(view(source), ["v"])], False).column("v").to_pylist() == [71]
    files = sorted(p.name for p in folder.iterdir())
    assert len(files) == 2 and all(f.startswith("part-") and f.endswith(".parquet") for f in files)


def test_write_to_a_single_file_source_goes_to_its_appended_folder(matrix_source, engine):
    original = Path(matrix_source.path).read_bytes()
    written = engine.write(matrix_source, pa.table({"user_id": [1], "ts": [at(12)], "v": [4], "created": [at(12)]}))
    assert written == 1
    assert Path(matrix_source.path).read_bytes() == original, "the original file is never rewritten"
    appended = list(Path(matrix_source.path + APPENDED_SUFFIX).iterdir())
    assert len(appended) == 1
    entity = entity_for(user_id=[1, 1], event_timestamp=[at(11, 30), at(12)])
    result = get_historical_features(entity, [(view(matrix_source), ["v"])], False)
    assert result.column("v").to_pylist() == [3, 4]
    # the source's naive timestamp column stays naive (UTC wall time)
    assert pq.read_schema(appended[0]).field("ts").type == pa.timestamp("ns")


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        (pa.table({"user_id": [1], "v": [1]}), "have no 'ts' column"),
        (pa.table({"user_id": [1], "ts": [at(1)], "v": [1], "extra": [1]}), "has no column 'extra'"),
        (pa.table({"user_id": [1], "ts": [at(1)], "v": ["one"]}), "column 'value' of data source 'users' holds int64"),
        (pa.table({"user_id": [1], "ts": pa.array([None], pa.timestamp("us")), "v": [1]}), "empty 'ts' values"),
        (pa.table({"user_id": [1], "uid": [1], "ts": [at(1)]}), "column 'uid' twice"),
    ],
)
def test_write_rejects_bad_rows_and_writes_nothing(matrix_source, engine, rows, message):
    with pytest.raises(OfflineInputError, match=message):
        engine.write(matrix_source, rows)
    assert DuckDBOfflineEngine.files(matrix_source) == [matrix_source.path]


def test_write_leaves_no_partial_file_and_hidden_files_are_not_read(tmp_path, engine):
    folder = tmp_path / "f"
    folder.mkdir()
    source = SourceSpec("f", "file", path=str(folder), timestamp_field="ts")
    pq.write_table(pa.table({"user_id": [1], "ts": [at(1)], "v": [1]}), folder / ".in-progress.parquet")
    pq.write_table(pa.table({"user_id": [1], "ts": [at(1)], "v": [1]}), folder / "_tmp.parquet")
    assert engine.columns(source) == {}
    engine.write(source, pa.table({"user_id": [1], "ts": [at(2)], "v": [2]}))
    assert not [p for p in folder.iterdir() if p.name.endswith(".partial")]
    assert len(DuckDBOfflineEngine.files(source)) == 1


def test_write_of_no_rows_writes_no_file(tmp_path, engine):
    source = SourceSpec("f", "file", path=str(tmp_path), timestamp_field="ts")
    empty = pa.table({"user_id": pa.array([], pa.int64()), "ts": pa.array([], pa.timestamp("us", tz="UTC"))})
    assert engine.write(source, empty) == 0
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("entity_rows", "expected"), [(1, "hash"), (3, "hash"), (4, "asof"), (50, "asof")])
def test_join_strategy_follows_the_pairs_sharing_a_key(tmp_path, monkeypatch, entity_rows, expected):
    """10 source rows of one key: n entity rows of that key make 10n pairs; the hash join
    is chosen up to 3 pairs per source row."""
    import serving.offline.duckdb as module

    pq.write_table(
        pa.table({"user_id": [1] * 10, "ts": [at(h) for h in range(10)], "v": list(range(10))}), tmp_path / "s.parquet"
    )
    source = SourceSpec("s", "file", path=str(tmp_path / "s.parquet"), timestamp_field="ts")
    used = []
    for name in ("_hash_join_sql", "_asof_join_sql"):
        original = getattr(module, name)
        monkeypatch.setattr(module, name, lambda *a, _o=original, _n=name: used.append(_n) or _o(*a))
    entity = entity_for(user_id=[1] * entity_rows, event_timestamp=[at(5, 30)] * entity_rows)
    result = DuckDBOfflineEngine().get_historical_features(entity, [(view(source, ttl=0), ["v"])], False)
    assert result.column("v").to_pylist() == [5] * entity_rows
    assert used == [f"_{expected}_join_sql"]


def test_a_join_larger_than_the_memory_limit_spills_and_gives_the_same_answer(tmp_path):
    import numpy as np

    rng = np.random.default_rng(0)
    n, m, start = 1_000_000, 400_000, 1_700_000_000_000_000
    source = pa.table(
        {
            "user_id": rng.integers(0, 200_000, n),
            "ts": pa.array(start + rng.integers(0, 10**12, n), pa.timestamp("us", tz="UTC")),
            "created": pa.array(start + rng.integers(0, 10**12, n), pa.timestamp("us", tz="UTC")),
            "v": pa.array(np.char.add("value-", np.arange(n).astype(str))),
        }
    )
    pq.write_table(source, tmp_path / "s.parquet")
    spec = SourceSpec(
        "s", "file", path=str(tmp_path / "s.parquet"), timestamp_field="ts", created_timestamp_column="created"
    )
    big = ViewSpec("p", "big", "", ("user_id",), (("v", "String"),), 0, spec)
    entity = entity_for(
        user_id=rng.integers(0, 200_000, m),
        event_timestamp=pa.array(start + rng.integers(0, 10**12, m), pa.timestamp("us", tz="UTC")),
    )
    tight = DuckDBOfflineEngine(memory_limit="64MB", temp_dir=str(tmp_path / "tight"))
    roomy = DuckDBOfflineEngine(memory_limit="2GB", temp_dir=str(tmp_path / "roomy"))
    result = tight.get_historical_features(entity, [(big, ["v"])], False)
    assert [p.name.startswith("spill-") for p in (tmp_path / "tight").iterdir()] == [True], "it spilled"
    assert result.equals(roomy.get_historical_features(entity, [(big, ["v"])], False))
    assert list((tmp_path / "roomy").iterdir()) == []


@pytest.mark.parametrize(("limit", "expected"), [("2GB", 2e9), ("512MiB", 512 * 2**20), ("1.5 gb", 1.5e9), ("?", 1e9)])
def test_memory_limit_is_read_in_bytes(limit, expected):
    assert DuckDBOfflineEngine(memory_limit=limit)._memory_bytes() == expected


def _record_plans(monkeypatch) -> list[tuple[str, bool]]:
    """Which join SQL builders run, and whether the hash join used time buckets."""
    import serving.offline.duckdb as module

    used: list[tuple[str, bool]] = []
    hash_sql, asof_sql = module._hash_join_sql, module._asof_join_sql
    monkeypatch.setattr(module, "_hash_join_sql", lambda *a: used.append(("hash", bool(a[6]))) or hash_sql(*a))
    monkeypatch.setattr(module, "_asof_join_sql", lambda *a: used.append(("asof", False)) or asof_sql(*a))
    return used


def test_time_buckets_keep_both_ttl_bounds_exact(tmp_path, monkeypatch):
    """ttl 1h over 10 hours of rows, so the hash join cuts time into buckets of 1h from
    min T - ttl; entity times sit on bucket edges, exactly ttl after a row, a microsecond
    past it, and before any row. Every answer matches the reference."""
    from tests import offline_reference as ref

    base = at(0)
    rows = [{"user_id": 1, "ts": base + timedelta(hours=h), "v": h} for h in range(10)]
    rows += [{"user_id": 2, "ts": base + timedelta(hours=h, minutes=30), "v": 100 + h} for h in range(10)]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "s.parquet")
    source = SourceSpec("s", "file", path=str(tmp_path / "s.parquet"), timestamp_field="ts")
    hourly = view(source, ttl=3600)
    times = [base + timedelta(hours=h, minutes=m) for h, m in ((1, 0), (3, 0), (4, 30), (8, 59), (-1, 0), (10, 0))]
    times += [base + timedelta(hours=5, microseconds=1), base + timedelta(hours=10, microseconds=1)]
    entity = entity_for(user_id=[u for u in (1, 2) for _ in times], event_timestamp=times * 2)
    used = _record_plans(monkeypatch)
    result = DuckDBOfflineEngine(join_strategy="hash").get_historical_features(entity, [(hourly, ["v"])], False)
    assert used == [("hash", True)]
    expected = ref.point_in_time(entity.to_pylist(), "event_timestamp", hourly, ["v"], rows)
    assert [(v,) for v in result.column("v").to_pylist()] == [next(iter(e)) for e in expected]
    assert result.column("v").to_pylist() == [1, 3, 4, 8, None, 9, 5, None, 100, 102, 104, 108, None, 109, 104, 109]


def test_auto_takes_the_bucketed_hash_join_when_the_ttl_cuts_the_pairs(tmp_path, monkeypatch):
    """One key, 100 rows an hour apart, 5 entity rows: 5 pairs per source row share the key
    (above 3: ASOF without buckets), but with a 1h ttl each entity row meets the rows of 2
    buckets: the hash join with buckets. Without a ttl: ASOF."""
    base = at(0)
    pq.write_table(
        pa.table({"user_id": [1] * 100, "ts": [base + timedelta(hours=h) for h in range(100)], "v": list(range(100))}),
        tmp_path / "s.parquet",
    )
    source = SourceSpec("s", "file", path=str(tmp_path / "s.parquet"), timestamp_field="ts")
    entity = entity_for(
        user_id=[1] * 5, event_timestamp=[base + timedelta(hours=h, minutes=30) for h in range(0, 100, 20)]
    )
    used = _record_plans(monkeypatch)
    result = DuckDBOfflineEngine().get_historical_features(entity, [(view(source, ttl=3600), ["v"])], False)
    assert result.column("v").to_pylist() == [0, 20, 40, 60, 80]
    assert used == [("hash", True)]
    used.clear()
    result = DuckDBOfflineEngine().get_historical_features(entity, [(view(source, ttl=0), ["v"])], False)
    assert result.column("v").to_pylist() == [0, 20, 40, 60, 80]
    assert used == [("asof", False)]


def test_a_hot_key_in_one_bucket_goes_to_asof(tmp_path, monkeypatch):
    """All rows of the key in one hour and the entity rows in it too: buckets do not help
    (each key's own range of buckets is counted), so 50 x 40 pairs for 40 rows is ASOF."""
    base = at(0)
    ts = [base + timedelta(seconds=s) for s in range(40)] + [base + timedelta(hours=30)]
    pq.write_table(pa.table({"user_id": [1] * 40 + [2], "ts": ts, "v": list(range(41))}), tmp_path / "s.parquet")
    source = SourceSpec("s", "file", path=str(tmp_path / "s.parquet"), timestamp_field="ts")
    times = [base + timedelta(seconds=100)] * 50 + [base + timedelta(hours=31)]
    entity = entity_for(user_id=[1] * 50 + [2], event_timestamp=times)
    used = _record_plans(monkeypatch)
    result = DuckDBOfflineEngine().get_historical_features(entity, [(view(source, ttl=3600), ["v"])], False)
    assert result.column("v").to_pylist() == [39] * 50 + [40]
    assert used == [("asof", False)]


def test_a_hash_join_out_of_memory_is_run_again_as_asof(matrix_source, monkeypatch):
    """The hash plan's aggregate can fail where ASOF would spill (the memory limit is shared
    by every query of the process): auto runs it again as ASOF; a forced hash join fails."""
    import duckdb

    import serving.offline.duckdb as module

    fetch = module._fetch

    def failing(con, sql, params):
        if "arg_max" in sql:
            raise duckdb.OutOfMemoryException("Out of Memory Error: failed to allocate")
        return fetch(con, sql, params)

    monkeypatch.setattr(module, "_fetch", failing)
    used = _record_plans(monkeypatch)
    entity = entity_for(user_id=[1, 3, 2], event_timestamp=[at(11, 30), at(2), at(3)])
    result = DuckDBOfflineEngine().get_historical_features(entity, [(view(matrix_source), ["v"])], False)
    assert result.column("v").to_pylist() == [3, 30, None]
    assert [name for name, _ in used] == ["hash", "asof"]
    with pytest.raises(OfflineEngineError, match="Out of Memory"):
        DuckDBOfflineEngine(join_strategy="hash").get_historical_features(entity, [(view(matrix_source), ["v"])], False)


@pytest.mark.parametrize("parallel", [False, True])
def test_unmatched_rows_and_every_column_type_are_put_back_in_order(tmp_path, monkeypatch, parallel):
    """The hash join returns matched rows only, in any order: numeric columns (numpy
    scatter), strings, nullable values and timestamps (Arrow take) land on their entity
    rows, the others are null."""
    base = at(0)
    n = 5000
    source = pa.table(
        {
            "user_id": list(range(n)),
            "ts": [base] * n,
            "i": pa.array(range(n), pa.int32()),
            "f": pa.array([x / 2 for x in range(n)], pa.float32()),
            "s": [f"s{x}" for x in range(n)],
            "maybe": [None if x % 3 else x for x in range(n)],
            "when": [base + timedelta(seconds=x) for x in range(n)],
        }
    )
    pq.write_table(source, tmp_path / "s.parquet")
    if parallel:
        monkeypatch.setattr("serving.offline.duckdb.PARALLEL_PLACE_VALUES", 1)
    spec = SourceSpec("s", "file", path=str(tmp_path / "s.parquet"), timestamp_field="ts")
    dtypes = (("i", "Int32"), ("f", "Float32"), ("s", "String"), ("maybe", "Int64"), ("when", "UnixTimestamp"))
    wide = ViewSpec("p", "wide", "", ("user_id",), dtypes, 0, spec)
    users = [x * 7 % (2 * n) for x in range(2 * n)]  # half of them unknown, shuffled
    entity = entity_for(user_id=users, event_timestamp=[base + timedelta(hours=1)] * len(users))
    result = DuckDBOfflineEngine(join_strategy="hash").get_historical_features(
        entity, [(wide, ["i", "f", "s", "maybe", "when"])], False
    )
    known = [u if u < n else None for u in users]
    assert result.column("i").to_pylist() == known
    assert result.column("f").to_pylist() == [None if u is None else u / 2 for u in known]
    assert result.column("s").to_pylist() == [None if u is None else f"s{u}" for u in known]
    assert result.column("maybe").to_pylist() == [None if u is None or u % 3 else u for u in known]
    assert result.column("when").to_pylist() == [None if u is None else base + timedelta(seconds=u) for u in known]
    assert result.schema.field("i").type == pa.int32()
