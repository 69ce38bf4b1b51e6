"""Historical retrieval with the real parts: a Celery worker process (`celery -A larder
worker`) on a Redis broker (a database of its own), the PostgreSQL test database as the
registry the worker reads, and PostgreSQL sources with `entity_sql`.

The worker is started by the test with DATABASE_URL naming pytest-django's test database
(test_<name>), so it sees the rows these transactional tests commit.
"""

import io
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pyarrow.parquet as pq
import pytest
import redis
from django.db import connection
from django.test import Client

from access.identity.personal_tokens import issue_token
from catalog.repo import apply, load_repo
from catalog.repo.testing import write_repo
from larder.celery import app as celery_app
from serving.historical.models import HistoricalJob
from tests.historical_data import ENTITY_ROWS, PROJECT, apply_repo, at, expected_conv, iso, post, request_body

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

BROKER_DB = 13  # a Redis database of its own: no other test's tasks, none of ours left for others
ROOT = Path(__file__).resolve().parents[2]


def database_url() -> str:
    """DATABASE_URL naming the database this test process really uses (test_<name>)."""
    db = connection.settings_dict
    user = db.get("USER") or "postgres"
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    return f"postgres://{user}{password}@{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{db['NAME']}"


def broker_url(redis_url: str) -> str:
    parts = urlsplit(redis_url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{BROKER_DB}", "", ""))


def _reset_producers() -> None:
    """Forget the app's cached pools, so the next send uses conf.broker_url as it is now
    (kombu keeps one pool per broker URL: the other URL's pool stays usable)."""
    celery_app._pool = None
    celery_app.amqp._producer_pool = None


@contextmanager
def publishing_to(url: str) -> Iterator[None]:
    """This process sends tasks (the API's on_commit .delay()) to `url` for a while."""
    old = celery_app.conf.broker_url, celery_app.conf.task_always_eager
    celery_app.conf.broker_url, celery_app.conf.task_always_eager = url, False
    _reset_producers()
    try:
        yield
    finally:
        celery_app.conf.broker_url, celery_app.conf.task_always_eager = old
        _reset_producers()


@pytest.fixture(scope="module")
def module_data_dir(tmp_path_factory) -> Path:
    """LARDER_DATA_DIR of this module's tests and of its worker (started once per module)."""
    return tmp_path_factory.mktemp("larder-data")


@pytest.fixture
def data_dir(module_data_dir, settings):
    settings.LARDER_DATA_DIR = module_data_dir
    return module_data_dir


@pytest.fixture
def offline_dsn(monkeypatch) -> str:
    """PostgreSQL sources read the test database through LARDER_OFFLINE_DSN."""
    dsn = database_url()
    monkeypatch.setenv("LARDER_OFFLINE_DSN", dsn)
    return dsn


@pytest.fixture(scope="module")
def worker_process(django_db_setup, django_db_blocker, redis_url, module_data_dir, tmp_path_factory):
    """A real worker process, ready to take tasks from the dedicated broker database."""
    with django_db_blocker.unblock():
        db_url = database_url()
    url = broker_url(redis_url)
    redis.Redis.from_url(url).flushdb()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "larder.settings",
        "LARDER_DEBUG": "1",
        "DATABASE_URL": db_url,
        "REDIS_URL": url,
        "CELERY_BROKER_URL": url,
        "LARDER_DATA_DIR": str(module_data_dir),
        "LARDER_OFFLINE_DSN": db_url,
        "LARDER_HISTORICAL_CHUNK_ROWS": "3",  # several chunks: progress and concatenation
        "LARDER_CELERY_EAGER": "0",
    }
    log = tmp_path_factory.mktemp("worker") / "worker.log"
    command = [sys.executable, "-m", "celery", "-A", "larder", "worker", "--pool=solo", "--loglevel=INFO"]
    command += ["--without-gossip", "--without-mingle", "--without-heartbeat", "--hostname", f"hist-{os.getpid()}@%h"]
    with log.open("wb") as out:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)  # noqa: S603
    deadline = time.monotonic() + 60
    while "ready." not in log.read_text(errors="replace"):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"the Celery worker did not start:\n{log.read_text(errors='replace')[-3000:]}")
        time.sleep(0.2)
    yield process, url, log
    process.send_signal(signal.SIGQUIT)  # cold shutdown: nothing is running by now
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture
def worker(worker_process, data_dir, offline_dsn) -> Iterator[subprocess.Popen]:
    """The module's worker, with this process publishing to its broker for the test."""
    process, url, log = worker_process
    if process.poll() is not None:
        pytest.fail(f"the Celery worker died:\n{log.read_text(errors='replace')[-3000:]}")
    with publishing_to(url):
        yield process


