"""Jobs as database state (materialization.jobs) on SQLite, run in this process with the real
DuckDB engine and SQL online store: the lock, intervals, incremental runs, claims and
leases, cancel, failure, the final step run twice, stalled work."""

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from catalog.models import FeatureView, MaterializationInterval
from materialization import jobs
from materialization.errors import AlreadyRunning, InvalidWindow, NotMaterializable
from materialization.models import JobState, MaterializationJob, MaterializationPartition, Trigger
from materialization.planning import Window
from serving.offline.specs import view_spec
from serving.online import get_online_store
from tests.materialization_data import DAYS, REFERENCE, apply_repo, expected_latest

pytestmark = pytest.mark.django_db
START = REFERENCE - timedelta(days=DAYS)


@pytest.fixture
def history(tmp_path):
    return apply_repo(tmp_path)


def view(name: str) -> FeatureView:
    return FeatureView.objects.select_related("project", "source").get(name=name)


def online(name: str, drivers) -> dict:
    fv = view(name)
    spec = view_spec(fv)
    from materialization.engine import view_key

    rows = get_online_store().read(view_key(spec), [{"driver_id": d} for d in drivers], spec.feature_names)
    return {
        (d,): (*(row.values.get(f) for f in spec.feature_names), row.event_timestamp)
        for d, row in zip(drivers, rows, strict=True)
        if row is not None
    }


def start_job(name: str, start=START, end=REFERENCE, partitions=None, incremental=False) -> MaterializationJob:
    requests, _ = jobs.plan_requests([view(name)], start=start, end=end, incremental=incremental, now=REFERENCE)
    (job,) = jobs.create_jobs(requests, trigger=Trigger.CLI, partitions=partitions)
    return job


def test_a_job_writes_the_latest_rows_and_records_its_interval(history):
    job = start_job("hourly", partitions=3)
    assert job.state == JobState.PENDING and job.partitions.count() == 3
    done = jobs.run_job_inline(job)
    assert done.state == JobState.SUCCEEDED, done.error
    assert (done.partitions_done, done.partitions_total) == (3, 3)
    expected = expected_latest(history, ["driver_id"], ["conv_rate", "trips"], START, REFERENCE)
    assert online("hourly", range(1, 21)) == expected
    assert expected[(1,)][:2] == (0.99, -1)  # the late correction won the tie on event time
    assert done.rows_read == 60  # each of the 3 slices holds a latest row of every driver
    assert done.rows_written + done.rows_skipped == 60
    (interval,) = MaterializationInterval.objects.filter(feature_view=done.feature_view)
    assert (interval.start, interval.end) == (START, REFERENCE)
    assert done.interval_id == interval.pk
    assert set(done.partitions.values_list("state", flat=True)) == {JobState.SUCCEEDED}
    assert all(p.worker.startswith("inline@") and p.attempt == 1 for p in done.partitions.all())


def test_entity_partitions_write_each_entity_once(history):
    requests, _ = jobs.plan_requests([view("hourly")], start=START, end=REFERENCE)
    (job,) = jobs.create_jobs(requests, partitions=3, partition_by="entity")
    assert list(job.partitions.values_list("bucket", "buckets")) == [(0, 3), (1, 3), (2, 3)]
    done = jobs.run_job_inline(job)
    assert done.state == JobState.SUCCEEDED
    assert done.rows_read == done.rows_written == 20  # 20 drivers, each in exactly one bucket
    assert max(p.rows_written for p in done.partitions.all()) < 20  # spread over the buckets
    expected = expected_latest(history, ["driver_id"], ["conv_rate", "trips"], START, REFERENCE)
    assert online("hourly", range(1, 21)) == expected


def test_a_push_view_reads_its_batch_source(history):
    job = jobs.run_job_inline(start_job("pushed"))
    assert job.state == JobState.SUCCEEDED
    assert online("pushed", [2]) == {
        (2,): expected_latest(history, ["driver_id"], ["conv_rate"], START, REFERENCE)[(2,)]
    }


