"""The PostgreSQL engine on a real server (issue 5): it agrees with the plain-Python
reference on random data, also when a retrieval mixes PostgreSQL and Parquet views;
the verified matrix; window reads; appends in one transaction; errors; identifiers
quoted, values bound.

Source tables live in a scratch schema of the test database, dropped afterwards; the
engine reaches them through the DSN in LARDER_TEST_OFFLINE_DSN (a source's
dsn_setting), as it would in production.
"""

import tempfile
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg import sql

from serving.offline.base import OfflineEngineError, OfflineInputError
from serving.offline.postgres import PostgresOfflineEngine
from serving.offline.retrieval import get_historical_features
from serving.offline.specs import SourceSpec, ViewSpec
from tests import offline_reference as ref
from tests.unit.test_offline_properties import parquet_source

pytestmark = pytest.mark.integration

DSN_SETTING = "LARDER_TEST_OFFLINE_DSN"
PG_TYPES = {"int": "bigint", "float": "double precision", "str": "text"}


@pytest.fixture
def dsn(db, monkeypatch) -> str:
    """The test database's DSN (pytest-django's test_<name>), published under DSN_SETTING
    for the sources. The engine's own connections see only what is committed: tables
    are created through separate autocommit connections."""
    from django.db import connection

    params = connection.get_connection_params()
    conninfo = psycopg.conninfo.make_conninfo(
        **{k: v for k, v in params.items() if k in ("host", "port", "user", "password", "dbname") and v}
    )
    monkeypatch.setenv(DSN_SETTING, conninfo)
    return conninfo


@pytest.fixture
def schema(dsn) -> str:
    name = f"offline_test_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(name)))
    yield name
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(name)))


def create_table(dsn: str, schema: str, table: str, columns, rows) -> None:
    """A table of (name, kind) columns (kind: int, float, str, ts, tstz) holding `rows`."""
    definition = sql.SQL(", ").join(
        sql.SQL("{} {}").format(
            sql.Identifier(name),
            sql.SQL({"ts": "timestamp", "tstz": "timestamptz"}.get(kind) or PG_TYPES[kind]),
        )
        for name, kind in columns
    )
    ident = sql.Identifier(schema, table)
    names = [name for name, _ in columns]
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE TABLE {} ({})").format(ident, definition))
        with conn.cursor().copy(
            sql.SQL("COPY {} ({}) FROM STDIN").format(ident, sql.SQL(", ").join(map(sql.Identifier, names)))
        ) as copy:
            for row in rows:
                copy.write_row([row.get(name) for name in names])


def postgres_source(dsn: str, schema: str, as_query: bool):
    """A make_source for the reference scenarios: a table, or a query over it."""

    def make(name, rows, columns, **fields):
        aware = all(row["ts"].tzinfo is not None for row in rows) if rows else True
        table = f"{name}_{uuid.uuid4().hex[:8]}"
        kinds = [(c, ("tstz" if aware else "ts") if kind == "ts" else kind) for c, kind in columns]
        create_table(dsn, schema, table, kinds, rows)
        if as_query:
            query = f'SELECT * FROM "{schema}"."{table}" WHERE true'
            return SourceSpec(name, "postgres", query=query, dsn_setting=DSN_SETTING, **fields)
        return SourceSpec(name, "postgres", table=f"{schema}.{table}", dsn_setting=DSN_SETTING, **fields)

    return make


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
)
@given(scenario=ref.scenarios(), as_query=st.booleans(), mixed=st.booleans())
def test_postgres_engine_matches_reference(dsn, schema, scenario, as_query, mixed):
    """`mixed`: the second view reads Parquet, so retrieval joins across two engines."""
    with tempfile.TemporaryDirectory() as tmp:
        pg = postgres_source(dsn, schema, as_query)
        files = parquet_source(Path(tmp), split=False)

        def make(name, rows, columns, **fields):
            return (files if mixed and name == "merchants" else pg)(name, rows, columns, **fields)

        views = ref.scenario_views(scenario, make)
        entity = pa.table(scenario["entity"])
        result = get_historical_features(entity, views, scenario["full_feature_names"])
        ref.check_against_reference(result, scenario, views)


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
)
@given(scenario=ref.scenarios(), window=st.tuples(st.integers(0, 12), st.integers(0, 12)))
def test_postgres_pull_latest_and_all_match_reference(dsn, schema, scenario, window):
    start, end = ref.at(min(window)), ref.at(max(window))
    (view, _), _ = ref.scenario_views(scenario, postgres_source(dsn, schema, as_query=False))
    engine = PostgresOfflineEngine()
    latest = [row for batch in engine.pull_latest(view, start, end) for row in batch.to_pylist()]
    expected = ref.pull_latest(view, scenario["rows_a"], start, end)
    got = {(r["user_id"],): (r["v"], r["f"], r["event_timestamp"]) for r in latest}
    assert len(got) == len(latest), "one row per entity key"
    assert set(got) == set(expected)
    for key, value in got.items():
        assert value in expected[key]
    rows = [row for batch in engine.pull_all(view, start, end) for row in batch.to_pylist()]
    assert sorted(((r["user_id"], r["v"], r["f"], r["event_timestamp"]) for r in rows), key=repr) == ref.pull_all(
        view, scenario["rows_a"], start, end
    )


