"""The Python client (clients/python, `larder_client`) against a live server over real
HTTP, with a personal API token: training sets (sync, as a job with progress, from a
feature service, saved), online features, push, and errors carrying the server's detail."""

from datetime import UTC, datetime

import pandas as pd
import pytest
from larder_client import AuthenticationError, Client, Conflict, InvalidRequest, NotFound, PermissionDenied

from access.identity.personal_tokens import issue_token
from catalog.models import SavedDataset
from larder.celery import app as celery_app
from tests.historical_data import ENTITY_ROWS, PROJECT, apply_repo, expected_conv

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def repo(tmp_path, settings):
    settings.LARDER_DATA_DIR = tmp_path / "larder-data"
    return apply_repo(tmp_path / "repo")


@pytest.fixture
def eager_celery():
    old = celery_app.conf.task_always_eager, celery_app.conf.task_eager_propagates
    celery_app.conf.task_always_eager = celery_app.conf.task_eager_propagates = True
    yield
    celery_app.conf.task_always_eager, celery_app.conf.task_eager_propagates = old


@pytest.fixture
def client_for(live_server, make_user):
    """Clients of new users with `roles`; their keep-alive connections are closed after the
    test, so no server thread outlives it holding the shared in-memory SQLite connection."""
    made: list[Client] = []

    def _client(*roles: str) -> Client:
        user = make_user(f"c{len(roles)}{'-'.join(roles)}", roles=roles)
        made.append(
            Client(live_server.url, issue_token(user, "client test", 30)[1], project=PROJECT, poll_interval=0.05)
        )
        return made[-1]

    yield _client
    for client in made:
        client.close()


def entity_df() -> pd.DataFrame:
    """Naive timestamps on purpose: the server reads them as UTC."""
    return pd.DataFrame(
        {
            "driver_id": [r[0] for r in ENTITY_ROWS],
            "event_timestamp": [r[1].replace(tzinfo=None) for r in ENTITY_ROWS],
            "customer_id": [r[2] for r in ENTITY_ROWS],
            "val_to_add": [r[3] for r in ENTITY_ROWS],
            "label": [i % 2 for i in range(len(ENTITY_ROWS))],
        }
    )


def conv(df: pd.DataFrame, column: str = "conv_rate") -> list:
    return [None if pd.isna(v) else round(float(v), 6) for v in df[column]]


def test_training_set(repo, client_for):
    df = client_for("reader").get_historical_features(
        entity_df(), features=["driver_hourly_stats:conv_rate", "customer_profile:balance"]
    )
    assert list(df.columns) == [
        "driver_id",
        "event_timestamp",
        "customer_id",
        "val_to_add",
        "label",
        "conv_rate",
        "balance",
    ]
    assert conv(df) == expected_conv()
    assert df["label"].tolist() == [i % 2 for i in range(len(ENTITY_ROWS))]  # carried along
    assert str(df["event_timestamp"].dt.tz) == "UTC"
    assert df["event_timestamp"].iloc[0] == pd.Timestamp(datetime(2024, 5, 1, 10, 30, tzinfo=UTC))


def test_training_set_from_a_feature_service_with_full_names(repo, client_for):
    df = client_for("service-reader").get_historical_features(
        entity_df(), feature_service="aliased", full_feature_names=True
    )
    assert list(df.columns)[-2:] == ["hourly__conv_rate", "fresh__conv_rate"]
    assert conv(df, "hourly__conv_rate") == expected_conv()


def test_training_set_as_a_job_with_progress(repo, client_for, eager_celery):
    seen = []
    client = client_for("reader")
    df = client.get_historical_features(
        entity_df(), features=["driver_hourly_stats:conv_rate"], run_async=True, progress=seen.append
    )
    assert conv(df) == expected_conv()
    assert seen and seen[-1]["status"] == "SUCCEEDED"
    assert seen[-1]["progress"]["rows_done"] == len(ENTITY_ROWS)


def test_save_as_and_its_conflict(repo, client_for):
    client = client_for("reader", "dataset-maker")
    client.get_historical_features(entity_df(), features=["driver_hourly_stats:conv_rate"], save_as="from_client")
    assert SavedDataset.objects.get(name="from_client").features == ["driver_hourly_stats:conv_rate"]
    with pytest.raises(Conflict) as caught:
        client.get_historical_features(entity_df(), features=["driver_hourly_stats:conv_rate"], save_as="from_client")
    assert "from_client" in caught.value.detail


def test_errors_carry_the_servers_detail(repo, client_for, live_server):
    reader = client_for("reader")
    with pytest.raises(NotFound) as caught:
        reader.get_historical_features(entity_df(), features=["driver_hourly_stats:nope"])
    assert "nope" in caught.value.detail and caught.value.status_code == 404
    with pytest.raises(InvalidRequest) as caught:
        reader.get_historical_features(
            entity_df().drop(columns=["driver_id"]), features=["driver_hourly_stats:conv_rate"]
        )
    assert "driver_id" in caught.value.detail and caught.value.status_code == 422
    with pytest.raises(PermissionDenied) as caught:
        client_for("describer").get_historical_features(entity_df(), features=["driver_hourly_stats:conv_rate"])
    assert "READ_OFFLINE" in caught.value.detail
    with (
        Client(live_server.url, "lrd_forged_token", project=PROJECT) as forged,
        pytest.raises(AuthenticationError),
    ):
        forged.get_historical_features(entity_df(), features=["driver_hourly_stats:conv_rate"])


def test_push_then_online_features(repo, client_for):
    client = client_for("pusher", "online-reader")
    now = datetime.now(UTC).replace(microsecond=0)
    pushed = pd.DataFrame(
        {
            "driver_id": [1001, 1002],
            "event_timestamp": [now, now],
            "conv_rate": [0.25, 0.75],
            "acc_rate": [0.5, 0.5],
            "avg_daily_trips": [3, 4],
        }
    )
    report = client.push("driver_push", pushed, to="online")
    assert report["status_code"] == 200 and report["rows_written"] == 2
    online = client.get_online_features(["driver_fresh:conv_rate"], {"driver_id": [1002, 1001, 9999]})
    assert online["driver_id"] == [1002, 1001, 9999]
    assert online["conv_rate"] == [0.75, 0.25, None]
    frame = client.get_online_features(["driver_fresh:conv_rate"], pd.DataFrame({"driver_id": [1001]}), as_frame=True)
    assert frame["conv_rate"].tolist() == [0.25]
    with pytest.raises(PermissionDenied) as caught:  # Feast's error shape on the feature-server paths
        client_for("online-pusher").push("driver_push", pushed, to="offline")
    assert "WRITE_OFFLINE" in caught.value.detail
