"""POST /get-online-features on the sql online store: Feast's request and response JSON,
every status, feature services, on-demand views, the gate, bad input, the registry
cache, and a query count that does not grow with the number of entities.

Callers use real bearer tokens (personal `lrd_` tokens) unless a test is about
something else."""

import json
import math

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from access.identity.personal_tokens import issue_token
from catalog.models import Project
from serving.convert import rfc3339
from tests.online_api_data import (
    FRESH,
    PROJECT,
    STALE,
    apply_repo,
    columns,
    feast_error,
    post,
    repo_files,
    seed_drivers,
    write,
)

pytestmark = pytest.mark.django_db
URL = "/get-online-features"
EPOCH = "1970-01-01T00:00:00Z"


@pytest.fixture
def repo(tmp_path):
    root = tmp_path / "repo"
    apply_repo(root)
    seed_drivers()
    return root


@pytest.fixture
def as_role(make_user):
    """A client calling with a personal bearer token of a user holding `roles`."""
    made = {}

    def _client(*roles: str, superuser: bool = False) -> Client:
        user = make_user(f"u{len(made)}", roles=roles, is_superuser=superuser)
        token = issue_token(user, "test", 30)[1]
        made[user.username] = user
        return Client(HTTP_AUTHORIZATION=f"Bearer {token}")

    return _client


@pytest.fixture
def reader(as_role):
    return as_role("reader")


def get(client, features=None, entities=None, **extra):
    body = {"entities": entities if entities is not None else {"driver_id": [1001]}, **extra}
    if features is not None:
        body["features"] = features
    return post(client, URL, body)


# -- shape and statuses ---------------------------------------------------------------------------


def test_every_status_and_the_response_shape(repo, reader):
    response = get(
        reader,
        ["driver_hourly_stats:conv_rate", "driver_hourly_stats:acc_rate"],
        {"driver_id": [1001, 1002, 1003, 9999]},
    )
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "application/json"
    data = response.json()
    assert list(data) == ["metadata", "results"]
    assert data["metadata"] == {"feature_names": ["driver_id", "conv_rate", "acc_rate"]}
    assert all(set(r) == {"values", "statuses", "event_timestamps"} for r in data["results"])
    cols = columns(response)
    assert cols["driver_id"] == {
        "values": [1001, 1002, 1003, 9999],
        "statuses": ["PRESENT"] * 4,
        "event_timestamps": [EPOCH] * 4,
    }
    fresh, stale = rfc3339(FRESH), rfc3339(STALE)
    assert fresh.endswith("Z") and "+" not in fresh
    assert cols["conv_rate"] == {
        "values": [0.5, 0.25, 0.75, None],  # the stale value is still returned, as Feast's Go server does
        "statuses": ["PRESENT", "PRESENT", "OUTSIDE_MAX_AGE", "NOT_FOUND"],
        "event_timestamps": [fresh, fresh, stale, EPOCH],
    }
    assert cols["acc_rate"]["values"] == [0.9, None, 0.8, None]
    assert cols["acc_rate"]["statuses"] == ["PRESENT", "NULL_VALUE", "OUTSIDE_MAX_AGE", "NOT_FOUND"]


def test_a_view_without_ttl_never_reports_outside_max_age(repo, reader):
    write(
        "driver_fresh",
        {
            "driver_id": [1003],
            "event_timestamp": ["2001-01-01T00:00:00Z"],
            "conv_rate": [0.1],
            "acc_rate": [0.2],
            "avg_daily_trips": [3],
        },
    )
    cols = columns(get(reader, ["driver_fresh:conv_rate"], {"driver_id": [1003]}))
    assert cols["conv_rate"]["statuses"] == ["PRESENT"]
    assert cols["conv_rate"]["event_timestamps"] == ["2001-01-01T00:00:00Z"]


def test_full_feature_names(repo, reader):
    refs = ["driver_hourly_stats:conv_rate", "driver_fresh:conv_rate"]
    on = get(reader, refs, full_feature_names=True)
    assert on.json()["metadata"]["feature_names"] == [
        "driver_id",
        "driver_hourly_stats__conv_rate",
        "driver_fresh__conv_rate",
    ]
    off = get(reader, refs)
    assert off.status_code == 422
    error = feast_error(off)
    assert error["class"] == "FeatureNameCollisionError"
    assert "conv_rate" in error["message"] and "full_feature_names" in error["message"]
    assert get(reader, ["driver_fresh:conv_rate"]).json()["metadata"]["feature_names"] == ["driver_id", "conv_rate"]