@pytest.fixture
def reader(make_user) -> Client:
    user = make_user("hist-reader", roles=("reader", "dataset-maker"))
    return Client(HTTP_AUTHORIZATION=f"Bearer {issue_token(user, 'jobs', 30)[1]}")


def wait_for(client: Client, status_url: str, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        state = client.get(status_url).json()
        seen.append((state["status"], state["progress"]["rows_done"]))
        if state["status"] in ("SUCCEEDED", "FAILED"):
            return state
        time.sleep(0.1)
    pytest.fail(f"the job did not finish in {timeout} s; states seen: {seen[-5:]}")


def test_async_request_runs_on_a_real_worker(worker, reader, tmp_path):
    apply_repo(tmp_path / "repo")
    sync = pq.read_table(io.BytesIO(post(reader, request_body(format="parquet")).content))

    accepted = post(reader, request_body(save_as={"name": "worker_set"}), path="/api/v1/historical-features?async=true")
    assert accepted.status_code == 202, accepted.content
    body = accepted.json()
    state = wait_for(reader, body["status_url"])
    assert state["status"] == "SUCCEEDED", state
    assert state["progress"]["rows_done"] == state["progress"]["rows_total"] == len(ENTITY_ROWS)

    result = reader.get(body["result_url"] + "?format=parquet")
    assert result.status_code == 200
    assert pq.read_table(io.BytesIO(b"".join(result.streaming_content))).equals(sync)
    job = HistoricalJob.objects.get(pk=body["job_id"])
    assert job.started_at is not None and job.finished_at >= job.started_at
    from catalog.models import SavedDataset

    assert pq.read_table(SavedDataset.objects.get(name="worker_set").storage).equals(sync)


# -- PostgreSQL sources and entity_sql -------------------------------------------------------------


def postgres_repo(root: Path) -> None:
    files = {
        "project.yaml": {"project": {"name": PROJECT}},
        "entities.yaml": {"entities": [{"name": "driver", "join_keys": ["driver_id"], "value_type": "Int64"}]},
        "sources.yaml": {
            "data_sources": [
                {
                    "name": "pg_driver",
                    "kind": "postgres",
                    "table": "hist_pg_driver",
                    "timestamp_field": "event_timestamp",
                    "created_timestamp_column": "created",
                },
                {"name": "pg_push", "kind": "push", "batch_source": "pg_driver"},
            ]
        },
        "views.yaml": {
            "feature_views": [
                {
                    "name": "driver_hourly_stats",
                    "entities": ["driver"],
                    "source": "pg_driver",
                    "ttl": "2h",
                    "schema": [{"name": "conv_rate", "dtype": "Float32"}],
                },
                {
                    "name": "driver_pushed",
                    "entities": ["driver"],
                    "source": "pg_push",
                    "ttl": "2h",
                    "schema": [{"name": "conv_rate", "dtype": "Float32"}],
                },
            ]
        },
        "permissions.yaml": {
            "permissions": [
                {
                    "name": "readers",
                    "types": ["feature_view"],
                    "actions": ["DESCRIBE", "READ_OFFLINE"],
                    "roles": ["reader"],
                },
                {
                    "name": "pushers",
                    "types": ["feature_view", "data_source"],
                    "actions": ["DESCRIBE", "WRITE_ONLINE", "WRITE_OFFLINE"],
                    "roles": ["pusher"],
                },
            ]
        },
    }
    definition = load_repo(write_repo(root, files, ()))
    assert not definition.errors, definition.errors
    apply(definition)


@pytest.fixture
def pg_tables(offline_dsn):
    """The feature history and the entity rows as tables of the test database."""
    with connection.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS hist_pg_driver, hist_pg_entities")
        cur.execute(
            "CREATE TABLE hist_pg_driver (driver_id bigint, event_timestamp timestamptz, created timestamptz, "
            "conv_rate real)"
        )
        cur.execute(
            "INSERT INTO hist_pg_driver VALUES (1001, %s, %s, 0.1), (1001, %s, %s, 0.2), (1001, %s, %s, 0.3), "
            "(1002, %s, %s, 0.5)",
            [at(10), at(10), at(11), at(11), at(11), at(12), at(8, 30), at(8, 30)],
        )
        cur.execute("CREATE TABLE hist_pg_entities (n int, driver_id bigint, event_timestamp timestamptz)")
        cur.execute(
            "INSERT INTO hist_pg_entities VALUES " + ", ".join(["(%s, %s, %s)"] * len(ENTITY_ROWS)),
            [v for i, r in enumerate(ENTITY_ROWS) for v in (i, r[0], r[1])],
        )
    yield
    with connection.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS hist_pg_driver, hist_pg_entities")


ENTITY_SQL = "SELECT driver_id, event_timestamp, n AS label FROM hist_pg_entities WHERE n >= 0 ORDER BY n;"


def sql_body(sql: str = ENTITY_SQL, **extra) -> dict:
    return {"project": PROJECT, "features": ["driver_hourly_stats:conv_rate"], "entity_sql": sql, **extra}


def conv(columns: dict) -> list:
    return [None if v is None else round(v, 6) for v in columns["conv_rate"]]


def test_entity_sql_against_a_postgres_source(pg_tables, reader, tmp_path, data_dir):
    postgres_repo(tmp_path / "repo")
    response = post(reader, sql_body())
    assert response.status_code == 200, response.content
    columns = response.json()["columns"]
    assert list(columns) == ["driver_id", "event_timestamp", "label", "conv_rate"]
    assert columns["label"] == list(range(len(ENTITY_ROWS)))
    assert conv(columns) == expected_conv()


def test_entity_sql_job_on_a_real_worker(worker, pg_tables, reader, tmp_path):
    postgres_repo(tmp_path / "repo")
    accepted = post(reader, sql_body(), path="/api/v1/historical-features?async=true")
    assert accepted.status_code == 202, accepted.content
    state = wait_for(reader, accepted.json()["status_url"])
    assert state["status"] == "SUCCEEDED", state
    result = reader.get(accepted.json()["result_url"] + "?format=json")
    assert conv(result.json()["columns"]) == expected_conv()


@pytest.mark.parametrize(
    ("sql", "named"),
    [
        ("SELECT nextval('hist_seq') AS driver_id, now() AS event_timestamp", "read-only"),  # writes: refused by PG
        ("SELECT driver_id, event_timestamp FROM hist_pg_entities, pg_sleep(3)", "longer than"),
        ("SELECT driver_id FROM no_such_table", "no_such_table"),
        ("SELECT driver_id, event_timestamp FROM hist_pg_entities WHERE n < 0", "empty"),
    ],
)
def test_entity_sql_runs_read_only_with_a_timeout(pg_tables, reader, tmp_path, data_dir, settings, sql, named):
    settings.LARDER_ENTITY_SQL_TIMEOUT_SECONDS = 0.5
    postgres_repo(tmp_path / "repo")
    with connection.cursor() as cur:
        cur.execute("CREATE SEQUENCE IF NOT EXISTS hist_seq")
    try:
        response = post(reader, sql_body(sql))
    finally:
        with connection.cursor() as cur:
            cur.execute("DROP SEQUENCE IF EXISTS hist_seq")
    assert response.status_code == 422, response.content
    assert named in str(response.json()["detail"])
    assert settings.DATABASES["default"]["ENGINE"].endswith("postgresql")


def test_offline_push_to_a_postgres_source(pg_tables, make_user, tmp_path, data_dir):
    """Pushed rows land in the table in one transaction and join the next training set."""
    postgres_repo(tmp_path / "repo")
    user = make_user("pg-pusher", roles=("pusher", "reader"))
    client = Client(HTTP_AUTHORIZATION=f"Bearer {issue_token(user, 'push', 30)[1]}")
    df = {"driver_id": [9999, 1001], "event_timestamp": [iso(at(10)), iso(at(10, 15))], "conv_rate": [0.9, 0.15]}
    body = {"project": PROJECT, "push_source_name": "pg_push", "df": df, "to": "offline"}
    response = post(client, body, path="/push")
    assert response.status_code == 200, response.content
    assert response["X-Larder-Offline-Rows-Written"] == "2"
    with connection.cursor() as cur:
        cur.execute("SELECT count(*) FROM hist_pg_driver")
        assert cur.fetchone()[0] == 6
    bad = {**body, "df": {**df, "conv_rate": [0.1, "x"]}}
    assert post(client, bad, path="/push").status_code == 422
    with connection.cursor() as cur:
        cur.execute("SELECT count(*) FROM hist_pg_driver")
        assert cur.fetchone()[0] == 6  # nothing of the refused push
    training = post(client, sql_body(features=["driver_pushed:conv_rate"]))
    # 9999 now has a row at 10:00; 1001's 10:15 row wins at 10:30 (rows 0 and 6), not at 11:00 (row 1).
    expected = expected_conv()
    expected[0] = expected[6] = 0.15
    expected[5] = 0.9
    assert conv(training.json()["columns"]) == expected
