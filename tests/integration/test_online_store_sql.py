"""The online store contract on the `sql` store over PostgreSQL, and concurrent writers."""

from contextlib import contextmanager

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from serving.online import ViewKey
from serving.online.sql import _PG_SELECT, SqlOnlineStore
from tests.online_contract import DRIVERS, T0, OnlineStoreContract, one_feature, write_concurrently

pytestmark = pytest.mark.integration


class _Count:
    count = 0


@pytest.fixture
def round_trips():
    @contextmanager
    def counting():
        counter = _Count()
        with CaptureQueriesContext(connection) as queries:
            yield counter
        counter.count = len(queries.captured_queries)

    return counting


class TestSqlOnlineStoreOnPostgreSQL(OnlineStoreContract):
    @pytest.fixture
    def store(self, db):
        assert connection.vendor == "postgresql"
        return SqlOnlineStore()


def test_concurrent_writers_end_with_the_newest_value(transactional_db):
    from django.db import connections

    write_concurrently(SqlOnlineStore(), DRIVERS, entities=200, rounds=20, after_thread=connections.close_all)


def test_reads_look_keys_up_in_the_index_even_with_stale_statistics(db):
    """A view loaded after the last ANALYZE must not be read by filtering all its rows
    (serving.models.OnlineStoreRow explains the primary key order)."""
    store = SqlOnlineStore()
    old, fresh = ViewKey("proj", "old", ("driver_id",)), ViewKey("proj", "fresh", ("driver_id",))
    store.write_batch(old, one_feature(range(2000), range(2000), [T0] * 2000))
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE serving_online_row")
    store.write_batch(fresh, one_feature(range(5000), range(5000), [T0] * 5000))
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN " + _PG_SELECT, ["proj", "fresh", ["driver_id=1", "driver_id=2"]])
        plan = "\n".join(row[0] for row in cursor.fetchall())
    index_cond = next(line for line in plan.splitlines() if "Index Cond" in line)
    assert "entity_key = ANY" in index_cond, plan
    assert "Filter" not in plan, plan