def test_features_keep_the_request_order(repo, reader):
    refs = ["driver_hourly_stats:avg_daily_trips", "driver_hourly_stats:conv_rate", "driver_hourly_stats:acc_rate"]
    names = get(reader, refs).json()["metadata"]["feature_names"]
    assert names == ["driver_id", "avg_daily_trips", "conv_rate", "acc_rate"]


def test_duplicated_entity_rows_are_read_once_and_fanned_out(repo, reader):
    with CaptureQueriesContext(connection) as queries:
        response = get(reader, ["driver_hourly_stats:conv_rate"], {"driver_id": [1001, 9999, 1001, 1001, 9999]})
    cols = columns(response)
    assert cols["driver_id"]["values"] == [1001, 9999, 1001, 1001, 9999]
    assert cols["conv_rate"]["values"] == [0.5, None, 0.5, 0.5, None]
    assert cols["conv_rate"]["statuses"] == ["PRESENT", "NOT_FOUND", "PRESENT", "PRESENT", "NOT_FOUND"]
    reads = [q["sql"] for q in queries.captured_queries if "serving_online_row" in q["sql"]]
    assert len(reads) == 1  # one read for the view
    assert reads[0].count("driver_id=") == 2  # ...of the two distinct keys


def test_join_key_values_are_converted_to_the_entity_type(repo, reader):
    cols = columns(get(reader, ["driver_hourly_stats:conv_rate"], {"driver_id": [1001.0]}))
    assert cols["driver_id"]["values"] == [1001]
    assert cols["conv_rate"]["values"] == [0.5]
    bad = get(reader, ["driver_hourly_stats:conv_rate"], {"driver_id": [1001, "1002"]})
    assert bad.status_code == 422
    assert "entities.driver_id[1]" in feast_error(bad)["message"]


def test_value_types_render_as_feast_json(repo, reader):
    write(
        "customer_profile",
        {
            "customer_id": ["c1"],
            "ts": [FRESH.isoformat()],
            "balance": ["NaN"],
            "tier": ["gold"],
            "blob": ["AAE="],
            "seen": ["2024-01-02T03:04:05Z"],
            "labels": [["a", "b"]],
            "vip": [True],
        },
    )
    refs = [f"customer_profile:{f}" for f in ("balance", "tier", "blob", "seen", "labels", "vip")]
    response = get(reader, refs, {"customer_id": ["c1", "c2"]})
    cols = columns(response)
    assert cols["customer_id"]["values"] == ["c1", "c2"]
    assert cols["balance"]["values"] == ["NaN", None]
    assert cols["tier"]["values"] == ["gold", None]
    assert cols["blob"]["values"] == ["AAE=", None]  # base64
    assert cols["seen"]["values"] == [1704164645, None]  # epoch seconds, Feast's unix_timestamp_val
    assert cols["labels"]["values"] == [["a", "b"], None]
    assert cols["vip"]["values"] == [True, None]
    wrong_type = get(reader, ["customer_profile:tier"], {"customer_id": [5]})
    assert wrong_type.status_code == 422
    assert "entities.customer_id[0]" in feast_error(wrong_type)["message"]


# -- feature services -----------------------------------------------------------------------------


def test_feature_service_with_a_subset_and_an_on_demand_view(repo, as_role):
    client = as_role("service-reader")  # READ_ONLINE on services only, nothing on the views
    response = post(
        client, URL, {"feature_service": "ranker", "entities": {"driver_id": [1001, 9999], "val_to_add": [2, 3]}}
    )
    assert response.status_code == 200, response.content
    cols = columns(response)
    assert list(cols) == ["driver_id", "conv_rate", "conv_plus_val"]  # the subset: not acc_rate
    assert cols["conv_rate"]["values"] == [0.5, None]
    assert cols["conv_plus_val"]["values"] == [2.5, None]
    full = post(
        client,
        URL,
        {"feature_service": "ranker", "entities": {"driver_id": [1001], "val_to_add": [2]}, "full_feature_names": True},
    )
    assert full.json()["metadata"]["feature_names"] == [
        "driver_id",
        "driver_hourly_stats__conv_rate",
        "conv_plus__conv_plus_val",
    ]


def test_feature_service_aliases_name_the_columns(repo, reader, as_role):
    client = as_role("service-reader")
    body = {"feature_service": "aliased", "entities": {"driver_id": [1001]}, "full_feature_names": True}
    response = post(client, URL, body)
    assert response.json()["metadata"]["feature_names"] == ["driver_id", "hourly__conv_rate", "fresh__conv_rate"]
    assert columns(response)["hourly__conv_rate"]["values"] == [0.5]
    collision = post(client, URL, {**body, "full_feature_names": False})
    assert collision.status_code == 422
    assert feast_error(collision)["class"] == "FeatureNameCollisionError"


