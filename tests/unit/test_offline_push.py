"""/push with `to: offline` and `online_and_offline`: rows appended to the push source's
batch source (a folder of Parquet files here) take part in later training sets; the
gate asks WRITE_OFFLINE; bad rows and failing stores write nothing, or say exactly what
was written."""

import json

import pytest
from django.test import Client

from access.identity.personal_tokens import issue_token
from tests.historical_data import PROJECT, apply_repo, at, iso, post

pytestmark = pytest.mark.django_db
PUSH = "/push"


@pytest.fixture
def repo(tmp_path, settings):
    settings.LARDER_DATA_DIR = tmp_path / "larder-data"
    return apply_repo(tmp_path / "repo")


@pytest.fixture
def as_role(make_user):
    made = []

    def _client(*roles: str) -> Client:
        user = make_user(f"p{len(made)}", roles=roles)
        made.append(user)
        return Client(HTTP_AUTHORIZATION=f"Bearer {issue_token(user, 'push', 30)[1]}")

    return _client


@pytest.fixture
def pusher(as_role):
    return as_role("pusher", "reader", "online-reader")


def pushed(conv: float = 0.9) -> dict:
    """Driver 1003 (no history) at 10:00, and a late correction for 1001 at 10:15."""
    return {
        "driver_id": [1003, 1001],
        "event_timestamp": [iso(at(10)), iso(at(10, 15))],
        "conv_rate": [conv, 0.15],
        "acc_rate": [0.5, 0.5],
        "trips": [7, 8],  # the batch source's column name (field_mapping trips -> avg_daily_trips)
    }


def push(client, to: str, df: dict | None = None):
    return post(client, {"project": PROJECT, "push_source_name": "driver_push", "df": df or pushed(), "to": to}, PUSH)


def training(client, view: str = "driver_fresh") -> list:
    body = {
        "project": PROJECT,
        "features": [f"{view}:conv_rate", f"{view}:avg_daily_trips"],
        "entities": {"driver_id": [1003, 1001, 1001], "event_timestamp": [iso(at(10, 30))] * 2 + [iso(at(10, 10))]},
    }
    response = post(client, body)
    assert response.status_code == 200, response.content
    columns = response.json()["columns"]
    return list(zip(columns["conv_rate"], columns["avg_daily_trips"], strict=True))


def parts(repo) -> list[str]:
    return sorted(p.name for p in (repo / "data" / "driver").iterdir())


def online_conv(client) -> list:
    body = {"project": PROJECT, "features": ["driver_fresh:conv_rate"], "entities": {"driver_id": [1003, 1001]}}
    data = post(client, body, "/get-online-features").json()
    return data["results"][1]["values"]


def test_offline_push_rows_join_later_training_sets(repo, pusher):
    assert training(pusher) == [(None, None), (0.1, 10), (0.1, 10)]
    response = push(pusher, "offline")
    assert response.status_code == 200, response.content
    assert response["X-Larder-Offline-Rows-Written"] == "2"
    assert "X-Larder-Rows-Written" not in response  # nothing online
    assert len(parts(repo)) == 2 and all(not p.startswith(".") for p in parts(repo))  # one new file, renamed
    # 1003 now has a row; 1001's 10:15 row wins at 10:30 over the 10:00 one, but not at 10:10.
    assert training(pusher) == [(0.9, 7), (0.15, 8), (0.1, 10)]
    assert training(pusher, "driver_hourly_stats") == [(0.9, 7), (0.15, 8), (0.1, 10)]  # the same batch source
    assert online_conv(pusher) == [None, None]


def test_online_and_offline_writes_both(repo, pusher):
    response = push(pusher, "online_and_offline")
    assert response.status_code == 200, response.content
    assert response["X-Larder-Offline-Rows-Written"] == "2"
    assert response["X-Larder-Rows-Written"] == "2"
    assert online_conv(pusher) == [0.9, 0.15]
    assert training(pusher)[0] == (0.9, 7)


def test_write_offline_is_required(repo, as_role):
    online_only = as_role("online-pusher")
    assert push(online_only, "online").status_code == 200
    for to in ("offline", "online_and_offline"):
        denied = push(online_only, to)
        assert denied.status_code == 403
        message = json.loads(json.loads(denied.content))["message"]
        assert "WRITE_OFFLINE" in message and "feature_view 'driver_fresh'" in message
    assert parts(repo) == ["part-0.parquet"]


def test_bad_rows_write_nothing(repo, pusher):
    df = pushed()
    del df["acc_rate"]
    refused = push(pusher, "online_and_offline", df)
    assert refused.status_code == 422
    assert "acc_rate" in json.loads(json.loads(refused.content))["message"]
    df = pushed(conv="high")
    assert push(pusher, "offline", df).status_code == 422
    assert parts(repo) == ["part-0.parquet"]
    assert online_conv(pusher) == [None, None]


def test_a_failing_offline_store_writes_nothing_online(repo, pusher):
    (repo / "data" / "driver" / "part-1.parquet").write_bytes(b"not parquet")  # the batch folder is unreadable
    response = push(pusher, "online_and_offline")
    assert response.status_code == 502
    assert "nothing was written" in json.loads(json.loads(response.content))["message"]
    assert online_conv(pusher) == [None, None]


def test_a_failing_online_store_after_the_offline_write_says_so(repo, pusher, settings):
    # A real Redis online store at a port where nothing listens: the online write fails for real.
    settings.LARDER_ONLINE_STORE = "redis"  # the store is rebuilt on a settings change
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    response = push(pusher, "online_and_offline")
    assert response.status_code == 500
    message = json.loads(json.loads(response.content))["message"]
    assert "offline written (2 rows appended to data source 'driver_hourly')" in message
    assert "online failed" in message and '"to": "online"' in message
    settings.LARDER_ONLINE_STORE = "sql"
    assert training(pusher)[0] == (0.9, 7)  # the offline part is there, as the answer says
