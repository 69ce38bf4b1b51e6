"""Materialization over HTTP (Feast's /materialize and /materialize-incremental, the job REST
API) and the jobs page, each through the gate: WRITE_ONLINE to start or cancel, DESCRIBE
to see. Async runs go through Celery in eager mode (the integration tier uses real workers)."""

import json
from datetime import timedelta

import pytest
from django.test import Client

from larder.celery import app as celery_app
from materialization import jobs
from materialization.models import JobState, MaterializationJob, Trigger
from tests.materialization_data import DAYS, PROJECT, REFERENCE, apply_repo, expected_latest
from tests.unit.test_materialization_jobs import online, start_job, view

pytestmark = pytest.mark.django_db
START = REFERENCE - timedelta(days=DAYS)
WINDOW = {"start_ts": START.isoformat().replace("+00:00", "Z"), "end_ts": REFERENCE.isoformat()}


@pytest.fixture
def history(tmp_path):
    return apply_repo(tmp_path)


@pytest.fixture
def eager():
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = False


@pytest.fixture
def client_for(make_user):
    def make(name: str, *roles: str) -> Client:
        client = Client()
        client.force_login(make_user(name, roles=roles))
        return client

    return make


def post(client: Client, path: str, body: dict):
    return client.post(path, json.dumps(body), content_type="application/json")


def feast_error(response) -> dict:
    """Feast's error body: a JSON string holding {module, class, message}."""
    return json.loads(json.loads(response.content))


def test_sync_materialize_writes_and_answers_null(history, client_for):
    response = post(client_for("op", "operator"), "/materialize", {**WINDOW, "feature_views": ["hourly"]})
    assert response.status_code == 200 and response.json() is None
    job = MaterializationJob.objects.get()
    assert (job.state, job.trigger, job.requested_by.username) == (JobState.SUCCEEDED, Trigger.API, "op")
    assert online("hourly", [5]) == {
        (5,): expected_latest(history, ["driver_id"], ["conv_rate", "trips"], START, REFERENCE)[(5,)]
    }


def test_async_materialize_answers_202_with_job_ids(history, client_for, eager, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = post(
            client_for("op", "operator"), "/materialize?async=true", {**WINDOW, "feature_views": None, "partitions": 2}
        )
    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "accepted" and body["feature_views"] == ["hourly", "pushed"]  # every online view
    done = MaterializationJob.objects.filter(pk__in=body["jobs"])
    assert sorted(done.values_list("state", flat=True)) == [JobState.SUCCEEDED] * 2
    assert all(j.partitions_total == 2 for j in done)


def test_materialize_incremental(history, client_for):
    client = client_for("op", "operator")
    end = REFERENCE - timedelta(hours=3)
    first = {"start_ts": START.isoformat(), "end_ts": end.isoformat(), "feature_views": ["hourly"]}
    assert post(client, "/materialize", first).status_code == 200
    body = {"end_ts": REFERENCE.isoformat(), "feature_views": ["hourly"]}
    assert post(client, "/materialize-incremental", body).status_code == 200
    job = MaterializationJob.objects.order_by("-pk").first()
    assert job.incremental and (job.start, job.end) == (end, REFERENCE)  # continues where the last run stopped
    assert post(client, "/materialize-incremental", body).status_code == 200  # up to date: nothing to do
    assert MaterializationJob.objects.count() == 2


def test_a_view_already_materializing_answers_409(history, client_for):
    running = start_job("hourly")
    response = post(client_for("op", "operator"), "/materialize", {**WINDOW, "feature_views": ["pushed", "hourly"]})
    assert response.status_code == 409
    body = response.json()
    assert body["feature_views"] == ["hourly"] and body["jobs"] == [running.pk]
    assert "already materializing" in body["error"]
    assert MaterializationJob.objects.count() == 1  # nothing started, not even the free view


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"start_ts": REFERENCE.isoformat(), "end_ts": START.isoformat(), "feature_views": ["hourly"]}, "is after end"),
        ({"end_ts": REFERENCE.isoformat(), "feature_views": ["hourly"]}, "start_ts: an ISO 8601 timestamp is required"),
        ({**WINDOW, "feature_views": ["offline_only"]}, "offline-only"),
        ({"start_ts": "last tuesday", "end_ts": REFERENCE.isoformat(), "feature_views": ["hourly"]}, "not an ISO 8601"),
        ({**WINDOW, "feature_views": "hourly"}, "feature_views: a list"),
        ({**WINDOW, "feature_views": ["hourly"], "partitions": 99}, "at most 8"),
    ],
)
def test_bad_requests_answer_422(history, client_for, body, message):
    response = post(client_for("op", "operator"), "/materialize", body)
    assert response.status_code == 422
    assert message in feast_error(response)["message"]
    assert not MaterializationJob.objects.exists()