def test_read_online_through_the_service_or_through_the_views(repo, as_role):
    service_body = {"feature_service": "ranker", "entities": {"driver_id": [1001], "val_to_add": [1]}}
    view_body = {"features": ["driver_hourly_stats:conv_rate"], "entities": {"driver_id": [1001]}}
    service_reader, view_reader, describer = as_role("service-reader"), as_role("reader"), as_role("describer")

    assert post(service_reader, URL, service_body).status_code == 200
    hidden = post(service_reader, URL, view_body)  # may not even see the views: as if missing
    assert hidden.status_code == 404
    assert feast_error(hidden) == {
        "module": "feast.errors",
        "class": "FeatureViewNotFoundException",
        "message": f"Feature view driver_hourly_stats does not exist in project {PROJECT}",
    }

    assert post(view_reader, URL, view_body).status_code == 200
    no_service = post(view_reader, URL, service_body)  # views readable, the service is not the views
    assert no_service.status_code == 404
    assert feast_error(no_service)["class"] == "FeatureServiceNotFoundException"

    denied = post(describer, URL, service_body)  # sees the service, may not read it
    assert denied.status_code == 403
    error = feast_error(denied)
    assert error["class"] == "FeastPermissionError"
    assert error["message"] == f"Permission denied: READ_ONLINE on feature_service 'ranker' in project '{PROJECT}'"


def test_denied_view_names_object_and_action(repo, as_role):
    response = get(as_role("describer"), ["driver_hourly_stats:conv_rate"])
    assert response.status_code == 403
    assert feast_error(response)["message"] == (
        f"Permission denied: READ_ONLINE on feature_view 'driver_hourly_stats' in project '{PROJECT}'"
    )


def test_a_hidden_view_answers_like_a_missing_one(repo, as_role):
    nobody = as_role()
    hidden = feast_error(get(nobody, ["driver_hourly_stats:nope"]))  # no "feature nope not found" hint
    missing = feast_error(get(nobody, ["driver_hourly_statz:nope"]))
    assert hidden["class"] == missing["class"] == "FeatureViewNotFoundException"
    assert hidden["message"] == missing["message"].replace("driver_hourly_statz", "driver_hourly_stats")


# -- on-demand views ------------------------------------------------------------------------------


def test_on_demand_expression_with_a_request_field(repo, reader):
    response = get(
        reader,
        ["conv_plus:conv_plus_val", "driver_hourly_stats:conv_rate"],
        {"driver_id": [1001, 1002, 9999], "val_to_add": [1, 2, 3]},
    )
    assert response.status_code == 200, response.content
    cols = columns(response)
    assert list(cols) == ["driver_id", "conv_plus_val", "conv_rate"]  # request fields are not echoed
    assert cols["conv_plus_val"] == {
        "values": [1.5, 2.25, None],
        "statuses": ["PRESENT", "PRESENT", "NULL_VALUE"],
        "event_timestamps": [EPOCH] * 3,
    }


def test_on_demand_python_mode(repo, reader):
    response = get(reader, ["conv_py:conv_py_val"], {"driver_id": [1001, 1003], "val_to_add": [1, 2]})
    assert response.status_code == 200, response.content
    assert columns(response)["conv_py_val"]["values"] == [10.5, 20.75]


def test_on_demand_reads_its_sources_even_when_not_requested(repo, reader):
    with CaptureQueriesContext(connection) as queries:
        response = get(reader, ["conv_plus:conv_plus_val"], {"driver_id": [1001], "val_to_add": [5]})
    assert columns(response)["conv_plus_val"]["values"] == [5.5]
    assert len([q for q in queries.captured_queries if "serving_online_row" in q["sql"]]) == 1


def test_missing_request_field(repo, reader):
    response = get(reader, ["conv_plus:conv_plus_val"], {"driver_id": [1001]})
    assert response.status_code == 404  # Feast: RequestDataNotFoundInEntityRowsException is a not-found error
    error = feast_error(response)
    assert error["class"] == "RequestDataNotFoundInEntityRowsException"
    assert "['val_to_add']" in error["message"]


def test_unconvertible_request_field(repo, reader):
    response = get(reader, ["conv_plus:conv_plus_val"], {"driver_id": [1001], "val_to_add": ["x"]})
    assert response.status_code == 422
    assert "entities.val_to_add[0]" in feast_error(response)["message"]