# -- hand-made cases -------------------------------------------------------------------


def at(hour: int, minute: int = 0) -> datetime:
    return datetime(2024, 1, 1, hour, minute, tzinfo=UTC)


@pytest.fixture
def matrix_source(dsn, schema) -> SourceSpec:
    """feast-reference §2.2's rows, in a table whose name needs quoting, naive `ts`."""
    table = f'users "{uuid.uuid4().hex[:6]}"; drop'
    rows = [
        {"uid": 1, "ts": at(10).replace(tzinfo=None), "created": at(10), "value": 1},
        {"uid": 1, "ts": at(11).replace(tzinfo=None), "created": at(11), "value": 2},
        {"uid": 1, "ts": at(11).replace(tzinfo=None), "created": at(12), "value": 3},
        {"uid": 3, "ts": at(1).replace(tzinfo=None), "created": None, "value": 30},
    ]
    create_table(dsn, schema, table, [("uid", "int"), ("ts", "ts"), ("created", "tstz"), ("value", "int")], rows)
    return SourceSpec(
        "users",
        "postgres",
        table=f"{schema}.{table}",
        dsn_setting=DSN_SETTING,
        timestamp_field="ts",
        created_timestamp_column="created",
        field_mapping={"uid": "user_id", "value": "v"},
    )


def view(source: SourceSpec, name: str = "fv", ttl: int = 7200) -> ViewSpec:
    return ViewSpec("p", name, "", ("user_id",), (("v", "Int64"),), ttl, source)


def test_verified_matrix(matrix_source):
    cases = [
        (1, at(10, 30), 1, 1),
        (1, at(11), 3, 3),
        (1, at(9), None, None),
        (1, at(20), None, 3),
        (2, at(10, 30), None, None),
        (1, at(10, 30), 1, 1),
        (3, at(23), None, 30),
        (1, at(13), 3, 3),
        (1, at(10), 1, 1),
    ]
    entity = pa.table({"user_id": [c[0] for c in cases], "event_timestamp": [c[1] for c in cases]})
    views = [(view(matrix_source, "fv", 7200), ["v"]), (view(matrix_source, "fv0", 0), ["v"])]
    result = get_historical_features(entity, views, True)
    assert result.column("fv__v").to_pylist() == [c[2] for c in cases]
    assert result.column("fv0__v").to_pylist() == [c[3] for c in cases]
    assert result.schema.field("fv__v").type == pa.int64()


def test_pull_latest_inclusive_bounds_and_ties(matrix_source):
    engine = PostgresOfflineEngine()
    rows = [r for b in engine.pull_latest(view(matrix_source), at(1), at(11)) for r in b.to_pylist()]
    assert sorted(rows, key=lambda r: r["user_id"]) == [
        {"user_id": 1, "v": 3, "event_timestamp": at(11), "created": at(12)},
        {"user_id": 3, "v": 30, "event_timestamp": at(1), "created": None},
    ]
    rows = [
        r
        for b in engine.pull_latest(view(matrix_source), at(1, 0) + timedelta(microseconds=1), at(10))
        for r in b.to_pylist()
    ]
    assert [(r["user_id"], r["v"]) for r in rows] == [(1, 1)]


