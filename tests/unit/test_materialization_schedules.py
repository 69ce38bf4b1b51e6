"""Schedules: the repo's `schedule:` key, the admin, the django-celery-beat PeriodicTask kept in
step, beat's task (run here directly; a real beat fires it in the integration tier), and
the alert of a failed scheduled job (log line, banner, webhook)."""

import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from django.test import Client
from django_celery_beat.models import PeriodicTask

from access.models import Permission
from catalog.models import FeatureView, Project, RegistryChange
from catalog.repo import RepoValidationError, apply, load_repo, plan
from catalog.repo.testing import write_repo
from larder.celery import app as celery_app
from materialization.models import JobState, MaterializationJob, MaterializationSchedule, Trigger
from materialization.tasks import scheduled_materialize
from tests.materialization_data import apply_repo, repo_files, write_history

pytestmark = pytest.mark.django_db


def reapply(root, schedule):
    return apply(load_repo(write_repo(root, repo_files(schedule))))


@pytest.fixture
def eager():
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = False


def test_a_repo_schedule_becomes_a_periodic_task(tmp_path):
    apply_repo(tmp_path, schedule={"every": "15m"})
    schedule = MaterializationSchedule.objects.get()
    assert (schedule.kind, schedule.every_seconds, schedule.origin, schedule.enabled) == ("interval", 900, "repo", True)
    task = PeriodicTask.objects.get()
    assert task.task == "materialization.scheduled_materialize"
    assert json.loads(task.kwargs) == {"feature_view_id": schedule.feature_view_id}
    assert (task.interval.every, task.interval.period, task.crontab) == (900, "seconds", None)
    assert task.enabled and "mat/hourly" in task.name

    assert not plan(load_repo(write_repo(tmp_path, repo_files({"every": 900})))).changes  # 15m == 900 s: no change

    result = reapply(tmp_path, {"cron": "0  3 * * 1-5", "enabled": False})
    assert 'schedule: {"enabled": true, "every": 900} -> {"cron": "0 3 * * 1-5", "enabled": false}' in str(result)
    task = PeriodicTask.objects.get()
    assert (task.crontab.minute, task.crontab.hour, task.crontab.day_of_week) == ("0", "3", "1-5")
    assert task.interval is None and not task.enabled
    assert str(task.crontab.timezone) == "UTC"

    reapply(tmp_path, None)  # the repo drops it: gone, and so is the periodic task
    assert not MaterializationSchedule.objects.exists() and not PeriodicTask.objects.exists()


@pytest.mark.parametrize(
    ("schedule", "message"),
    [
        ({"every": "5s"}, "shorter than 10 seconds"),
        ({"every": "soon"}, "bad ttl 'soon'"),
        ({"cron": "61 * * * *"}, "bad cron '61 * * * *'"),
        ({"cron": "* * *"}, "needs five fields"),
        ({"cron": "0 * * * *", "every": "1h"}, "exactly one of every"),
        ({"every": "1h", "at": "noon"}, "unknown key(s) at"),
        ({"every": "1h", "enabled": "yes"}, "enabled must be true or false"),
        ("hourly", "must be a mapping"),
    ],
)
def test_bad_schedules_are_reported_with_their_field(tmp_path, schedule, message):
    write_history(tmp_path / "data" / "history.parquet", drivers=1)
    definition = load_repo(write_repo(tmp_path, repo_files(schedule)))
    (issue,) = definition.errors
    assert (issue.object_type, issue.object_name, issue.field) == ("feature_view", "hourly", "schedule")
    assert message in issue.message
    with pytest.raises(RepoValidationError):
        apply(definition)


def test_an_admin_schedule_survives_applies_that_do_not_name_one(tmp_path):
    apply_repo(tmp_path)
    view = FeatureView.objects.get(name="hourly")
    MaterializationSchedule.objects.create(feature_view=view, kind="cron", cron="*/5 * * * *")
    assert not plan(load_repo(write_repo(tmp_path, repo_files(None)))).changes
    reapply(tmp_path, None)
    assert MaterializationSchedule.objects.get().origin == "admin"
    reapply(tmp_path, {"every": "1h"})  # a repo that names one takes it over
    schedule = MaterializationSchedule.objects.get()
    assert (schedule.origin, schedule.kind, schedule.every_seconds) == ("repo", "interval", 3600)
    assert PeriodicTask.objects.get().interval.every == 3600


@pytest.fixture
def staff(tmp_path, make_user):
    apply_repo(tmp_path)
    project = Project.objects.get(name="mat")
    Permission.objects.create(
        project=project, name="editors", actions=["DESCRIBE", "UPDATE"], types=["feature_view"], roles=["editor"]
    )

    def login(name: str, *roles: str) -> Client:
        client = Client()
        client.force_login(make_user(name, roles=roles, is_staff=True))
        return client

    return login