def test_on_demand_view_needs_read_online_on_its_sources(repo, as_role):
    response = get(as_role("odfv-only"), ["conv_plus:conv_plus_val"], {"driver_id": [1001], "val_to_add": [1]})
    assert response.status_code == 403
    assert "READ_ONLINE on feature_view 'driver_hourly_stats'" in feast_error(response)["message"]


# -- errors ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ref", "status", "feast_class", "message"),
    [
        ("nope:x", 404, "FeatureViewNotFoundException", f"Feature view nope does not exist in project {PROJECT}"),
        (
            "driver_hourly_stats:nope",
            404,
            "FeastObjectNotFoundException",
            f"Feature nope not found in feature view driver_hourly_stats in project {PROJECT}",
        ),
        ("conv_plus:nope", 404, "FeastObjectNotFoundException", "Feature nope not found in feature view conv_plus"),
    ],
)
def test_unknown_view_or_feature(repo, reader, ref, status, feast_class, message):
    response = get(reader, [ref])
    assert response.status_code == status
    error = feast_error(response)
    assert error["class"] == feast_class and message in error["message"]


def test_unknown_feature_service(repo, reader):
    response = post(reader, URL, {"feature_service": "nope", "entities": {"driver_id": [1]}})
    assert response.status_code == 404
    assert feast_error(response)["class"] == "FeatureServiceNotFoundException"


@pytest.mark.parametrize(
    ("body", "names"),
    [
        ({"entities": {"driver_id": [1]}}, "features, feature_service"),
        (
            {
                "features": ["driver_hourly_stats:conv_rate"],
                "feature_service": "ranker",
                "entities": {"driver_id": [1]},
            },
            "features, feature_service",
        ),
        ({"features": "driver_hourly_stats:conv_rate", "entities": {"driver_id": [1]}}, "features"),
        ({"features": ["conv_rate"], "entities": {"driver_id": [1]}}, "features[0]"),
        ({"features": [], "entities": {"driver_id": [1]}}, "no features"),
        ({"features": ["driver_hourly_stats:conv_rate"]}, "entities"),
        ({"features": ["driver_hourly_stats:conv_rate"], "entities": {}}, "entities"),
        ({"features": ["driver_hourly_stats:conv_rate"], "entities": [1001]}, "entities"),
        ({"features": ["driver_hourly_stats:conv_rate"], "entities": {"driver_id": 1001}}, "entities.driver_id"),
        (
            {"features": ["driver_hourly_stats:conv_rate"], "entities": {"driver_id": [1, 2], "val_to_add": [1]}},
            "same number of values",
        ),
        ({"features": ["driver_hourly_stats:conv_rate"], "entities": {"customer_id": ["c"]}}, "'driver_id'"),
        ({"features": ["driver_hourly_stats:conv_rate"], "entities": {"driver_id": [None]}}, "entities.driver_id[0]"),
        (
            {"features": ["driver_hourly_stats:conv_rate"], "entities": {"driver_id": [1]}, "full_feature_names": "y"},
            "full_feature_names",
        ),
        (
            {"features": ["driver_hourly_stats:conv_rate"], "entities": {"driver_id": [1]}, "project": 3},
            "project",
        ),
    ],
)
def test_bad_input_is_422_naming_the_field(repo, reader, body, names):
    response = post(reader, URL, body)
    assert response.status_code == 422, response.content
    error = feast_error(response)
    assert error["module"] == "feast.errors" and error["class"] == "FeastError"
    assert names in error["message"]


@pytest.mark.parametrize("raw", [b"not json", b"[1, 2]", b""])
def test_a_body_that_is_not_a_json_object(repo, reader, raw):
    response = reader.post(URL, raw, content_type="application/json")
    assert response.status_code == 422
    assert feast_error(response)["message"].startswith("body:")


def test_form_encoded_content_type_is_read_as_json(repo, reader):
    """`curl -d '{...}'` sends application/x-www-form-urlencoded; Feast's client sends none."""
    body = json.dumps({"features": ["driver_hourly_stats:conv_rate"], "entities": {"driver_id": [1001]}})
    response = reader.post(URL, body, content_type="application/x-www-form-urlencoded")
    assert response.status_code == 200
    assert columns(response)["conv_rate"]["values"] == [0.5]


def test_anonymous_forged_and_wrong_method(repo, reader):
    body = {"features": ["driver_hourly_stats:conv_rate"], "entities": {"driver_id": [1001]}}
    assert post(Client(), URL, body).status_code == 401
    assert post(Client(HTTP_AUTHORIZATION="Bearer lrd_forged"), URL, body).status_code == 401
    assert reader.get(URL).status_code == 405


