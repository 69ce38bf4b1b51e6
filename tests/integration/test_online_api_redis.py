"""The feature-server endpoints with LARDER_ONLINE_STORE=redis against real Redis
(database 14, flushed around each test) and the registry on PostgreSQL: every status,
a feature service, on-demand views, push and latest-wins, refused frames, and one Redis
round trip for a batch of entities of one view."""

from urllib.parse import urlsplit, urlunsplit

import pytest
import redis
from django.test import Client

from access.identity.personal_tokens import issue_token
from serving import registry_cache
from serving.online import get_online_store
from serving.online.redis import RedisOnlineStore
from tests.online_api_data import FRESH, NOW, apply_repo, columns, count, feast_error, post, seed_drivers

pytestmark = [pytest.mark.integration, pytest.mark.django_db]
READ, PUSH = "/get-online-features", "/push"


@pytest.fixture
def redis_store(redis_url, settings):
    url = urlunsplit(urlsplit(redis_url)._replace(path="/14"))
    client = redis.Redis.from_url(url)
    client.flushdb()
    settings.LARDER_ONLINE_STORE = "redis"  # setting_changed rebuilds the store
    settings.REDIS_URL = url
    store = get_online_store()
    assert isinstance(store, RedisOnlineStore)
    yield client
    client.flushdb()
    client.close()


@pytest.fixture
def repo(tmp_path, redis_store):
    registry_cache.clear()
    apply_repo(tmp_path / "repo")
    seed_drivers()
    yield
    registry_cache.clear()


@pytest.fixture
def as_role(make_user):
    made = []

    def _client(*roles: str, superuser: bool = False) -> Client:
        user = make_user(f"r{len(made)}", roles=roles, is_superuser=superuser)
        made.append(user)
        return Client(HTTP_AUTHORIZATION=f"Bearer {issue_token(user, 'test', 30)[1]}")

    return _client


def test_the_rows_are_in_redis(repo, redis_store):
    assert redis_store.hget("{shop:driver_id=1001}", "driver_hourly_stats:conv_rate") == b"0.5"


def test_every_status(repo, as_role):
    response = post(
        as_role("reader"),
        READ,
        {
            "features": ["driver_hourly_stats:conv_rate", "driver_hourly_stats:acc_rate"],
            "entities": {"driver_id": [1001, 1002, 1003, 9999]},
            "full_feature_names": True,
        },
    )
    assert response.status_code == 200, response.content
    cols = columns(response)
    assert list(cols) == ["driver_id", "driver_hourly_stats__conv_rate", "driver_hourly_stats__acc_rate"]
    assert cols["driver_hourly_stats__conv_rate"]["values"] == [0.5, 0.25, 0.75, None]
    assert cols["driver_hourly_stats__conv_rate"]["statuses"] == ["PRESENT", "PRESENT", "OUTSIDE_MAX_AGE", "NOT_FOUND"]
    assert cols["driver_hourly_stats__acc_rate"]["statuses"] == [
        "PRESENT",
        "NULL_VALUE",
        "OUTSIDE_MAX_AGE",
        "NOT_FOUND",
    ]
    assert cols["driver_id"]["event_timestamps"] == ["1970-01-01T00:00:00Z"] * 4


def test_feature_service_and_on_demand_views(repo, as_role):
    body = {"feature_service": "ranker", "entities": {"driver_id": [1001, 1001, 9999], "val_to_add": [1, 2, 3]}}
    cols = columns(post(as_role("service-reader"), READ, body))
    assert cols["conv_rate"]["values"] == [0.5, 0.5, None]
    assert cols["conv_plus_val"]["values"] == [1.5, 2.5, None]
    assert cols["conv_plus_val"]["statuses"] == ["PRESENT", "PRESENT", "NULL_VALUE"]
    py = post(as_role("reader"), READ, {"features": ["conv_py:conv_py_val"], "entities": body["entities"]})
    assert columns(py)["conv_py_val"]["values"] == [10.5, 20.5, None]
    missing = post(as_role("reader"), READ, {"features": ["conv_plus:conv_plus_val"], "entities": {"driver_id": [1]}})
    assert missing.status_code == 404
    assert feast_error(missing)["class"] == "RequestDataNotFoundInEntityRowsException"


def test_one_round_trip_for_a_batch(repo, as_role, redis_store):
    client = as_role("reader")
    body = {"features": ["driver_hourly_stats:conv_rate"], "entities": {"driver_id": [1001]}}
    post(client, READ, body)  # warm: registry cache, connection pool
    store = get_online_store()
    sent = []
    original = store.client.connection_pool.get_connection

    def counting_connection(*args, **kwargs):
        connection = original(*args, **kwargs)
        if not getattr(connection, "_counted", False):
            send = connection.send_packed_command

            def counted(command, check_health=True):
                sent.append(1)
                return send(command, check_health)

            connection.send_packed_command = counted
            connection._counted = True
        return connection

    store.client.connection_pool.get_connection = counting_connection
    try:
        response = post(client, READ, {**body, "entities": {"driver_id": list(range(1000, 1200))}})
    finally:
        store.client.connection_pool.get_connection = original
    assert response.status_code == 200
    assert len(sent) == 1


def test_push_latest_wins_and_refused_frames(repo, as_role):
    writer, reader = as_role("writer"), as_role("reader")

    def frame(at, conv):
        return {
            "driver_id": [1001],
            "event_timestamp": [at.isoformat()],
            "conv_rate": [conv],
            "acc_rate": [0.5],
            "avg_daily_trips": [1],
        }

    assert post(writer, PUSH, {"push_source_name": "driver_push", "df": frame(NOW, 0.8)}).status_code == 200
    late = post(writer, PUSH, {"push_source_name": "driver_push", "df": frame(FRESH, 0.1)})
    assert (late.status_code, late["X-Larder-Rows-Skipped"]) == (200, "1")
    read = {"features": ["driver_fresh:conv_rate"], "entities": {"driver_id": [1001]}}
    assert columns(post(reader, READ, read))["conv_rate"]["values"] == [0.8]

    before = count("driver_fresh")
    bad = frame(NOW, "x")
    bad["driver_id"] = [1002]
    refused = post(writer, PUSH, {"push_source_name": "driver_push", "df": bad})
    assert refused.status_code == 422
    assert "df.conv_rate[0]" in feast_error(refused)["message"]
    assert (  # the repo's batch file is a placeholder: the offline write fails, nothing is written
        post(writer, PUSH, {"push_source_name": "driver_push", "df": frame(NOW, 0.2), "to": "offline"}).status_code
        == 502
    )
    assert count("driver_fresh") == before == 1
    assert (
        post(as_role("describer"), PUSH, {"push_source_name": "driver_push", "df": frame(NOW, 0.3)}).status_code == 403
    )


def test_health_names_a_redis_that_is_down(repo, settings, client):
    assert client.get("/health").json()["checks"]["online_store"] == "ok"
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there
    response = client.get("/health")
    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["registry"] == "ok"
    assert checks["online_store"].startswith("down: redis at 127.0.0.1:1/0")
