"""POST /api/v1/historical-features on SQLite with Parquet sources: every format, feature
services (aliases, full names, on-demand views), uploads, save_as, the async job and its
endpoints, every bad input, and the gate. Callers use real personal bearer tokens."""

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.ipc as ipc
import pyarrow.parquet as pq
import pytest
from django.core.management import call_command
from django.test import Client

from access.identity.personal_tokens import issue_token
from catalog.models import RegistryChange, SavedDataset
from larder.celery import app as celery_app
from serving.historical.entity_sql import check_select
from serving.historical.models import HistoricalJob
from serving.historical.tasks import run_historical_job
from serving.offline.base import OfflineInputError
from tests.historical_data import (
    BALANCE,
    ENTITY_ROWS,
    PROJECT,
    URL,
    apply_repo,
    entities_json,
    entity_table,
    expected_conv,
    iso,
    post,
    request_body,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def data_dir(tmp_path, settings):
    settings.LARDER_DATA_DIR = tmp_path / "larder-data"
    return settings.LARDER_DATA_DIR


@pytest.fixture
def repo(tmp_path, data_dir):
    return apply_repo(tmp_path / "repo")


@pytest.fixture
def eager_celery():
    """Tasks run in the process, errors propagate (the settings read LARDER_CELERY_EAGER once)."""
    old = celery_app.conf.task_always_eager, celery_app.conf.task_eager_propagates
    celery_app.conf.task_always_eager = celery_app.conf.task_eager_propagates = True
    yield
    celery_app.conf.task_always_eager, celery_app.conf.task_eager_propagates = old


@pytest.fixture
def as_role(make_user):
    """A client calling with a personal bearer token of a new user holding `roles`."""
    made = []

    def _client(*roles: str, superuser: bool = False) -> Client:
        user = make_user(f"u{len(made)}", roles=roles, is_superuser=superuser)
        made.append(user)
        client = Client(HTTP_AUTHORIZATION=f"Bearer {issue_token(user, 'test', 30)[1]}")
        client.user = user
        return client

    return _client


@pytest.fixture
def reader(as_role):
    return as_role("reader")


def columns(response) -> dict[str, list]:
    assert response.status_code == 200, response.content
    return response.json()["columns"]


def detail(response) -> str:
    body = response.json()
    items = body["detail"]
    return json.dumps(items) if not isinstance(items, str) else items


# -- results and formats ------------------------------------------------------------------------


def test_json_result_is_point_in_time_correct(repo, reader):
    cols = columns(post(reader, request_body()))
    assert list(cols) == ["driver_id", "event_timestamp", "customer_id", "val_to_add", "conv_rate", "balance"]
    assert cols["conv_rate"] == expected_conv()
    assert cols["balance"] == [BALANCE[r[2]] for r in ENTITY_ROWS]
    assert cols["event_timestamp"] == [iso(r[1]) for r in ENTITY_ROWS]
    assert cols["driver_id"] == [r[0] for r in ENTITY_ROWS]  # order and the duplicate row kept


def test_full_feature_names_and_request_order(repo, reader):
    body = request_body(
        features=["customer_profile:tier", "driver_hourly_stats:acc_rate", "driver_hourly_stats:avg_daily_trips"],
        full_feature_names=True,
    )
    cols = columns(post(reader, body))
    assert list(cols)[4:] == [
        "customer_profile__tier",
        "driver_hourly_stats__acc_rate",
        "driver_hourly_stats__avg_daily_trips",
    ]
    assert cols["driver_hourly_stats__avg_daily_trips"][:2] == [10, 12]  # field mapping trips -> avg_daily_trips
    assert cols["customer_profile__tier"][0] == "gold"


def parquet_of(response) -> pa.Table:
    return pq.read_table(io.BytesIO(response.content))


@pytest.mark.parametrize(
    ("how", "media"),
    [
        ({"format": "parquet"}, "application/vnd.apache.parquet"),
        ({"HTTP_ACCEPT": "application/vnd.apache.parquet"}, "application/vnd.apache.parquet"),
        ({"format": "arrow"}, "application/vnd.apache.arrow.stream"),
        ({"HTTP_ACCEPT": "text/csv;q=0.5, application/vnd.apache.arrow.stream"}, "application/vnd.apache.arrow.stream"),
        ({"format": "csv"}, "text/csv"),
        ({"format": "json", "HTTP_ACCEPT": "text/csv"}, "application/json"),  # format wins over Accept
        ({}, "application/json"),
    ],
)
def test_every_format(repo, reader, how, media):
    how = dict(how)
    fmt = how.pop("format", None)
    body = request_body(**({"format": fmt} if fmt else {}))
    response = post(reader, body, **how)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith(media)
    assert response["X-Larder-Rows"] == str(len(ENTITY_ROWS))
    if media.endswith("parquet"):
        table = parquet_of(response)
    elif media.endswith("arrow.stream"):
        table = ipc.open_stream(response.content).read_all()
    elif media == "text/csv":
        rows = list(csv.DictReader(io.StringIO(response.content.decode())))
        conv = [float(r["conv_rate"]) if r["conv_rate"] else None for r in rows]
        assert conv == pytest.approx(expected_conv())
        assert rows[0]["event_timestamp"].startswith("2024-05-01 10:30:00")
        return
    else:
        assert response.json()["columns"]["conv_rate"] == expected_conv()
        return
    assert table.schema.field("event_timestamp").type == pa.timestamp("us", tz="UTC")
    assert [None if v is None else round(v, 6) for v in table.column("conv_rate").to_pylist()] == expected_conv()
    assert table.schema.field("conv_rate").type == pa.float32()


def test_json_sent_as_a_form_is_read_as_json(repo, reader):
    """`curl -d '{...}'` labels JSON as a form."""
    response = reader.post(URL, json.dumps(request_body()), content_type="application/x-www-form-urlencoded")
    assert columns(response)["conv_rate"] == expected_conv()


def test_bad_format_names_it(repo, reader):
    response = post(reader, request_body(format="xlsx"))
    assert response.status_code == 422
    assert "format" in detail(response) and "xlsx" in detail(response)


def test_uploaded_parquet_and_csv_give_the_json_answer(repo, reader):
    expected = columns(post(reader, request_body()))
    sink = io.BytesIO()
    pq.write_table(entity_table(), sink)
    sink.seek(0)
    sink.name = "entities.parquet"
    features = ["driver_hourly_stats:conv_rate", "customer_profile:balance"]
    response = reader.post(URL, {"project": PROJECT, "features": features, "entity_file": sink})
    assert columns(response) == expected

    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(["driver_id", "event_timestamp", "customer_id", "val_to_add"])
    for driver, ts, customer, val, _ in ENTITY_ROWS:
        writer.writerow([driver, iso(ts), customer, val])
    upload = io.BytesIO(text.getvalue().encode())
    upload.name = "entities.csv"
    response = reader.post(URL, {"project": PROJECT, "features": json.dumps(features), "entity_file": upload})
    assert columns(response) == expected


# -- feature services and on-demand views -----------------------------------------------------------


def test_feature_service_with_alias_and_full_names(repo, as_role):
    client = as_role("service-reader")
    body = request_body(feature_service="aliased", full_feature_names=True)
    del body["features"]
    cols = columns(post(client, body))
    assert list(cols)[4:] == ["hourly__conv_rate", "fresh__conv_rate"]
    assert cols["hourly__conv_rate"] == expected_conv()
    assert cols["fresh__conv_rate"] == expected_conv()  # the push source's batch source: the same rows


def test_feature_service_name_clash_without_full_names(repo, as_role):
    body = request_body(feature_service="aliased")
    del body["features"]
    response = post(as_role("service-reader"), body)
    assert response.status_code == 422
    assert "conv_rate" in detail(response) and "full_feature_names" in detail(response)


def test_feature_service_with_on_demand_view(repo, as_role):
    body = request_body(feature_service="ranker")
    del body["features"]
    cols = columns(post(as_role("service-reader"), body))
    assert list(cols)[4:] == ["conv_rate", "conv_plus_val"]
    expected = [None if c is None else c + r[3] for c, r in zip(expected_conv(), ENTITY_ROWS, strict=True)]
    assert cols["conv_plus_val"] == pytest.approx(expected)


def test_on_demand_view_needs_its_request_data(repo, reader):
    entities = entities_json()
    del entities["val_to_add"]
    response = post(reader, request_body(features=["conv_plus:conv_plus_val"], entities=entities))
    assert response.status_code == 422
    assert "val_to_add" in detail(response)


def test_name_clash_between_views(repo, reader):
    response = post(reader, request_body(features=["driver_hourly_stats:conv_rate", "driver_fresh:conv_rate"]))
    assert response.status_code == 422
    assert "conv_rate" in detail(response)
    ok = post(
        reader,
        request_body(features=["driver_hourly_stats:conv_rate", "driver_fresh:conv_rate"], full_feature_names=True),
    )
    assert list(columns(ok))[4:] == ["driver_hourly_stats__conv_rate", "driver_fresh__conv_rate"]


# -- bad input ------------------------------------------------------------------------------------


def with_entities(**changes):
    entities = entities_json()
    for key, value in changes.items():
        if value is None:
            entities.pop(key)
        else:
            entities[key] = value
    return entities


@pytest.mark.parametrize(
    ("change", "status", "named"),
    [
        ({"entities": with_entities(event_timestamp=None)}, 422, "event_timestamp"),
        ({"entities": with_entities(driver_id=None)}, 422, "driver_id"),
        ({"entities": with_entities(driver_id=["a"] * len(ENTITY_ROWS))}, 422, "driver_id"),
        ({"entities": with_entities(event_timestamp=[1] * len(ENTITY_ROWS))}, 422, "event_timestamp"),
        ({"entities": with_entities(event_timestamp=["yesterday"] * len(ENTITY_ROWS))}, 422, "event_timestamp"),
        ({"entities": {k: [] for k in entities_json()}}, 422, "empty"),
        ({"entities": {}}, 422, "entities"),
        ({"entities": {"driver_id": [1, 2], "event_timestamp": ["2024-05-01T00:00:00Z"]}}, 422, "length"),
        ({"features": ["driver_hourly_stats:nope"]}, 404, "nope"),
        ({"features": ["nope_view:conv_rate"]}, 404, "nope_view"),
        ({"features": ["no-colon"]}, 422, "no-colon"),
        ({"features": []}, 422, "features"),
        ({"feature_service": "nope_service", "features": None}, 404, "nope_service"),
        ({"feature_service": "ranker"}, 422, "exactly one"),
        ({"project": "nope_project"}, 404, "does not exist"),
        ({"entities": None}, 422, "entities"),
        ({"entity_sql": "SELECT 1"}, 422, "entity"),  # two entity sources
        ({"full_feature_names": "maybe"}, 422, "full_feature_names"),
    ],
)
def test_bad_input_is_named(repo, reader, change, status, named):
    body = request_body()
    for key, value in change.items():
        if value is None:
            body.pop(key)
        else:
            body[key] = value
    response = post(reader, body)
    assert response.status_code == status, response.content
    assert named in detail(response)


@pytest.mark.parametrize(
    ("sql", "named"),
    [
        ("DELETE FROM drivers", "DELETE"),
        ("SELECT 1; DROP TABLE drivers", "one statement"),
        ("WITH x AS (DELETE FROM t RETURNING *) SELECT * FROM x", "DELETE"),
        ("SELECT * INTO copy FROM drivers", "INTO"),
        ("", "entity_sql"),
    ],
)
def test_entity_sql_that_is_not_one_select_is_refused(repo, reader, sql, named):
    body = request_body(entity_sql=sql)
    del body["entities"]
    response = post(reader, body)
    assert response.status_code == 422
    assert named in detail(response)


def test_entity_sql_needs_postgres_sources(repo, reader):
    body = request_body(entity_sql="SELECT 1001 AS driver_id, now() AS event_timestamp")
    del body["entities"]
    response = post(reader, body)
    assert response.status_code == 422
    assert "PostgreSQL" in detail(response) and "driver_hourly_stats" in detail(response)


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT 1",
        "select driver_id, ts as event_timestamp from t where note = 'a;b'",
        "WITH x AS (SELECT 1 AS a) SELECT * FROM x;",
        "SELECT $$;DROP$$ AS s -- trailing; comment",
        'SELECT "weird;name" FROM t /* a ; comment */',
        "SELECT E'it\\'s; fine' AS s",
        "SELECT last_update, deleted_at FROM t;  -- ok",
    ],
)
def test_check_select_accepts_single_selects(sql):
    assert check_select(sql).rstrip().endswith(";") is False


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT 1; SELECT 2",
        "SELECT 'unterminated",
        "UPDATE t SET a = 1",
        "VALUES (1)",
        "SELECT 1 /* open",
        "SELECT 1 FOR UPDATE",
        "(SELECT 1); DELETE FROM t",
    ],
)
def test_check_select_refuses(sql):
    with pytest.raises(OfflineInputError):
        check_select(sql)