def test_session_login_works_too(repo, make_user):
    client = Client()
    client.force_login(make_user("viewer", roles=("reader",)))
    response = get(client, ["driver_hourly_stats:conv_rate"])
    assert response.status_code == 200


# -- projects -------------------------------------------------------------------------------------


def test_the_project_is_the_only_one_or_the_named_one(repo, reader, settings):
    refs = ["driver_hourly_stats:conv_rate"]
    assert get(reader, refs).status_code == 200
    Project.objects.create(name="other")
    ambiguous = get(reader, refs)
    assert ambiguous.status_code == 422
    assert feast_error(ambiguous)["message"].startswith("project:")
    assert "other" not in feast_error(ambiguous)["message"]  # never lists projects
    assert get(reader, refs, project=PROJECT).status_code == 200
    assert (
        post(reader, f"{URL}?project={PROJECT}", {"features": refs, "entities": {"driver_id": [1]}}).status_code == 200
    )
    settings.LARDER_SERVING_PROJECT = PROJECT
    assert get(reader, refs).status_code == 200
    elsewhere = get(reader, refs, project="nowhere")
    assert elsewhere.status_code == 404
    assert feast_error(elsewhere)["message"] == "Feature view driver_hourly_stats does not exist in project nowhere"


# -- speed ----------------------------------------------------------------------------------------


def test_an_applied_change_is_served_by_the_next_request(repo, reader):
    refs = ["driver_hourly_stats:conv_rate"]
    assert get(reader, refs).status_code == 200
    files = repo_files()
    view = files["views.yaml"]["feature_views"][0]
    view["schema"] = [*view["schema"], {"name": "new_feat", "dtype": "Int64"}]
    apply_repo(repo, files)
    response = get(reader, ["driver_hourly_stats:new_feat"])
    assert response.status_code == 200, response.content
    assert columns(response)["new_feat"]["statuses"] == ["NOT_FOUND"]  # known now, never written
    files["views.yaml"]["feature_views"][0]["ttl"] = "0s"  # unlimited: the stale row is PRESENT again
    apply_repo(repo, files)
    stale = get(reader, refs, {"driver_id": [1003]})
    assert columns(stale)["conv_rate"]["statuses"] == ["PRESENT"]


def test_a_cached_request_costs_a_fixed_handful_of_queries(repo, reader):
    refs = ["driver_hourly_stats:conv_rate", "driver_hourly_stats:acc_rate", "conv_plus:conv_plus_val"]
    get(reader, refs, {"driver_id": [1001], "val_to_add": [1]})  # warm the registry cache

    def queries_for(n: int) -> int:
        ids = [1001 + (i % 5) for i in range(n)]
        with CaptureQueriesContext(connection) as queries:
            response = get(reader, refs, {"driver_id": ids, "val_to_add": list(range(n))})
        assert response.status_code == 200
        assert len(response.json()["results"][0]["values"]) == n
        return len(queries.captured_queries)

    one, many = queries_for(1), queries_for(300)
    assert one == many
    # token, its owner, the user's groups, the permissions, the project's version, one online read
    assert many <= 7


def test_query_count_bound_with_the_pytest_django_fixture(repo, reader, django_assert_max_num_queries):
    refs = ["driver_hourly_stats:conv_rate"]
    get(reader, refs)
    with django_assert_max_num_queries(7):
        get(reader, refs, {"driver_id": list(range(1000, 1500))})


def test_nan_request_float_round_trips(repo, reader):
    write(
        "driver_fresh",
        {
            "driver_id": [7],
            "event_timestamp": [FRESH.isoformat()],
            "conv_rate": [float("inf")],
            "acc_rate": ["-Infinity"],
            "avg_daily_trips": [1],
        },
    )
    cols = columns(get(reader, ["driver_fresh:conv_rate", "driver_fresh:acc_rate"], {"driver_id": [7]}))
    assert cols["conv_rate"]["values"] == ["Infinity"]
    assert cols["acc_rate"]["values"] == ["-Infinity"]
    assert math.isinf(float(cols["conv_rate"]["values"][0]))


# -- /health --------------------------------------------------------------------------------------


def test_health_checks_the_registry_and_the_online_store(settings):
    response = Client().get("/health")  # anonymous
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": {"registry": "ok", "online_store": "ok"}}
    settings.LARDER_ONLINE_STORE = "redis"
    settings.REDIS_URL = ""  # misconfigured: down, and says why
    down = Client().get("/health")
    assert down.status_code == 503
    assert down.json()["status"] == "unavailable"
    assert down.json()["checks"]["registry"] == "ok"
    assert "REDIS_URL" in down.json()["checks"]["online_store"]
