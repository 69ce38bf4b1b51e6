"""The Celery tasks' error handling, run eagerly: an unreachable online store is retried with
backoff and then fails the job with the error shown; a store that comes back lets the
job finish; a permanent error fails at once. (Real workers: tests/integration.)"""

from datetime import timedelta

import pytest

from larder.celery import app as celery_app
from materialization.models import JobState, MaterializationJob
from materialization.tasks import _backoff, materialize_partition
from serving.online import OnlineStoreUnavailable
from serving.online.sql import SqlOnlineStore
from tests.materialization_data import DAYS, REFERENCE, apply_repo
from tests.unit.test_materialization_jobs import start_job

pytestmark = pytest.mark.django_db
START = REFERENCE - timedelta(days=DAYS)


class FlakyStore(SqlOnlineStore):
    """The SQL store, unreachable for its first two writes (a Redis failover, say)."""

    failures = 0

    def write_batch(self, view, rows):
        if FlakyStore.failures < 2:
            FlakyStore.failures += 1
            raise OnlineStoreUnavailable("online store sql is unavailable: connection refused (test)")
        return super().write_batch(view, rows)


@pytest.fixture
def eager(settings):
    settings.LARDER_MATERIALIZE_RETRY_BASE_SECONDS = 0  # eager retries run at once anyway
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = False


def run_partitions(job: MaterializationJob) -> list:
    return [materialize_partition.apply(args=(p.pk,)) for p in job.partitions.order_by("index")]


def test_an_unreachable_store_is_retried_then_fails_the_job(tmp_path, settings, eager):
    apply_repo(tmp_path)
    settings.LARDER_ONLINE_STORE = "redis"
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there
    settings.LARDER_MATERIALIZE_MAX_RETRIES = 2
    job = start_job("hourly")
    run_partitions(job)
    job.refresh_from_db()
    assert job.state == JobState.FAILED
    assert "OnlineStoreUnavailable" in job.error and "gave up after 3 attempts" in job.error
    assert job.partitions.get().attempt == 3  # the first try and two retries


def test_a_store_that_comes_back_lets_the_job_finish(tmp_path, settings, eager):
    apply_repo(tmp_path)
    FlakyStore.failures = 0
    settings.LARDER_ONLINE_STORE = "tests.unit.test_materialization_tasks.FlakyStore"
    job = start_job("hourly")
    run_partitions(job)
    job.refresh_from_db()
    assert job.state == JobState.SUCCEEDED and job.error == ""
    partition = job.partitions.get()
    assert partition.attempt == 3 and partition.rows_written == 20


def test_a_permanent_error_fails_at_once(tmp_path, eager):
    apply_repo(tmp_path)
    (tmp_path / "data" / "history.parquet").unlink()
    job = start_job("hourly", partitions=2)
    results = run_partitions(job)
    job.refresh_from_db()
    assert [r.get() for r in results] == ["failed", "gone"]  # the second finds its job over
    assert job.state == JobState.FAILED and job.partitions.get(index=0).attempt == 1


def test_backoff_doubles_up_to_the_cap(settings):
    settings.LARDER_MATERIALIZE_RETRY_BASE_SECONDS = 2
    settings.LARDER_MATERIALIZE_RETRY_MAX_SECONDS = 60
    assert [_backoff(n) for n in range(7)] == [2, 4, 8, 16, 32, 60, 60]