def test_incremental_continues_where_the_last_interval_ended(history):
    first_end = REFERENCE - timedelta(hours=6)
    jobs.run_job_inline(start_job("hourly", end=first_end, incremental=True))
    first = MaterializationInterval.objects.get()
    assert (first.start, first.end) == (REFERENCE - timedelta(days=1), first_end)  # now - ttl (1d) .. end
    assert online("hourly", [3])[(3,)][-1] == first_end
    second = jobs.run_job_inline(start_job("hourly", end=REFERENCE, incremental=True))
    assert (second.start, second.end) == (first_end, REFERENCE)
    assert online("hourly", [3])[(3,)][-1] == REFERENCE
    requests, up_to_date = jobs.plan_requests([view("hourly")], end=REFERENCE, incremental=True, now=REFERENCE)
    assert requests == [] and [v.name for v in up_to_date] == ["hourly"]


def test_intervals_survive_a_re_apply(tmp_path, history):
    jobs.run_job_inline(start_job("hourly"))
    apply_repo(tmp_path, schedule={"every": "1h"})  # the view changes (a schedule), in place
    assert MaterializationInterval.objects.filter(feature_view__name="hourly").count() == 1


def test_one_active_job_per_view(history):
    job = start_job("hourly")
    with pytest.raises(AlreadyRunning) as refused:
        start_job("hourly")
    assert refused.value.views == ["hourly"] and refused.value.job_ids == [job.pk]
    assert refused.value.status_code == 409
    # Even past the check (two processes racing): the database's partial unique index refuses.
    with pytest.raises(AlreadyRunning):
        jobs.create_jobs([jobs.Request(view("hourly"), Window(START, REFERENCE))])
    # All or none: a call naming a busy view and a free one creates nothing.
    requests, _ = jobs.plan_requests([view("pushed"), view("hourly")], start=START, end=REFERENCE)
    with pytest.raises(AlreadyRunning):
        jobs.create_jobs(requests)
    assert not MaterializationJob.objects.filter(view_name="pushed").exists()
    jobs.run_job_inline(job)
    assert start_job("hourly").state == JobState.PENDING  # free again once finished


def test_bad_requests_are_refused_before_anything_is_written(history):
    with pytest.raises(InvalidWindow, match="is after end"):
        start_job("hourly", start=REFERENCE, end=START)
    with pytest.raises(NotMaterializable, match="offline-only"):
        start_job("offline_only")
    assert not MaterializationJob.objects.exists()


def test_claims_respect_fresh_leases_and_take_over_stale_ones(history, settings):
    settings.LARDER_MATERIALIZE_STALE_SECONDS = 30
    job = start_job("hourly", partitions=2)
    first, second = job.partitions.order_by("index")
    claim, partition = jobs.claim_partition(first.pk, "w1@host")
    assert claim == jobs.Claim.RUN and partition.attempt == 1
    job.refresh_from_db()
    assert job.state == JobState.RUNNING and job.started_at is not None
    assert jobs.claim_partition(first.pk, "w2@host")[0] == jobs.Claim.BUSY  # w1's heartbeat is fresh
    MaterializationPartition.objects.filter(pk=first.pk).update(heartbeat_at=timezone.now() - timedelta(minutes=5))
    claim, partition = jobs.claim_partition(first.pk, "w2@host")  # w1 died: taken over
    assert claim == jobs.Claim.RUN and partition.attempt == 2 and partition.workers == ["w1@host", "w2@host"]
    jobs.execute_partition(partition)
    assert jobs.claim_partition(first.pk, "w3@host")[0] == jobs.Claim.DONE
    assert jobs.finalize(job.pk).state == JobState.RUNNING  # one partition to go
    claim, partition = jobs.claim_partition(second.pk, "w1@host")
    jobs.execute_partition(partition)
    assert jobs.finalize(job.pk).state == JobState.SUCCEEDED
    assert jobs.finalize(job.pk).state == JobState.SUCCEEDED  # the final step again (a redelivery): no-op
    assert MaterializationInterval.objects.count() == 1
    assert MaterializationJob.objects.get(pk=job.pk).attempt == 2
    assert jobs.claim_partition(second.pk, "w2@host")[0] == jobs.Claim.GONE


