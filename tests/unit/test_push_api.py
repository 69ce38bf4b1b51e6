"""POST /push and POST /write-to-online-store on the sql online store: rows become
readable, latest wins, bad frames are refused whole (422 naming the columns, the store
untouched), the gate (WRITE_ONLINE, WRITE_OFFLINE), and `to: offline` writing offline first."""

import pytest
from django.test import Client

from access.identity.personal_tokens import issue_token
from tests.online_api_data import FRESH, NOW, PROJECT, apply_repo, columns, count, feast_error, post

pytestmark = pytest.mark.django_db
PUSH, WRITE, READ = "/push", "/write-to-online-store", "/get-online-features"


@pytest.fixture
def repo(tmp_path):
    apply_repo(tmp_path / "repo")


@pytest.fixture
def as_role(make_user):
    made = []

    def _client(*roles: str, superuser: bool = False) -> Client:
        user = make_user(f"w{len(made)}", roles=roles, is_superuser=superuser)
        made.append(user)
        return Client(HTTP_AUTHORIZATION=f"Bearer {issue_token(user, 'test', 30)[1]}")

    return _client


@pytest.fixture
def writer(as_role):
    return as_role("writer")


@pytest.fixture
def admin(as_role):
    return as_role(superuser=True)


def rows(ids=(1001,), at=FRESH, conv=0.5, **override):
    n = len(ids)
    df = {
        "driver_id": list(ids),
        "event_timestamp": [at.isoformat()] * n,
        "conv_rate": [conv] * n,
        "acc_rate": [0.9] * n,
        "avg_daily_trips": [10] * n,
    }
    df.update(override)
    return df


def read(client, view, feature, ids):
    response = post(client, READ, {"features": [f"{view}:{feature}"], "entities": {"driver_id": list(ids)}})
    assert response.status_code == 200, response.content
    return columns(response)[feature]


# -- /push ----------------------------------------------------------------------------------------


def test_push_to_online_then_readable(repo, writer, admin):
    response = post(writer, PUSH, {"push_source_name": "driver_push", "df": rows((1001, 1002), conv=0.3)})
    assert response.status_code == 200, response.content
    assert response.content == b""  # Feast answers an empty 200
    assert response["X-Larder-Rows-Written"] == "2"
    column = read(admin, "driver_fresh", "conv_rate", [1001, 1002, 1003])
    assert column["values"] == [0.3, 0.3, None]
    assert column["statuses"] == ["PRESENT", "PRESENT", "NOT_FOUND"]


def test_latest_wins_through_push(repo, writer, admin):
    newer, older = NOW, FRESH
    assert post(writer, PUSH, {"push_source_name": "driver_push", "df": rows(at=newer, conv=0.7)}).status_code == 200
    late = post(writer, PUSH, {"push_source_name": "driver_push", "df": rows(at=older, conv=0.1)})
    assert late.status_code == 200
    assert (late["X-Larder-Rows-Written"], late["X-Larder-Rows-Skipped"]) == ("0", "1")
    assert read(admin, "driver_fresh", "conv_rate", [1001])["values"] == [0.7]
    same_batch = rows((1001, 1001), conv=0.0)
    same_batch["event_timestamp"] = [(NOW.replace(year=NOW.year + 1)).isoformat(), NOW.isoformat()]
    same_batch["conv_rate"] = [0.99, 0.11]
    assert post(writer, PUSH, {"push_source_name": "driver_push", "df": same_batch}).status_code == 200
    assert read(admin, "driver_fresh", "conv_rate", [1001])["values"] == [0.99]