# -- the gate -------------------------------------------------------------------------------------


def test_describe_without_read_offline_is_403_naming_object_and_action(repo, as_role):
    for role in ("describer", "online-reader"):
        response = post(as_role(role), request_body())
        assert response.status_code == 403
        body = response.json()
        assert body["error_type"] == "FeastPermissionError"
        assert "READ_OFFLINE" in body["detail"] and "feature_view 'driver_hourly_stats'" in body["detail"]


def test_invisible_views_and_services_are_404(repo, as_role):
    nobody = as_role()
    response = post(nobody, request_body())
    assert response.status_code == 404
    assert "driver_hourly_stats" in response.json()["detail"]
    body = request_body(feature_service="ranker")
    del body["features"]
    assert post(nobody, body).status_code == 404
    assert post(as_role("reader"), body).status_code == 404  # views readable, the service is not


def test_service_grant_does_not_open_the_views(repo, as_role):
    assert post(as_role("service-reader"), request_body()).status_code == 404


def test_on_demand_view_needs_its_sources_readable(repo, as_role, make_user):
    # A permission on the on-demand view only: reading it would reveal its source view.
    from access.models import Permission
    from catalog.models import Project

    Permission.objects.create(
        project=Project.objects.get(name=PROJECT),
        name="odfv-only",
        types=["on_demand_feature_view"],
        actions=["DESCRIBE", "READ_OFFLINE"],
        roles=["odfv-only"],
    )
    response = post(as_role("odfv-only"), request_body(features=["conv_plus:conv_plus_val"]))
    assert response.status_code == 403
    assert "driver_hourly_stats" in response.json()["detail"]