def row_count(dsn: str, source: SourceSpec) -> int:
    with psycopg.connect(dsn) as conn:
        return conn.execute(sql.SQL("SELECT count(*) FROM {}").format(PostgresOfflineEngine.table(source))).fetchone()[
            0
        ]


def test_write_then_read_back_all_or_nothing(dsn, matrix_source):
    engine = PostgresOfflineEngine()
    before = row_count(dsn, matrix_source)
    with pytest.raises(OfflineInputError, match="column 'value' of data source 'users' holds int64"):
        engine.write(matrix_source, pa.table({"user_id": [1, 1], "ts": [at(12), at(13)], "v": ["4", "x"]}))
    assert row_count(dsn, matrix_source) == before
    written = engine.write(matrix_source, pa.table({"user_id": [1, 5], "ts": [at(12), at(12)], "v": [4, 50]}))
    assert written == 2 and row_count(dsn, matrix_source) == before + 2
    entity = pa.table({"user_id": [1, 5], "event_timestamp": [at(12, 30), at(12)]})
    assert get_historical_features(entity, [(view(matrix_source), ["v"])], False).column("v").to_pylist() == [4, 50]


def test_errors_name_the_source_and_column(dsn, schema, matrix_source, monkeypatch):
    entity = pa.table({"user_id": [1], "event_timestamp": [at(11)]})
    engine = PostgresOfflineEngine()
    create_table(dsn, schema, "thin", [("uid", "int"), ("ts", "tstz")], [])
    thin = SourceSpec(
        "thin", "postgres", table=f"{schema}.thin", dsn_setting=DSN_SETTING, timestamp_field="ts",
        field_mapping={"uid": "user_id"},
    )  # fmt: skip
    with pytest.raises(OfflineInputError, match=r"data source 'thin' has no column 'v' \(feature 'v'"):
        get_historical_features(entity, [(view(thin), ["v"])], False)
    wrong_key = pa.table({"user_id": ["abc"], "event_timestamp": [at(1)]})
    with pytest.raises(OfflineInputError, match="join key 'user_id': the entity table's string values do not fit"):
        engine.get_historical_features(wrong_key, [(view(matrix_source), ["v"])], False)
    query = SourceSpec(
        "q", "postgres", query=f"SELECT * FROM {schema}.thin", dsn_setting=DSN_SETTING, timestamp_field="ts"
    )
    with pytest.raises(OfflineInputError, match="data source 'q' is a query"):
        engine.write(query, pa.table({"uid": [1], "ts": [at(1)]}))
    missing = SourceSpec("gone", "postgres", table=f"{schema}.gone", dsn_setting=DSN_SETTING, timestamp_field="ts")
    with pytest.raises(OfflineEngineError, match="data source 'gone': PostgreSQL failed"):
        engine.columns(missing)
    monkeypatch.delenv(DSN_SETTING)
    with pytest.raises(OfflineEngineError, match=f"data source 'thin': {DSN_SETTING} \\(its dsn_setting\\) is not set"):
        engine.columns(thin)


def test_columns_are_arrow_types(dsn, matrix_source):
    assert PostgresOfflineEngine().columns(matrix_source) == {
        "uid": "int64",
        "ts": "timestamp[us]",
        "created": "timestamp[us, tz=UTC]",
        "value": "int64",
    }


def test_entity_temp_table_does_not_outlive_the_call(dsn, matrix_source):
    entity = pa.table({"user_id": [1], "event_timestamp": [at(11)]})
    get_historical_features(entity, [(view(matrix_source), ["v"])], False)
    with psycopg.connect(dsn) as conn:
        left = conn.execute("SELECT count(*) FROM pg_class WHERE relname LIKE 'larder_entity_%'").fetchone()[0]
    assert left == 0