@pytest.mark.parametrize(
    ("df", "named"),
    [
        ({k: v for k, v in rows().items() if k != "acc_rate"}, "missing column(s) ['acc_rate']"),
        ({k: v for k, v in rows().items() if k != "event_timestamp"}, "'event_timestamp'"),
        ({k: v for k, v in rows().items() if k != "driver_id"}, "['driver_id']"),
        (rows(conv="abc"), "df.conv_rate[0]"),
        (rows(driver_id=[None]), "df.driver_id[0]"),
        (rows(driver_id=["1001"]), "df.driver_id[0]"),
        (rows(avg_daily_trips=[1.5]), "df.avg_daily_trips[0]"),
        (rows(avg_daily_trips=[2**63]), "df.avg_daily_trips[0]"),
        (rows(event_timestamp=["yesterday"]), "df.event_timestamp[0]"),
        (rows(event_timestamp=[None]), "df.event_timestamp[0]"),
        (rows(conv_rate=[0.1, 0.2]), "same number of values"),
        (rows(conv_rate=[1e39]), "Float32"),
        ({**rows(), "trips": [5]}, "both given"),
        ({}, "df"),
        ([1, 2], "df"),
    ],
)
def test_bad_frames_name_the_columns_and_write_nothing(repo, writer, df, named):
    post(writer, PUSH, {"push_source_name": "driver_push", "df": rows((5,))})  # something already stored
    before = count("driver_fresh")
    response = post(writer, PUSH, {"push_source_name": "driver_push", "df": df})
    assert response.status_code == 422, response.content
    assert named in feast_error(response)["message"]
    assert count("driver_fresh") == before == 1


def test_one_bad_row_keeps_the_good_ones_out_too(repo, writer):
    df = rows((1001, 1002, 1003))
    df["event_timestamp"][2] = "not a time"
    response = post(writer, PUSH, {"push_source_name": "driver_push", "df": df})
    assert response.status_code == 422
    assert "df.event_timestamp[2]" in feast_error(response)["message"]
    assert count("driver_fresh") == 0


def test_every_problem_is_reported_at_once(repo, writer):
    df = rows(conv="abc", avg_daily_trips=["x"])
    df.pop("acc_rate")
    message = feast_error(post(writer, PUSH, {"push_source_name": "driver_push", "df": df}))["message"]
    assert "missing column(s) ['acc_rate']" in message
    assert "df.conv_rate[0]" in message and "df.avg_daily_trips[0]" in message


def test_source_column_names_are_mapped(repo, writer, admin):
    """The batch source maps `trips` -> avg_daily_trips; the push source inherits it."""
    df = rows()
    df["trips"] = df.pop("avg_daily_trips")
    df["trips"] = [42]
    assert post(writer, PUSH, {"push_source_name": "driver_push", "df": df}).status_code == 200
    assert read(admin, "driver_fresh", "avg_daily_trips", [1001])["values"] == [42]


@pytest.mark.parametrize("to", ["offline", "online_and_offline"])
def test_offline_targets_write_offline_first(repo, writer, to):
    """This repo's batch file is an empty placeholder, not Parquet: the offline write fails
    first and nothing is written online (offline push itself: tests/unit/test_offline_push.py)."""
    response = post(writer, PUSH, {"push_source_name": "driver_push", "df": rows(), "to": to})
    assert response.status_code == 502
    message = feast_error(response)["message"]
    assert "offline store" in message and "nothing was written" in message
    assert count("driver_fresh") == 0


def test_unknown_target_is_422(repo, writer):
    response = post(writer, PUSH, {"push_source_name": "driver_push", "df": rows(), "to": "elsewhere"})
    assert response.status_code == 422
    assert feast_error(response)["message"].startswith("to:")


def test_push_permission(repo, as_role):
    body = {"push_source_name": "driver_push", "df": rows()}
    denied = post(as_role("describer"), PUSH, body)
    assert denied.status_code == 403
    assert feast_error(denied) == {
        "module": "feast.errors",
        "class": "FeastPermissionError",
        "message": f"Permission denied: WRITE_ONLINE on feature_view 'driver_fresh' in project '{PROJECT}'",
    }
    online_only = as_role("online-writer")  # WRITE_ONLINE on driver_fresh, no WRITE_OFFLINE
    assert post(online_only, PUSH, body).status_code == 200
    both = post(online_only, PUSH, {**body, "to": "online_and_offline"})
    assert both.status_code == 403  # the gate comes before any write
    assert "WRITE_OFFLINE, WRITE_ONLINE on feature_view 'driver_fresh'" in feast_error(both)["message"]
    hidden = post(as_role(), PUSH, body)  # sees nothing: as if the source did not exist
    assert hidden.status_code == 422
    assert feast_error(hidden)["class"] == "PushSourceNotFoundException"