def test_anonymous_is_401(repo):
    assert post(Client(), request_body()).status_code == 401


# -- save_as --------------------------------------------------------------------------------------


def test_save_as_registers_the_dataset_with_the_request(repo, as_role, data_dir):
    client = as_role("reader", "dataset-maker")
    body = request_body(save_as={"name": "training_v1", "description": "first cut", "tags": {"team": "ml"}})
    response = post(client, body, HTTP_ACCEPT="application/vnd.apache.parquet")
    assert response.status_code == 200, response.content
    assert response["X-Larder-Saved-Dataset"] == "training_v1"
    dataset = SavedDataset.objects.get(project__name=PROJECT, name="training_v1")
    assert dataset.request == body
    assert dataset.features == ["driver_hourly_stats:conv_rate", "customer_profile:balance"]
    assert set(dataset.join_keys) == {"driver_id", "customer_id"}
    assert dataset.full_feature_names is False
    assert dataset.created_by == client.user
    assert dataset.tags == {"team": "ml"} and dataset.description == "first cut"
    assert dataset.min_event_timestamp == min(r[1] for r in ENTITY_ROWS)
    assert dataset.max_event_timestamp == max(r[1] for r in ENTITY_ROWS)
    assert Path(dataset.storage) == Path(data_dir) / "saved" / PROJECT / "training_v1.parquet"
    assert pq.read_table(dataset.storage).equals(parquet_of(response))
    assert RegistryChange.objects.filter(object_type="saved_dataset", object_name="training_v1").exists()

    again = post(client, body)
    assert again.status_code == 409
    assert "training_v1" in again.json()["detail"]