def test_cancel_releases_the_lock_and_stops_running_partitions(history):
    job = start_job("hourly", partitions=2)
    _, partition = jobs.claim_partition(job.partitions.get(index=0).pk, "w1@host")
    assert jobs.cancel_job(job) is True
    assert job.state == JobState.CANCELLED and job.finished_at is not None
    assert set(job.partitions.values_list("state", flat=True)) == {JobState.CANCELLED}
    assert jobs.cancel_job(job) is False
    with pytest.raises(jobs.JobCancelled):
        jobs.execute_partition(partition)  # notices at its first progress report
    assert start_job("hourly").state == JobState.PENDING
    assert not MaterializationInterval.objects.exists()


def test_a_failure_fails_the_job_with_the_error_shown(history, tmp_path):
    (tmp_path / "data" / "history.parquet").unlink()  # the source is gone
    job = jobs.run_job_inline(start_job("hourly", partitions=2))
    assert job.state == JobState.FAILED
    assert "partition 0" in job.error and "history.parquet" in job.error
    states = dict(job.partitions.values_list("index", "state"))
    assert states == {0: JobState.FAILED, 1: JobState.CANCELLED}
    assert not MaterializationInterval.objects.exists()
    assert start_job("hourly").state == JobState.PENDING  # the lock is released


def test_stalled_work_is_found(history, settings):
    settings.LARDER_MATERIALIZE_STALE_SECONDS = 30
    settings.LARDER_MATERIALIZE_REQUEUE_SECONDS = 60
    job = start_job("hourly", partitions=3)
    p0, p1, p2 = job.partitions.order_by("index")
    jobs.claim_partition(p0.pk, "w1@host")
    jobs.claim_partition(p1.pk, "w2@host")
    now = timezone.now()
    MaterializationPartition.objects.filter(pk=p1.pk).update(heartbeat_at=now - timedelta(minutes=2))
    assert jobs.stalled_partitions(now) == [p1.pk]  # p0 is alive, p2 was queued just now
    MaterializationJob.objects.filter(pk=job.pk).update(created_at=now - timedelta(minutes=5))
    assert sorted(jobs.stalled_partitions(now)) == [p1.pk, p2.pk]
    MaterializationPartition.objects.filter(job=job).update(state=JobState.SUCCEEDED)
    assert jobs.unfinalized_jobs() == [job.pk]
    assert jobs.finalize(job.pk).state == JobState.SUCCEEDED
    assert jobs.unfinalized_jobs() == [] and jobs.stalled_partitions(now) == []


def test_resolve_views(history):
    project = view("hourly").project
    assert [v.name for v in jobs.resolve_views(project, None)] == ["hourly", "pushed"]  # online views only
    assert [v.name for v in jobs.resolve_views(project, ["pushed", "hourly"])] == ["pushed", "hourly"]
    with pytest.raises(NotMaterializable, match="nope do not exist"):
        jobs.resolve_views(project, ["nope"])


def test_when_is_a_window_start_microsecond_exact(history):
    start = datetime(2026, 1, 9, 23, 0, 0, 1, tzinfo=UTC)  # just after an hourly row
    job = jobs.run_job_inline(start_job("hourly", start=start, end=REFERENCE))
    assert job.state == JobState.SUCCEEDED
    assert online("hourly", [4])[(4,)][-1] == REFERENCE
    # Rows at exactly 23:00 are outside; 00:00 (REFERENCE) is inside.
    assert job.rows_read == 20
