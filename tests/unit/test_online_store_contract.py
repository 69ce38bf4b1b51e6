"""The online store contract on the `sql` store, SQLite (PostgreSQL and Redis: tests/integration)."""

from contextlib import contextmanager

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from serving.online import OnlineStoreUnavailable
from serving.online.sql import SqlOnlineStore
from tests.online_contract import OnlineStoreContract


class _Count:
    count = 0


@pytest.fixture
def round_trips():
    """Counts SQL statements (each is one round trip to the database)."""

    @contextmanager
    def counting():
        counter = _Count()
        with CaptureQueriesContext(connection) as queries:
            yield counter
        counter.count = len(queries.captured_queries)

    return counting


class TestSqlOnlineStoreOnSQLite(OnlineStoreContract):
    @pytest.fixture
    def store(self, db):
        assert connection.vendor == "sqlite"
        return SqlOnlineStore()


def test_ping_fails_when_the_table_is_missing(db):
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE serving_online_row RENAME TO serving_online_row_away")
    try:
        with pytest.raises(OnlineStoreUnavailable, match="sql \\(sqlite database 'default'\\) is unavailable"):
            SqlOnlineStore().ping()
    finally:
        with connection.cursor() as cursor:
            cursor.execute("ALTER TABLE serving_online_row_away RENAME TO serving_online_row")