def test_save_as_with_a_feature_service(repo, as_role):
    client = as_role("service-reader", "dataset-maker")
    body = request_body(feature_service="ranker", save_as={"name": "ranker_set"})
    del body["features"]
    assert post(client, body).status_code == 200
    dataset = SavedDataset.objects.get(name="ranker_set")
    assert dataset.feature_service.name == "ranker"
    assert dataset.features == ["driver_hourly_stats:conv_rate", "conv_plus:conv_plus_val"]


def test_save_as_needs_create(repo, reader):
    response = post(reader, request_body(save_as={"name": "nope"}))
    assert response.status_code == 403
    assert "CREATE" in response.json()["detail"] and "saved_dataset 'nope'" in response.json()["detail"]
    assert not SavedDataset.objects.filter(name="nope").exists()


def test_save_as_bad_name(repo, as_role):
    response = post(as_role("reader", "dataset-maker"), request_body(save_as={"name": "../evil"}))
    assert response.status_code == 422
    assert "save_as" in detail(response)


# -- jobs -----------------------------------------------------------------------------------------


def start_job(client, django_capture_on_commit_callbacks, run: bool = True, **extra):
    with django_capture_on_commit_callbacks(execute=run):
        response = post(client, request_body(**extra), path=URL + "?async=true")
    assert response.status_code == 202, response.content
    body = response.json()
    assert set(body) >= {"job_id", "status_url", "result_url"}
    return body