def test_unknown_push_source_is_422(repo, writer):
    response = post(writer, PUSH, {"push_source_name": "nope", "df": rows()})
    assert response.status_code == 422
    assert feast_error(response) == {
        "module": "feast.errors",
        "class": "PushSourceNotFoundException",
        "message": f"Unable to find push source 'nope' in project {PROJECT}.",
    }
    not_a_push_source = post(writer, PUSH, {"push_source_name": "driver_hourly", "df": rows()})
    assert feast_error(not_a_push_source)["class"] == "PushSourceNotFoundException"


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"df": rows()}, "push_source_name"),
        ({"push_source_name": 3, "df": rows()}, "push_source_name"),
        ({"push_source_name": "driver_push"}, "df"),
        ({"push_source_name": "driver_push", "df": {"driver_id": 1}}, "df.driver_id"),
    ],
)
def test_bad_push_bodies(repo, writer, body, named):
    response = post(writer, PUSH, body)
    assert response.status_code == 422
    assert named in feast_error(response)["message"]


def test_push_needs_a_token(repo):
    assert post(Client(), PUSH, {"push_source_name": "driver_push", "df": rows()}).status_code == 401


# -- /write-to-online-store -----------------------------------------------------------------------


def test_write_to_online_store(repo, writer, admin):
    response = post(writer, WRITE, {"feature_view_name": "driver_hourly_stats", "df": rows((1001, 1002), conv=0.4)})
    assert response.status_code == 200, response.content
    assert response.json() is None  # Feast answers null
    assert read(admin, "driver_hourly_stats", "conv_rate", [1002, 1001])["values"] == [0.4, 0.4]


def test_write_accepts_the_feast_remote_clients_frame(repo, writer, admin):
    """Feast's remote online store posts naive ISO timestamps and a `created` column."""
    df = rows(event_timestamp=[FRESH.replace(tzinfo=None).isoformat()])
    df["created"] = [NOW.replace(tzinfo=None).isoformat()]
    assert post(writer, WRITE, {"feature_view_name": "driver_hourly_stats", "df": df}).status_code == 200
    df["created"] = [None]  # what it sends when a row has no created time
    assert post(writer, WRITE, {"feature_view_name": "driver_hourly_stats", "df": df}).status_code == 200
    column = read(admin, "driver_hourly_stats", "conv_rate", [1001])
    assert column["statuses"] == ["PRESENT"]
    assert column["event_timestamps"] == [FRESH.strftime("%Y-%m-%dT%H:%M:%SZ")]


def test_write_validation_writes_nothing(repo, writer):
    df = rows((1001, 1002))
    df["conv_rate"] = [0.1, "high"]
    response = post(writer, WRITE, {"feature_view_name": "driver_hourly_stats", "df": df})
    assert response.status_code == 422
    assert "df.conv_rate[1]" in feast_error(response)["message"]
    assert count("driver_hourly_stats") == 0


def test_write_permission_and_existence(repo, as_role, admin):
    body = {"feature_view_name": "driver_hourly_stats", "df": rows()}
    denied = post(as_role("describer"), WRITE, body)
    assert denied.status_code == 403
    assert "WRITE_ONLINE on feature_view 'driver_hourly_stats'" in feast_error(denied)["message"]
    hidden = post(as_role(), WRITE, body)
    assert hidden.status_code == 404
    assert feast_error(hidden)["message"] == f"Feature view driver_hourly_stats does not exist in project {PROJECT}"
    missing = post(admin, WRITE, {**body, "feature_view_name": "nope"})
    assert missing.status_code == 404
    assert feast_error(missing)["class"] == "FeatureViewNotFoundException"
    on_demand = post(admin, WRITE, {**body, "feature_view_name": "conv_plus"})
    assert on_demand.status_code == 422
    assert "on-demand feature view" in feast_error(on_demand)["message"]
    assert count("driver_hourly_stats") == 0
