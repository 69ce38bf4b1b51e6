"""The integration tier runs against real servers: PostgreSQL (DATABASE_URL) and Redis (REDIS_URL).

Nothing here skips: `make test` (via tests/services.py) decides whether the tier runs
at all. Once it runs, a test that finds SQLite or no Redis fails with a message that
says what to set, instead of passing against the wrong backend.
"""

import pytest
from django.conf import settings

HOW = "run `make test`, or set DATABASE_URL=postgres://postgres@127.0.0.1:5432/larder"


def pytest_collection_modifyitems(config, items):
    """Every test under tests/integration/ is an integration test, marked or not."""
    for item in items:
        if "tests/integration/" in item.nodeid or item.nodeid.startswith("integration/"):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session", autouse=True)
def _require_postgresql():
    engine = settings.DATABASES["default"]["ENGINE"]
    if "postgresql" not in engine:
        pytest.fail(f"integration tests need PostgreSQL, but the database engine is {engine!r}: {HOW}", pytrace=False)


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The Redis the integration tier talks to; fails (never skips) when none is configured."""
    url = settings.REDIS_URL
    if not url:
        pytest.fail("this test needs Redis: set REDIS_URL=redis://127.0.0.1:6379/0 (make test does)", pytrace=False)
    return url