def test_async_job_runs_and_its_result_matches_the_sync_answer(
    repo, reader, eager_celery, django_capture_on_commit_callbacks, settings
):
    settings.LARDER_HISTORICAL_CHUNK_ROWS = 3  # three chunks: progress, and chunks that must concatenate
    sync = parquet_of(post(reader, request_body(format="parquet")))
    body = start_job(reader, django_capture_on_commit_callbacks)
    status = reader.get(body["status_url"])
    assert status.status_code == 200
    state = status.json()
    assert state["status"] == "SUCCEEDED", state
    assert state["progress"] == {"rows_total": 7, "rows_done": 7, "message": "done: 7 rows"}
    assert state["expires_at"] is not None and state["result_url"]

    result = reader.get(body["result_url"] + "?format=parquet")
    assert result.status_code == 200
    assert result["Content-Type"] == "application/vnd.apache.parquet"
    assert pq.read_table(io.BytesIO(b"".join(result.streaming_content))).equals(sync)

    as_json = reader.get(body["result_url"])  # the request's format (json by default)
    assert as_json.json()["columns"]["conv_rate"] == expected_conv()
    as_csv = reader.get(body["result_url"], HTTP_ACCEPT="text/csv")
    rows = list(csv.DictReader(io.StringIO(b"".join(as_csv.streaming_content).decode())))
    assert len(rows) == 7
    arrow = reader.get(body["result_url"] + "?format=arrow")
    assert ipc.open_stream(b"".join(arrow.streaming_content)).read_all().equals(sync)
    job = HistoricalJob.objects.get(pk=body["job_id"])
    assert job.request == request_body() | {"query": {"async": "true"}}
    assert not job.entity_path.exists()  # the entity rows are removed once the job is done


def test_large_requests_go_async_by_themselves(repo, reader, django_capture_on_commit_callbacks, settings):
    settings.LARDER_HISTORICAL_ASYNC_ROWS = 5
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = post(reader, request_body())
    assert response.status_code == 202
    assert len(callbacks) == 1  # queued on commit
    job = HistoricalJob.objects.get(pk=response.json()["job_id"])
    assert job.state == "PENDING" and job.rows_total == 7 and job.entity_path.exists()