def test_the_gate(history, client_for):
    body = {**WINDOW, "feature_views": ["hourly"]}
    denied = post(client_for("viewer", "viewer"), "/materialize", body)  # may see, may not write
    assert denied.status_code == 403
    assert feast_error(denied)["class"] == "FeastPermissionError"
    assert "WRITE_ONLINE on feature_view 'hourly'" in feast_error(denied)["message"]
    hidden = post(client_for("nobody"), "/materialize", body)  # may not even see it: as missing
    assert hidden.status_code == 404
    assert feast_error(hidden)["class"] == "FeatureViewNotFoundException"
    assert post(client_for("nobody2"), "/materialize", {**WINDOW, "feature_views": None}).status_code == 422
    assert Client().post("/materialize", body, content_type="application/json").status_code == 401
    assert not MaterializationJob.objects.exists()


def test_job_rest_api_lists_shows_and_cancels_through_the_gate(history, client_for):
    done = jobs.run_job_inline(start_job("pushed"))
    running = start_job("hourly", partitions=2)
    viewer, operator, nobody = client_for("viewer", "viewer"), client_for("op", "operator"), client_for("nobody")

    listing = viewer.get("/api/v1/materialization-jobs").json()
    assert [j["id"] for j in listing["jobs"]] == [running.pk, done.pk] and listing["count"] == 2
    assert viewer.get("/api/v1/materialization-jobs?state=succeeded").json()["jobs"][0]["id"] == done.pk
    assert viewer.get("/api/v1/materialization-jobs?feature_view=hourly").json()["count"] == 1
    assert viewer.get("/api/v1/materialization-jobs?state=bogus").status_code == 422
    assert nobody.get("/api/v1/materialization-jobs").json() == {"jobs": [], "count": 0}

    detail = viewer.get(f"/api/v1/materialization-jobs/{running.pk}").json()
    assert detail["state"] == "PENDING" and [p["index"] for p in detail["partitions"]] == [0, 1]
    assert detail["project"] == PROJECT and detail["feature_view"] == "hourly"
    assert nobody.get(f"/api/v1/materialization-jobs/{running.pk}").status_code == 404

    assert viewer.delete(f"/api/v1/materialization-jobs/{running.pk}").status_code == 403
    assert nobody.delete(f"/api/v1/materialization-jobs/{running.pk}").status_code == 404
    cancelled = operator.delete(f"/api/v1/materialization-jobs/{running.pk}")
    assert cancelled.status_code == 200 and cancelled.json()["state"] == "CANCELLED"


def test_jobs_page_shows_progress_and_gates_cancel(history, client_for):
    running = start_job("hourly", partitions=4)
    jobs.claim_partition(running.partitions.get(index=0).pk, "w1@host")
    MaterializationJob.objects.filter(pk=running.pk).update(partitions_done=1, rows_written=1234)
    viewer, operator, nobody = client_for("viewer", "viewer"), client_for("op", "operator"), client_for("nobody")

    page = viewer.get("/materialization/jobs/").content.decode()
    assert 'aria-valuenow="25"' in page and 'data-rows-written="1234"' in page
    assert 'hx-trigger="every 1s"' in page  # polls while a job runs
    assert "Cancel" not in page and "Run incremental" not in page  # a viewer may not write
    operator_page = operator.get("/materialization/jobs/?view=hourly&state=running").content.decode()
    assert f"/materialization/jobs/{running.pk}/cancel" in operator_page and "Run incremental" in operator_page
    assert "hourly" not in nobody.get("/materialization/jobs/").content.decode()

    table = viewer.get("/materialization/jobs/table?state=SUCCEEDED").content.decode()
    assert "No materialization jobs match" in table and 'hx-trigger="every 5s"' in table
    detail = viewer.get(f"/materialization/jobs/{running.pk}/").content.decode()
    assert "w1@host" in detail
    assert nobody.get(f"/materialization/jobs/{running.pk}/").status_code == 404

    assert viewer.post(f"/materialization/jobs/{running.pk}/cancel").status_code == 403
    assert operator.post(f"/materialization/jobs/{running.pk}/cancel").status_code == 302
    assert MaterializationJob.objects.get(pk=running.pk).state == JobState.CANCELLED


def test_run_now_from_the_page(history, client_for, eager, django_capture_on_commit_callbacks):
    hourly = view("hourly")
    assert client_for("viewer", "viewer").post("/materialization/run", {"feature_view": hourly.pk}).status_code == 403
    with django_capture_on_commit_callbacks(execute=True):
        response = client_for("op", "operator").post("/materialization/run", {"feature_view": hourly.pk})
    assert response.status_code == 302
    job = MaterializationJob.objects.get()
    assert (job.trigger, job.incremental, job.state) == (Trigger.UI, True, JobState.SUCCEEDED)
