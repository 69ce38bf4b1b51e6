"""`manage.py materialize` and `manage.py materialize-incremental` (Feast's CLI verbs)."""

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from catalog.models import MaterializationInterval
from larder.celery import app as celery_app
from materialization.models import JobState, MaterializationJob, Trigger
from tests.materialization_data import DAYS, REFERENCE, apply_repo

pytestmark = pytest.mark.django_db
START = REFERENCE - timedelta(days=DAYS)


@pytest.fixture
def history(tmp_path):
    return apply_repo(tmp_path)


def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO())
    return out.getvalue()


def test_materialize_shows_progress_and_records_intervals(history):
    out = run("materialize", START.isoformat(), REFERENCE.isoformat(), "--views", "hourly", "--partitions", "2")
    assert "Materializing mat/hourly" in out and "in 2 partition(s)" in out
    assert "100%  hourly  2/2 partitions  " in out  # the progress bar's last state
    assert "hourly: succeeded, 40 rows read" in out
    job = MaterializationJob.objects.get()
    assert (job.trigger, job.state) == (Trigger.CLI, JobState.SUCCEEDED)
    assert MaterializationInterval.objects.get().end == REFERENCE


def test_materialize_incremental_every_online_view(history):
    out = run("materialize-incremental", "now", "--no-progress")
    assert "[" not in out.replace("[20", "")  # no progress bar, only the windows and results
    assert sorted(MaterializationJob.objects.values_list("view_name", flat=True)) == ["hourly", "pushed"]
    end = MaterializationJob.objects.get(view_name="hourly").end
    again = run("materialize-incremental", end.isoformat())
    assert f"hourly: already materialized up to {end.isoformat()}" in again


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("materialize", REFERENCE.isoformat(), START.isoformat()), "is after end"),
        (("materialize", "yesterday", "now"), "start 'yesterday' is not an ISO 8601 timestamp"),
        (("materialize", START.isoformat(), "now", "--views", "offline_only"), "offline-only"),
        (("materialize", START.isoformat(), "now", "--views", "nope"), "nope do not exist in project mat"),
        (("materialize-incremental", "now", "--project", "other"), "no project named 'other'"),
    ],
)
def test_errors_are_command_errors(history, args, message):
    with pytest.raises(CommandError, match=message):
        run(*args)
    assert not MaterializationJob.objects.exists()


def test_a_view_already_running_is_refused(history):
    run("materialize", START.isoformat(), REFERENCE.isoformat(), "--views", "hourly", "--async")  # queued, no worker
    with pytest.raises(CommandError, match="already materializing: hourly"):
        run("materialize", START.isoformat(), REFERENCE.isoformat(), "--views", "hourly")


def test_async_queues_on_the_workers(history, django_capture_on_commit_callbacks):
    """--async queues; here Celery runs eagerly once the job's transaction commits (the
    integration tier runs real workers, and --wait)."""
    celery_app.conf.task_always_eager = True
    try:
        with django_capture_on_commit_callbacks(execute=True):
            out = run("materialize-incremental", "now", "--views", "hourly", "--async")
    finally:
        celery_app.conf.task_always_eager = False
    assert "hourly: job" in out and "queued" in out
    assert MaterializationJob.objects.get().state == JobState.SUCCEEDED