def test_async_save_as(repo, as_role, eager_celery, django_capture_on_commit_callbacks):
    client = as_role("reader", "dataset-maker")
    body = start_job(client, django_capture_on_commit_callbacks, save_as={"name": "from_job"})
    assert client.get(body["status_url"]).json()["status"] == "SUCCEEDED"
    dataset = SavedDataset.objects.get(name="from_job")
    assert pq.read_table(dataset.storage).num_rows == 7
    assert dataset.request["save_as"] == {"name": "from_job"}


def test_job_endpoints_only_for_owner_or_superuser(repo, as_role, django_capture_on_commit_callbacks):
    owner = as_role("reader")
    body = start_job(owner, django_capture_on_commit_callbacks, run=False)
    other = as_role("reader")
    assert other.get(body["status_url"]).status_code == 404
    assert other.get(body["result_url"]).status_code == 404
    root = as_role(superuser=True)
    assert root.get(body["status_url"]).status_code == 200
    assert Client().get(body["status_url"]).status_code == 401
    assert owner.post(body["status_url"]).status_code == 405


def test_result_is_409_while_running_and_410_when_expired(repo, reader, django_capture_on_commit_callbacks, data_dir):
    body = start_job(reader, django_capture_on_commit_callbacks, run=False)
    pending = reader.get(body["result_url"])
    assert pending.status_code == 409
    assert "PENDING" in pending.json()["detail"]
    assert reader.get(body["status_url"]).json()["progress"]["message"] == "queued"

    run_historical_job(body["job_id"])  # the worker's call, in process
    assert reader.get(body["result_url"]).status_code == 200
    assert run_historical_job(body["job_id"]) == "skipped"  # a redelivered message does nothing

    job = HistoricalJob.objects.get(pk=body["job_id"])
    HistoricalJob.objects.filter(pk=job.pk).update(expires_at=datetime.now(UTC) - timedelta(seconds=1))
    call_command("cleanup_historical_results", stdout=io.StringIO())
    assert not Path(job.result_path).exists()
    gone = reader.get(body["result_url"])
    assert gone.status_code == 410
    assert "expired" in gone.json()["detail"]
    assert reader.get(body["status_url"]).json()["expired"] is True


def test_failed_job_reports_its_error(repo, reader, django_capture_on_commit_callbacks):
    body = start_job(reader, django_capture_on_commit_callbacks, run=False)
    Path(repo / "data" / "customer.parquet").unlink()  # the source vanishes before the worker runs
    run_historical_job(body["job_id"])
    state = reader.get(body["status_url"]).json()
    assert state["status"] == "FAILED"
    assert "customer" in state["error"]
    failed = reader.get(body["result_url"])
    assert failed.status_code == 409 and "failed" in failed.json()["detail"]


def test_job_asks_the_gate_again(repo, as_role, django_capture_on_commit_callbacks):
    client = as_role("reader")
    body = start_job(client, django_capture_on_commit_callbacks, run=False)
    client.user.groups.clear()  # the role is withdrawn before the worker runs
    run_historical_job(body["job_id"])
    job = HistoricalJob.objects.get(pk=body["job_id"])
    assert job.state == "FAILED" and "driver_hourly_stats" in job.error


def test_a_job_that_cannot_be_queued_says_so(repo, reader, django_capture_on_commit_callbacks):
    """A broker where nothing listens (a real connection refused): the job is FAILED at once,
    not left PENDING forever."""
    old = celery_app.conf.broker_url, celery_app.conf.task_always_eager, celery_app.conf.broker_connection_timeout
    celery_app.conf.update(broker_url="redis://127.0.0.1:1/15", task_always_eager=False, broker_connection_timeout=1)
    celery_app._pool, celery_app.amqp._producer_pool = None, None
    try:
        body = start_job(reader, django_capture_on_commit_callbacks)
    finally:
        celery_app.conf.update(broker_url=old[0], task_always_eager=old[1], broker_connection_timeout=old[2])
        celery_app._pool, celery_app.amqp._producer_pool = None, None
    state = reader.get(body["status_url"]).json()
    assert state["status"] == "FAILED"
    assert "could not be queued" in state["error"]