def test_a_schedule_edited_in_the_admin_becomes_a_periodic_task(staff):
    editor, viewer = staff("editor", "editor"), staff("viewer", "viewer")
    view = FeatureView.objects.get(name="hourly")
    url = "/admin/materialization/materializationschedule/add/"
    form = {"feature_view": view.pk, "kind": "interval", "cron": "", "every_seconds": 30, "enabled": "on"}
    assert viewer.post(url, form).status_code == 403  # DESCRIBE only: may not add
    assert not MaterializationSchedule.objects.exists()
    response = editor.post(url, form)
    assert response.status_code == 302, response.content.decode()[:2000]
    schedule = MaterializationSchedule.objects.get()
    assert (schedule.origin, schedule.every_seconds) == ("admin", 30)
    assert PeriodicTask.objects.get().interval.every == 30
    change = RegistryChange.objects.filter(object_name="hourly").latest("pk")
    assert change.diff == {"schedule": [None, "every 30s"]} and change.actor == "admin"

    edit = f"/admin/materialization/materializationschedule/{schedule.pk}/change/"
    bad = editor.post(edit, {**form, "kind": "cron", "cron": "every minute"})
    assert bad.status_code == 200 and "needs five fields" in bad.content.decode()
    assert editor.post(edit, {**form, "kind": "cron", "cron": "*/2 * * * *"}).status_code == 302
    task = PeriodicTask.objects.get()
    assert task.crontab.minute == "*/2" and task.interval is None

    assert "hourly" in viewer.get("/admin/materialization/materializationschedule/").content.decode()
    assert (
        viewer.post(
            f"/admin/materialization/materializationschedule/{schedule.pk}/delete/", {"post": "yes"}
        ).status_code
        == 403
    )
    assert (
        editor.post(
            f"/admin/materialization/materializationschedule/{schedule.pk}/delete/", {"post": "yes"}
        ).status_code
        == 302
    )
    assert not PeriodicTask.objects.exists()
    # django-celery-beat's own pages are not mounted: they would bypass the gate.
    assert editor.get("/admin/django_celery_beat/periodictask/").status_code == 404


def test_the_scheduled_task_materializes_incrementally(tmp_path, eager, django_capture_on_commit_callbacks):
    apply_repo(tmp_path, schedule={"every": "1h"})
    view = FeatureView.objects.get(name="hourly")
    with django_capture_on_commit_callbacks(execute=True):
        assert scheduled_materialize(view.pk).startswith("job ")
    job = MaterializationJob.objects.get()
    assert (job.trigger, job.incremental, job.state) == (Trigger.SCHEDULE, True, JobState.SUCCEEDED)
    assert view.materialization_intervals.count() == 1
    assert scheduled_materialize(999_999) == "gone"


class Hook(BaseHTTPRequestHandler):
    received: list = []

    def do_POST(self):
        Hook.received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def webhook(settings):
    server = HTTPServer(("127.0.0.1", 0), Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    Hook.received = []
    settings.LARDER_ALERT_WEBHOOK_URL = f"http://127.0.0.1:{server.server_port}/alerts"
    yield Hook.received
    server.shutdown()


def test_a_failed_scheduled_job_raises_the_alert(
    tmp_path, make_user, webhook, caplog, eager, django_capture_on_commit_callbacks
):
    apply_repo(tmp_path, schedule={"every": "1h"})
    view = FeatureView.objects.get(name="hourly")
    (tmp_path / "data" / "history.parquet").unlink()
    with (
        caplog.at_level(logging.ERROR, logger="materialization.alerts"),
        django_capture_on_commit_callbacks(execute=True),
    ):
        scheduled_materialize(view.pk)
    job = MaterializationJob.objects.get()
    assert job.state == JobState.FAILED and job.alerted_at is not None
    assert any("ALERT Scheduled materialization of mat/hourly failed" in r.message for r in caplog.records)
    (hook,) = webhook
    assert hook["job"]["id"] == job.pk and hook["job"]["feature_view"] == "hourly" and "history.parquet" in hook["text"]

    viewer, nobody = Client(), Client()
    viewer.force_login(make_user("viewer", roles=("viewer",)))
    nobody.force_login(make_user("nobody"))
    banner = 'role="alert"'
    page = viewer.get("/materialization/jobs/").content.decode()
    assert banner in page and "Scheduled materialization failed" in page and "mat/hourly" in page
    assert banner not in nobody.get("/materialization/jobs/").content.decode()  # not a view they may see

    # The next scheduled run succeeds: the banner goes.
    write_history(tmp_path / "data" / "history.parquet")
    with django_capture_on_commit_callbacks(execute=True):
        scheduled_materialize(view.pk)
    assert MaterializationJob.objects.latest("pk").state == JobState.SUCCEEDED
    assert banner not in viewer.get("/materialization/jobs/").content.decode()


def test_a_view_that_cannot_be_materialized_any_more_fails_its_schedule(tmp_path, webhook):
    apply_repo(tmp_path, schedule={"every": "1h"})
    view = FeatureView.objects.get(name="hourly")
    FeatureView.objects.filter(pk=view.pk).update(online=False)
    assert scheduled_materialize(view.pk).startswith("failed")
    job = MaterializationJob.objects.get()
    assert job.state == JobState.FAILED and "offline-only" in job.error
    assert len(webhook) == 1
