"""Materialization on real servers: PostgreSQL (the test database), Redis (broker on db 11,
online store on db 12) and real `celery -A larder worker` / `celery -A larder beat`
processes started here (tests/materialization_workers.py).

In order (one module, shared workers w1 and w2; the last test kills w1):
1. the example repo end to end, fanned out, compared with the latest values computed
   from its Parquet files with pyarrow (and read back through /get-online-features);
2. two workers share one fanned-out job;
3. a view already materializing is refused (409), online reads are not blocked while a
   job runs, and a cancelled job stops;
4. a schedule added in the admin fires from beat within its interval;
5. kill -9 of a worker in the middle of a job: the job still finishes, every entity
   present and correct (the partition is redelivered after the visibility timeout and
   taken over once its lease is stale).
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

import pyarrow.parquet as pq
import pytest
import redis
from django.db import connection
from django.test import Client
from django.utils import timezone

from catalog.models import FeatureView
from larder.celery import app as celery_app
from materialization.engine import view_key
from materialization.models import FINISHED_STATES, JobState, MaterializationJob, MaterializationPartition, Trigger
from serving.offline.specs import view_spec
from serving.online import get_online_store
from tests import materialization_workers as mw
from tests.materialization_data import DAYS, REFERENCE, apply_example_repo, apply_repo, expected_latest

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


# -- fixtures -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cluster(django_db_setup, django_db_blocker, redis_url, tmp_path_factory):
    """Workers w1 and w2 on the test database; this process publishes to their broker."""
    for db in (mw.BROKER_DB, mw.ONLINE_DB):
        redis.Redis.from_url(mw.redis_db(redis_url, db)).flushdb()
    env = mw.environment(mw.database_url(connection.settings_dict), redis_url)
    logs = tmp_path_factory.mktemp("celery-logs")
    broker = env["CELERY_BROKER_URL"]
    keys = ("broker_url", "result_backend", "broker_transport_options", "task_always_eager")
    saved = {k: celery_app.conf.get(k) for k in keys}
    celery_app.conf.update(
        broker_url=broker, result_backend=broker, broker_transport_options={}, task_always_eager=False
    )
    celery_app._pool = celery_app.amqp._producer_pool = None  # publish through pools on the new broker
    workers = {name: mw.start("worker", name, env, logs) for name in ("w1", "w2")}
    try:
        for proc in workers.values():
            mw.wait_ready(proc, "ready.")
        yield {"env": env, "logs": logs, "workers": workers}
    finally:
        for proc in workers.values():
            proc.stop()
        celery_app.conf.update(**saved)
        celery_app._pool = celery_app.amqp._producer_pool = None
        for db in (mw.BROKER_DB, mw.ONLINE_DB):
            redis.Redis.from_url(mw.redis_db(redis_url, db)).flushdb()


@pytest.fixture
def online_redis(cluster, settings, redis_url):
    """This process reads the online store the workers write (Redis db 12), empty at the start."""
    url = mw.redis_db(redis_url, mw.ONLINE_DB)
    redis.Redis.from_url(url).flushdb()
    settings.LARDER_ONLINE_STORE = "redis"
    settings.REDIS_URL = url
    return get_online_store()


@pytest.fixture
def admin_client(make_user):
    client = Client()
    client.force_login(make_user("root", is_superuser=True, is_staff=True))
    return client


def post(client: Client, path: str, body: dict):
    return client.post(path, json.dumps(body), content_type="application/json")


def wait_finished(job_ids, cluster, timeout: float = 180.0) -> list[MaterializationJob]:
    def finished():
        jobs = list(MaterializationJob.objects.filter(pk__in=job_ids))
        return jobs if jobs and all(j.state in FINISHED_STATES for j in jobs) else None

    try:
        return mw.wait_for(finished, timeout, f"jobs {job_ids} to finish")
    except TimeoutError:
        states = list(MaterializationPartition.objects.filter(job_id__in=job_ids).values_list("state", "worker"))
        logs = "\n".join(f"--- {n}\n{p.output()}" for n, p in cluster["workers"].items())
        raise AssertionError(f"partitions: {states}\n{logs}") from None


def online_rows(store, view_name: str, key: str, ids) -> dict:
    spec = view_spec(FeatureView.objects.select_related("project", "source").get(name=view_name))
    rows = store.read(view_key(spec), [{key: i} for i in ids], spec.feature_names)
    return {
        (i,): (*(row.values.get(f) for f in spec.feature_names), row.event_timestamp)
        for i, row in zip(ids, rows, strict=True)
        if row is not None
    }


# -- 1. the example repo end to end ---------------------------------------------------------------

EXAMPLE_VIEWS = {
    # view: (Parquet file, join key, features)
    "driver_hourly_stats": ("driver_stats.parquet", "driver_id", ["conv_rate", "acc_rate", "avg_daily_trips"]),
    "driver_hourly_stats_fresh": ("driver_stats.parquet", "driver_id", ["conv_rate", "acc_rate", "avg_daily_trips"]),
    "customer_profile": (
        "customer_profile.parquet",
        "customer_id",
        ["current_balance", "avg_passenger_count", "lifetime_trip_count"],
    ),
    "driver_daily_aggregates": ("driver_daily.parquet", "driver_id", ["total_trips", "total_earnings", "hours_online"]),
}


def test_example_repo_end_to_end(cluster, online_redis, admin_client, tmp_path):
    reference = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    repo = apply_example_repo(tmp_path, reference)
    start, end = reference - timedelta(days=7), reference  # a window that cuts through the history
    body = {"start_ts": start.isoformat(), "end_ts": end.isoformat(), "feature_views": None, "partitions": 3}
    response = post(admin_client, "/materialize?async=true", body)
    assert response.status_code == 202, response.content
    accepted = response.json()
    assert sorted(accepted["feature_views"]) == sorted(EXAMPLE_VIEWS)
    jobs = wait_finished(accepted["jobs"], cluster)
    assert [j.state for j in jobs] == [JobState.SUCCEEDED] * 4, [j.error for j in jobs]

    for view_name, (file, key, features) in EXAMPLE_VIEWS.items():
        table = pq.read_table(repo / "data" / file)
        expected = expected_latest(table, [key], features, start, end)
        ids = [*sorted(k for (k,) in expected), 999_999]  # and one entity with no row
        assert online_rows(online_redis, view_name, key, ids) == expected, view_name
        interval = FeatureView.objects.get(name=view_name).materialization_intervals.get()
        assert (interval.start, interval.end) == (start, end)

    # What a model server reads: the Feast endpoint over the same Redis.
    table = pq.read_table(repo / "data" / "driver_stats.parquet")
    conv = expected_latest(table, ["driver_id"], ["conv_rate"], start, end)[(1001,)][0]
    served = post(
        admin_client,
        "/get-online-features",
        {"features": ["driver_hourly_stats:conv_rate"], "entities": {"driver_id": [1001]}},
    )
    assert served.status_code == 200, served.content
    assert served.json()["results"][1]["values"] == [conv]


# -- 2. two workers, one job ----------------------------------------------------------------------


def test_two_workers_share_one_fanned_out_job(cluster, online_redis, admin_client, tmp_path):
    history = apply_repo(tmp_path)
    start = REFERENCE - timedelta(days=DAYS)
    body = {
        "start_ts": start.isoformat(),
        "end_ts": REFERENCE.isoformat(),
        "feature_views": ["hourly"],
        "partitions": 8,
    }
    response = post(admin_client, "/materialize?async=true", body)
    (job,) = wait_finished(response.json()["jobs"], cluster)
    assert job.state == JobState.SUCCEEDED, job.error
    workers = {p.worker.split("@")[0] for p in job.partitions.all()}
    assert workers == {"w1", "w2"}  # both worker processes took partitions of this one job
    expected = expected_latest(history, ["driver_id"], ["conv_rate", "trips"], start, REFERENCE)
    assert online_rows(online_redis, "hourly", "driver_id", list(range(1, 21))) == expected


# -- 3. the lock, reads during a job, cancel ---------------------------------------------------------


def test_a_running_view_is_refused_and_reads_are_not_blocked(cluster, online_redis, admin_client, tmp_path):
    history = apply_repo(tmp_path)
    start = (REFERENCE - timedelta(days=DAYS)).isoformat()
    first = {"start_ts": start, "end_ts": REFERENCE.isoformat(), "feature_views": ["hourly"], "partitions": 2}
    (done,) = wait_finished(post(admin_client, "/materialize?async=true", first).json()["jobs"], cluster)
    assert done.state == JobState.SUCCEEDED

    slow = {**first, "partitions": 8}
    (job_id,) = post(admin_client, "/materialize?async=true", slow).json()["jobs"]
    mw.wait_for(lambda: MaterializationJob.objects.get(pk=job_id).state == JobState.RUNNING, 30, "the job to run")

    refused = post(admin_client, "/materialize", slow)  # sync or async alike
    assert refused.status_code == 409
    assert refused.json()["feature_views"] == ["hourly"] and refused.json()["jobs"] == [job_id]

    # Feast 0.64+ rejects reads of a view while it materializes (#6780); here they go on, fast.
    trips = expected_latest(history, ["driver_id"], ["trips"], REFERENCE - timedelta(days=DAYS), REFERENCE)[(3,)][0]
    for _ in range(5):
        started = time.perf_counter()
        body = {"features": ["hourly:trips"], "entities": {"driver_id": [3]}}
        served = post(admin_client, "/get-online-features", body)
        assert served.status_code == 200 and served.json()["results"][1]["values"] == [trips]
        assert time.perf_counter() - started < 1.0
    assert MaterializationJob.objects.get(pk=job_id).state == JobState.RUNNING  # it was running all along

    cancelled = admin_client.delete(f"/api/v1/materialization-jobs/{job_id}")
    assert cancelled.status_code == 200 and cancelled.json()["state"] == "CANCELLED"
    mw.wait_for(
        lambda: not MaterializationPartition.objects.filter(job_id=job_id, state=JobState.RUNNING).exists(),
        10,
        "running partitions to stop",
    )
    assert MaterializationJob.objects.get(pk=job_id).interval is None  # a cancelled job records nothing


# -- 4. beat fires a schedule edited in the admin ---------------------------------------------------


def test_a_schedule_added_in_the_admin_fires_from_beat(cluster, online_redis, admin_client, tmp_path):
    apply_repo(tmp_path)
    beat = mw.start("beat", "beat", cluster["env"], cluster["logs"])
    try:
        mw.wait_ready(beat, "beat: Starting")
        view = FeatureView.objects.get(name="hourly")
        every = 10
        form = {"feature_view": view.pk, "kind": "interval", "cron": "", "every_seconds": every, "enabled": "on"}
        saved_at = timezone.now()
        assert admin_client.post("/admin/materialization/materializationschedule/add/", form).status_code == 302
        job = mw.wait_for(
            lambda: MaterializationJob.objects.filter(trigger=Trigger.SCHEDULE).first(), every + 40, "a scheduled job"
        )
        # Within its interval, plus beat's 1 s tick and some slack for a loaded machine.
        assert (job.created_at - saved_at).total_seconds() <= every + 8
        (job,) = wait_finished([job.pk], cluster)
        assert job.state == JobState.SUCCEEDED and job.incremental
        assert view.materialization_intervals.count() == 1
    finally:
        beat.stop()


# -- 5. kill -9 a worker in the middle of a job -----------------------------------------------------


def test_a_job_survives_a_worker_killed_mid_job(cluster, online_redis, admin_client, tmp_path):
    history = apply_repo(tmp_path)
    w1, w2 = cluster["workers"]["w1"], cluster["workers"]["w2"]
    assert w1.alive and w2.alive
    start = REFERENCE - timedelta(days=DAYS)
    body = {
        "start_ts": start.isoformat(),
        "end_ts": REFERENCE.isoformat(),
        "feature_views": ["hourly"],
        "partitions": 6,
    }
    (job_id,) = post(admin_client, "/materialize?async=true", body).json()["jobs"]

    victim = mw.wait_for(
        lambda: MaterializationPartition.objects.filter(
            job_id=job_id, state=JobState.RUNNING, worker__startswith="w1@"
        ).first(),
        60,
        "w1 to be running a partition",
        interval=0.05,
    )
    w1.kill_hard()

    (job,) = wait_finished([job_id], cluster, timeout=240)
    assert job.state == JobState.SUCCEEDED, job.error
    victim.refresh_from_db()
    assert victim.state == JobState.SUCCEEDED
    assert victim.attempt >= 2 and victim.workers[0].startswith("w1@") and victim.workers[-1].startswith("w2@")
    assert job.attempt >= 2
    expected = expected_latest(history, ["driver_id"], ["conv_rate", "trips"], start, REFERENCE)
    assert online_rows(online_redis, "hourly", "driver_id", list(range(1, 21))) == expected  # every entity, correct
    assert FeatureView.objects.get(name="hourly").materialization_intervals.count() == 1  # recorded exactly once
