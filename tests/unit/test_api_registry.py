"""The registry REST API (/api/v1/): Feast's paths and JSON, every answer through the gate.

Each endpoint is checked for anonymous (401), no-permission (empty lists, 404) and
scoped-permission callers (exactly the granted objects), then shapes, paging and
writes."""

import json
from datetime import timedelta

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.test import APIRequestFactory, force_authenticate

from access.api_views import GatedAPIView
from access.models import Permission
from catalog.models import (
    DataSource,
    Entity,
    FeatureService,
    FeatureView,
    FeatureViewProjection,
    Field,
    OnDemandFeatureView,
    Project,
)
from tests.unit.registry_data import build_registry, make_view

pytestmark = pytest.mark.django_db

API = "/api/v1"
LIST_KEYS = {
    "entities": "entities",
    "data_sources": "dataSources",
    "feature_views": "featureViews",
    "on_demand_feature_views": "onDemandFeatureViews",
    "feature_services": "featureServices",
    "saved_datasets": "savedDatasets",
    "permissions": "permissions",
}
OBJECT_KEYS = {
    "entities": "entity",
    "data_sources": "data_source",
    "feature_views": "feature_view",
    "on_demand_feature_views": "on_demand_feature_view",
    "feature_services": "feature_service",
    "saved_datasets": "saved_dataset",
    "permissions": "permission",
}


@pytest.fixture
def registry():
    return build_registry("demo", "secretw")


@pytest.fixture
def as_user(client, make_user):
    """Log the test client in as a new user holding `roles`."""

    def _login(username: str = "alice", roles: tuple[str, ...] = (), **extra):
        user = make_user(username, roles=roles, **extra)
        client.force_login(user)
        return client

    return _login


def grant(project: Project, name: str, actions: list[str], types: list[str], patterns=(), tags=None, role="reader"):
    return Permission.objects.create(
        project=project,
        name=name,
        types=types,
        name_patterns=list(patterns),
        required_tags=tags or {},
        actions=actions,
        roles=[role],
    )


def names(response, key: str) -> list[str]:
    assert response.status_code == 200, response.content
    items = response.json()[key]
    return [item["spec"]["name"] if "spec" in item else item["name"] for item in items]


# -- anonymous and no permission -----------------------------------------------------------


@pytest.mark.parametrize(
    "method,path",
    [
        ("get", "/entities?project=demo"),
        ("get", "/entities/all"),
        ("get", "/feature_views/secretwfv?project=demo"),
        ("get", "/features/all"),
        ("get", "/projects"),
        ("get", "/version"),
        ("post", "/entities"),
        ("delete", "/entities/secretw_entity?project=demo"),
    ],
)
def test_anonymous_gets_401_json(client, registry, method, path):
    response = getattr(client, method)(API + path)
    assert response.status_code == 401
    assert response.json()["detail"] == "Missing authentication token"
    assert "secretw" not in response.content.decode()


def test_bad_bearer_token_is_401_in_feast_shape(client, registry):
    response = client.get(API + "/entities/all", HTTP_AUTHORIZATION="Bearer not-a-token")
    assert response.status_code == 401
    body = response.json()
    assert body["error_type"] == "AuthenticationError"
    assert body["status_code"] == 401


@pytest.mark.parametrize("plural", LIST_KEYS)
def test_user_without_roles_sees_empty_lists(as_user, registry, plural):
    client = as_user()
    assert names(client.get(f"{API}/{plural}?project=demo"), LIST_KEYS[plural]) == []
    assert names(client.get(f"{API}/{plural}/all"), LIST_KEYS[plural]) == []
    assert client.get(f"{API}/{plural}/all").json()["pagination"]["totalCount"] == 0


def test_user_without_roles_sees_no_projects_or_features(as_user, registry):
    client = as_user()
    assert names(client.get(f"{API}/projects"), "projects") == []
    assert names(client.get(f"{API}/features?project=demo"), "features") == []
    assert names(client.get(f"{API}/features/all"), "features") == []


@pytest.mark.parametrize("plural", LIST_KEYS)
def test_denied_object_answers_exactly_like_a_missing_one(as_user, registry, plural):
    client = as_user()
    existing = registry[OBJECT_KEYS[plural]].name
    denied = client.get(f"{API}/{plural}/{existing}?project=demo")
    missing = client.get(f"{API}/{plural}/nope?project=demo")
    assert denied.status_code == missing.status_code == 404
    assert denied.json()["error_type"] == "FeastObjectNotFoundException"
    assert denied.json()["detail"] == missing.json()["detail"].replace("nope", existing)
    assert "secretw" not in denied.content.decode().replace(existing, "")


def test_not_found_message_is_feasts(as_user, registry):
    client = as_user(is_superuser=True)
    assert client.get(f"{API}/entities/nope?project=demo").json() == {
        "status_code": 404,
        "detail": "Entity nope does not exist in project demo",
        "error_type": "FeastObjectNotFoundException",
    }
    assert client.get(f"{API}/projects/nope").json()["detail"] == "Project nope does not exist"
    feature = client.get(f"{API}/features/secretwfv/nope?project=demo").json()
    assert feature["detail"] == "Feature nope does not exist in feature view secretwfv in project demo"


# -- scoped permission ---------------------------------------------------------------------


@pytest.fixture
def scoped():
    """p1 holds a_one, a_two, b_three; p2 holds a_four. Role `reader` may DESCRIBE feature
    views named a_.* in p1 only."""
    p1, p2 = Project.objects.create(name="p1"), Project.objects.create(name="p2")
    for project, view_names in ((p1, ["a_one", "a_two", "b_three"]), (p2, ["a_four"])):
        source = DataSource.objects.create(project=project, name="src", kind="file", path="x.parquet")
        for name in view_names:
            make_view(project, name, source, features=((f"{name}_f", "Float32"),))
    grant(p1, "fv-a", ["DESCRIBE"], ["feature_view"], patterns=["a_.*"])
    return p1, p2


def test_scoped_role_sees_exactly_the_granted_views(as_user, scoped):
    client = as_user(roles=("reader",))
    assert names(client.get(f"{API}/feature_views?project=p1"), "featureViews") == ["a_one", "a_two"]
    assert names(client.get(f"{API}/feature_views?project=p2"), "featureViews") == []
    assert names(client.get(f"{API}/feature_views/all"), "featureViews") == ["a_one", "a_two"]
    assert client.get(f"{API}/feature_views/a_one?project=p1").json()["spec"]["name"] == "a_one"
    assert client.get(f"{API}/feature_views/b_three?project=p1").status_code == 404
    assert client.get(f"{API}/feature_views/a_four?project=p2").status_code == 404
    # no permission names other types
    assert names(client.get(f"{API}/data_sources?project=p1"), "dataSources") == []
    assert names(client.get(f"{API}/projects"), "projects") == []


def test_scoped_role_sees_only_features_of_granted_views(as_user, scoped):
    client = as_user(roles=("reader",))
    assert names(client.get(f"{API}/features?project=p1"), "features") == ["a_one_f", "a_two_f"]
    assert names(client.get(f"{API}/features/all"), "features") == ["a_one_f", "a_two_f"]
    assert client.get(f"{API}/features/a_one/a_one_f?project=p1").status_code == 200
    assert client.get(f"{API}/features/b_three/b_three_f?project=p1").status_code == 404
    assert client.get(f"{API}/features/a_four/a_four_f?project=p2").status_code == 404


def test_all_items_carry_their_project(as_user, scoped):
    Permission.objects.create(
        project=scoped[1], name="p2-all", types=[], actions=["DESCRIBE"], roles=["reader"]
    )  # all of p2
    client = as_user(roles=("reader",))
    items = client.get(f"{API}/feature_views/all").json()["featureViews"]
    assert [(i["project"], i["spec"]["name"]) for i in items] == [("p1", "a_one"), ("p1", "a_two"), ("p2", "a_four")]


# -- paging, sorting, tags, validation -------------------------------------------------------


@pytest.fixture
def five_entities():
    project = Project.objects.create(name="paged")
    for i in range(5):
        tags = {"team": "a" if i % 2 == 0 else "b", "tier": "gold" if i < 3 else "silver"}
        Entity.objects.create(project=project, name=f"e{i}", join_keys=[f"k{i}"], value_type="Int64", tags=tags)
    return project


def test_pagination_pages_and_totals(as_user, five_entities):
    client = as_user(is_superuser=True)
    pages = [client.get(f"{API}/entities?project=paged&limit=2&page={p}").json() for p in (1, 2, 3, 4)]
    assert [[e["spec"]["name"] for e in page["entities"]] for page in pages] == [["e0", "e1"], ["e2", "e3"], ["e4"], []]
    assert pages[0]["pagination"] == {
        "page": 1,
        "limit": 2,
        "totalCount": 5,
        "totalPages": 3,
        "hasNext": True,
        "hasPrevious": False,
    }
    assert pages[2]["pagination"]["hasNext"] is False
    assert client.get(f"{API}/entities?project=paged").json()["pagination"]["limit"] == 50


def test_sorting(as_user, five_entities):
    client = as_user(is_superuser=True)
    desc = client.get(f"{API}/entities?project=paged&sort_by=name&sort_order=desc")
    assert names(desc, "entities") == ["e4", "e3", "e2", "e1", "e0"]


def test_tag_filters_are_anded(as_user, five_entities):
    client = as_user(is_superuser=True)
    assert names(client.get(f"{API}/entities?project=paged&tags=team:a"), "entities") == ["e0", "e2", "e4"]
    both = client.get(f"{API}/entities?project=paged&tags=team:a&tags=tier:gold")
    assert names(both, "entities") == ["e0", "e2"]
    assert both.json()["pagination"]["totalCount"] == 2
    # a tag key is a JSON key, never an ORM lookup
    assert names(client.get(f"{API}/entities?project=paged&tags=team__contains:a"), "entities") == []


@pytest.mark.parametrize(
    "query,param",
    [
        ("limit=101", "limit"),
        ("limit=0", "limit"),
        ("page=0", "page"),
        ("page=x", "page"),
        ("sort_by=color", "sort_by"),
        ("sort_order=up", "sort_order"),
        ("tags=novalue", "tags"),
    ],
)
def test_bad_list_parameters_are_422_naming_them(as_user, five_entities, query, param):
    response = as_user(is_superuser=True).get(f"{API}/entities?project=paged&{query}")
    assert response.status_code == 422
    body = response.json()
    assert body["error_type"] == "RequestValidationError"
    assert [item["loc"] for item in body["detail"]] == [["query", param]]


@pytest.mark.parametrize(
    "method,path",
    [
        ("get", "/entities"),
        ("get", "/feature_views/x"),
        ("get", "/features"),
        ("get", "/features/v/f"),
        ("delete", "/entities/x"),
    ],
)
def test_missing_project_is_422_naming_project(as_user, method, path):
    response = getattr(as_user(), method)(API + path)
    assert response.status_code == 422
    assert response.json()["detail"] == [{"loc": ["query", "project"], "msg": "Field required", "type": "missing"}]


def test_trailing_slash_is_accepted_without_redirect(as_user, registry):
    client = as_user(is_superuser=True)
    assert names(client.get(f"{API}/entities/?project=demo"), "entities") == ["secretw_entity"]
    assert client.get(f"{API}/entities/secretw_entity/?project=demo").status_code == 200
    assert client.get(f"{API}/features/all/").status_code == 200


def test_version(as_user):
    assert as_user().get(f"{API}/version").json() == {"version": "0.1.0"}


# -- shapes ------------------------------------------------------------------------------


def test_entity_json(as_user, registry):
    body = as_user(is_superuser=True).get(f"{API}/entities/secretw_entity?project=demo").json()
    assert body["spec"] == {
        "name": "secretw_entity",
        "joinKey": "secretw_id",
        "joinKeys": ["secretw_id"],
        "valueType": "INT64",
        "description": "secretw entity doc",
        "tags": {"team": "secretw_team"},
        "owner": "secretw_ent_owner",
        "project": "demo",
    }
    assert set(body["meta"]) == {"createdTimestamp", "lastUpdatedTimestamp"}
    assert body["meta"]["createdTimestamp"].endswith("Z")


def test_feature_view_json(as_user, registry):
    body = as_user(is_superuser=True).get(f"{API}/feature_views/secretwfv?project=demo").json()
    spec = body["spec"]
    assert spec["ttl"] == "86400s"
    assert spec["entities"] == ["secretw_entity"]
    assert spec["features"][0] == {
        "name": "secretw_feat",
        "valueType": "FLOAT",
        "description": "secretw_feat of secretwfv",
        "tags": {},
    }
    assert spec["features"][1]["valueType"] == "STRING_LIST"
    assert spec["entityColumns"] == [{"name": "secretw_id", "valueType": "INT64", "description": ""}]
    assert spec["batchSource"]["type"] == "BATCH_FILE"
    assert spec["batchSource"]["fileOptions"]["uri"] == "data/secretw.parquet"
    assert "streamSource" not in spec
    assert (spec["online"], spec["offline"]) == (True, False)
    assert body["meta"]["materializationIntervals"] == [
        {"startTime": "2024-01-01T00:00:00Z", "endTime": "2024-01-02T00:00:00Z"}
    ]


def test_push_view_shows_stream_and_batch_sources(as_user, registry):
    spec = as_user(is_superuser=True).get(f"{API}/feature_views/secretw_pushfv?project=demo").json()["spec"]
    assert spec["ttl"] == "0s"
    assert spec["streamSource"]["type"] == "PUSH_SOURCE"
    assert spec["streamSource"]["name"] == "secretw_push"
    assert spec["streamSource"]["batchSource"]["name"] == "secretw_file"
    assert spec["batchSource"]["name"] == "secretw_file"


def test_data_source_json_per_kind(as_user, registry):
    client = as_user(is_superuser=True)
    by_name = {d["name"]: d for d in client.get(f"{API}/data_sources?project=demo").json()["dataSources"]}
    file_source = by_name["secretw_file"]
    assert file_source["type"] == "BATCH_FILE"
    assert file_source["timestampField"] == "secretw_ts"
    assert file_source["createdTimestampColumn"] == "secretw_created"
    assert file_source["fieldMapping"] == {"secretw_src": "secretw_dst"}
    assert "customOptions" not in file_source and "batchSource" not in file_source
    postgres = by_name["secretw_pg"]
    assert postgres["type"] == "CUSTOM_SOURCE"
    assert postgres["dataSourceClassType"].endswith("PostgreSQLSource")
    assert postgres["postgresOptions"] == {"table": "secretw_table", "query": "", "dsnSetting": "SECRETW_DSN"}
    assert "fileOptions" not in postgres
    push = by_name["secretw_push"]
    assert push["type"] == "PUSH_SOURCE"
    assert push["timestampField"] == "secretw_ts"  # inherited from its batch source, as Feast
    assert push["batchSource"]["name"] == "secretw_file"
    request = by_name["secretw_request"]
    assert request["type"] == "REQUEST_SOURCE"
    assert request["requestDataOptions"]["schema"] == [
        {"name": "secretw_input", "valueType": "INT64", "description": ""}
    ]


def test_on_demand_view_service_dataset_permission_project_json(as_user, registry):
    client = as_user(is_superuser=True)
    odfv = client.get(f"{API}/on_demand_feature_views/secretw_odfv?project=demo").json()["spec"]
    assert odfv["featureTransformation"] == {
        "mode": "expression",
        "expressions": {"secretw_out": "secretw_feat + secretw_input"},
    }
    assert set(odfv["sources"]) == {"secretwfv", "secretw_request"}
    assert odfv["sources"]["secretw_request"]["requestDataSource"]["type"] == "REQUEST_SOURCE"
    assert odfv["features"][0]["valueType"] == "DOUBLE"

    service = client.get(f"{API}/feature_services/secretw_service?project=demo").json()["spec"]
    assert [(p["featureViewName"], p["featureViewNameAlias"]) for p in service["features"]] == [
        ("secretwfv", ""),
        ("secretw_odfv", "secretw_alias"),
    ]
    assert [c["name"] for c in service["features"][0]["featureColumns"]] == ["secretw_feat"]
    assert [c["name"] for c in service["features"][1]["featureColumns"]] == ["secretw_out"]

    dataset = client.get(f"{API}/saved_datasets/secretw_dataset?project=demo").json()
    assert dataset["spec"]["featureServiceName"] == "secretw_service"
    assert dataset["spec"]["storage"]["fileStorage"]["uri"] == "var/secretw/dataset.parquet"
    assert dataset["spec"]["joinKeys"] == ["secretw_id"]

    permission = client.get(f"{API}/permissions/secretw_permission?project=demo").json()["spec"]
    assert permission["types"] == ["FEATURE_VIEW"]
    assert permission["namePatterns"] == ["secretw_nomatch.*"]
    assert permission["actions"] == ["DESCRIBE"]
    assert permission["policy"] == {"roleBasedPolicy": {"roles": ["secretw_role"]}}

    project = client.get(f"{API}/projects/demo").json()
    assert project["spec"] == {
        "name": "demo",
        "description": "secretw project",
        "tags": {"t": "secretw"},
        "owner": "secretw@owner",
    }


def test_features_list_item_shape(as_user, registry):
    items = as_user(is_superuser=True).get(f"{API}/features?project=demo").json()["features"]
    assert {
        "name": "secretw_list",
        "featureView": "secretwfv",
        "type": "Array(String)",
        "description": "secretw_list of secretwfv",
        "kind": "feature",
        "project": "demo",
        "tags": {},
    } in items


# -- query counts ---------------------------------------------------------------------------


def _views(count: int) -> None:
    """`count` more feature views (alternating file and push sources), each with an
    on-demand view and a feature service over it."""
    project, _ = Project.objects.get_or_create(name="many")
    entity, _ = Entity.objects.get_or_create(project=project, name="e", defaults={"join_keys": ["k"]})
    file_source, _ = DataSource.objects.get_or_create(project=project, name="f", kind="file", path="x.parquet")
    push, _ = DataSource.objects.get_or_create(project=project, name="p", kind="push", batch_source=file_source)
    request, _ = DataSource.objects.get_or_create(project=project, name="r", kind="request")
    start = FeatureView.objects.filter(project=project).count()
    for i in range(start, start + count):
        source = push if i % 2 else DataSource.objects.create(project=project, name=f"f{i}", kind="file", path="x")
        view = make_view(project, f"v{i}", source, [entity], features=(("a", "Int64"), ("b", "Float32")))
        odfv = OnDemandFeatureView.objects.create(project=project, name=f"o{i}", expressions={"c": "a + b"})
        odfv.sources.set([view])
        odfv.request_sources.set([request])
        Field.objects.create(on_demand_feature_view=odfv, name="c", dtype="Float64")
        service = FeatureService.objects.create(project=project, name=f"s{i}")
        FeatureViewProjection.objects.create(feature_service=service, feature_view=view, features=["a"])
        FeatureViewProjection.objects.create(feature_service=service, on_demand_feature_view=odfv, position=1)


@pytest.mark.parametrize(
    "path",
    [
        "/feature_views?project=many",
        "/feature_views/all",
        "/features/all",
        "/on_demand_feature_views/all",
        "/feature_services/all",
        "/data_sources/all",
    ],
)
def test_list_query_count_is_flat(as_user, django_assert_max_num_queries, path):
    """3 and 30 feature views cost the same number of queries, for a scoped reader too."""
    project, _ = Project.objects.get_or_create(name="many")
    grant(project, "all-views", ["DESCRIBE"], [], patterns=[".*"])  # per-object branch of restrict
    client = as_user(roles=("reader",))
    _views(3)
    with django_assert_max_num_queries(100) as small:
        first = client.get(API + path)
    _views(27)
    with django_assert_max_num_queries(len(small.captured_queries)):
        second = client.get(API + path)
    assert second.json()["pagination"]["totalCount"] > first.json()["pagination"]["totalCount"] >= 3


# -- writes --------------------------------------------------------------------------------


ENTITY_BODY = {"project": "p1", "name": "a_driver", "join_keys": ["driver_id"], "value_type": "Int64"}


@pytest.fixture
def p1():
    return Project.objects.create(name="p1")


def test_create_allowed(as_user, p1):
    grant(p1, "create-a", ["CREATE"], ["entity"], patterns=["a_.*"])
    response = as_user(roles=("reader",)).post(f"{API}/entities", ENTITY_BODY, content_type="application/json")
    assert response.status_code == 201, response.content
    assert response.json() == {"name": "a_driver", "project": "p1", "status": "applied"}
    entity = Entity.objects.get(project=p1, name="a_driver")
    assert entity.join_keys == ["driver_id"]


def test_create_denied_names_object_and_action(as_user, p1):
    grant(p1, "read-a", ["DESCRIBE"], ["entity"], patterns=["a_.*"])
    response = as_user(roles=("reader",)).post(f"{API}/entities", ENTITY_BODY, content_type="application/json")
    assert response.status_code == 403
    body = response.json()
    assert body["error_type"] == "FeastPermissionError"
    assert "CREATE" in body["detail"] and "a_driver" in body["detail"]
    assert not Entity.objects.filter(name="a_driver").exists()


def test_create_escaping_the_name_pattern_is_denied(as_user, p1):
    grant(p1, "crud-a", ["CRUD"], ["entity"], patterns=["a_.*"])
    body = {**ENTITY_BODY, "name": "b_driver"}
    response = as_user(roles=("reader",)).post(f"{API}/entities", body, content_type="application/json")
    assert response.status_code == 403
    assert not Entity.objects.filter(name="b_driver").exists()


def test_create_in_unknown_project_is_denied_like_any_other(as_user, p1):
    grant(p1, "create-a", ["CREATE"], ["entity"])
    body = {**ENTITY_BODY, "project": "nope"}
    response = as_user(roles=("reader",)).post(f"{API}/entities", body, content_type="application/json")
    assert response.status_code == 403


def test_update_needs_describe_and_update(as_user, p1):
    Entity.objects.create(project=p1, name="a_driver", join_keys=["driver_id"], tags={"team": "a"})
    grant(p1, "update-a", ["UPDATE"], ["entity"], patterns=["a_.*"])
    client = as_user(roles=("reader",))
    body = {**ENTITY_BODY, "description": "new", "tags": {"team": "a"}}
    assert client.post(f"{API}/entities", body, content_type="application/json").status_code == 403
    # one permission must list every action asked for (Feast's rule): DESCRIBE alone does not add up
    grant(p1, "describe-a", ["DESCRIBE"], ["entity"], patterns=["a_.*"])
    assert client.post(f"{API}/entities", body, content_type="application/json").status_code == 403
    grant(p1, "describe-update-a", ["DESCRIBE", "UPDATE"], ["entity"], patterns=["a_.*"])
    response = client.post(f"{API}/entities", body, content_type="application/json")
    assert response.status_code == 201, response.content
    assert Entity.objects.get(name="a_driver").description == "new"


def test_retag_escaping_the_permission_is_denied(as_user, p1):
    Entity.objects.create(project=p1, name="a_driver", join_keys=["driver_id"], tags={"team": "a"})
    grant(p1, "team-a", ["DESCRIBE", "UPDATE"], ["entity"], tags={"team": "a"})
    client = as_user(roles=("reader",))
    retag = {**ENTITY_BODY, "tags": {"team": "b"}}
    response = client.post(f"{API}/entities", retag, content_type="application/json")
    assert response.status_code == 403
    assert "UPDATE" in response.json()["detail"]
    assert Entity.objects.get(name="a_driver").tags == {"team": "a"}
    keep = {**ENTITY_BODY, "tags": {"team": "a"}, "description": "kept in team a"}
    assert client.post(f"{API}/entities", keep, content_type="application/json").status_code == 201


def test_invalid_body_is_422_with_messages(as_user, p1):
    client = as_user(is_superuser=True)
    response = client.post(
        f"{API}/feature_views",
        {"project": "p1", "name": "v", "entities": ["ghost"], "source": "nowhere", "ttl": "soon"},
        content_type="application/json",
    )
    assert response.status_code == 422
    body = response.json()
    assert body["error_type"] == "RequestValidationError"
    messages = " ".join(item["msg"] for item in body["detail"])
    assert "ttl" in messages
    assert not FeatureView.objects.filter(name="v").exists()
    missing_name = client.post(f"{API}/entities", {"project": "p1"}, content_type="application/json")
    assert missing_name.json()["detail"] == [{"loc": ["body", "name"], "msg": "Field required", "type": "missing"}]
    missing_project = client.post(f"{API}/entities", {"name": "x"}, content_type="application/json")
    assert missing_project.json()["detail"][0]["loc"] == ["body", "project"]
    bad_tags = client.post(f"{API}/entities", {**ENTITY_BODY, "tags": ["x"]}, content_type="application/json")
    assert bad_tags.json()["detail"][0]["loc"] == ["body", "tags"]
    not_object = client.post(f"{API}/entities", [1, 2], content_type="application/json")
    assert not_object.status_code == 422
    not_json = client.post(f"{API}/entities", "{oops", content_type="application/json")
    assert not_json.status_code == 422
    assert not_json.json()["detail"][0]["type"] == "json_invalid"
    form = client.post(f"{API}/entities", {"name": "x", "project": "p1"})
    assert form.status_code == 415


def test_python_on_demand_view_needs_a_superuser(as_user, p1):
    grant(p1, "all", ["ALL"], [])
    body = {
        "project": "p1",
        "name": "py",
        "sources": [],
        "mode": "python",
        "function": "os.getcwd",
        "schema": [{"name": "out", "dtype": "Int64"}],
    }
    response = as_user(roles=("reader",)).post(f"{API}/on_demand_feature_views", body, content_type="application/json")
    assert response.status_code == 403
    assert response.json()["error_type"] == "FeastPermissionError"
    assert not OnDemandFeatureView.objects.filter(name="py").exists()


def test_delete_allowed(as_user, p1):
    Entity.objects.create(project=p1, name="a_driver", join_keys=["driver_id"])
    grant(p1, "delete-a", ["DELETE"], ["entity"], patterns=["a_.*"])
    response = as_user(roles=("reader",)).delete(f"{API}/entities/a_driver?project=p1")
    assert response.status_code == 200, response.content
    assert response.json() == {"name": "a_driver", "project": "p1", "status": "deleted"}
    assert not Entity.objects.filter(name="a_driver").exists()


def test_delete_denied_is_403_when_visible_and_404_when_not(as_user, p1):
    Entity.objects.create(project=p1, name="a_driver", join_keys=["driver_id"])
    Entity.objects.create(project=p1, name="b_driver", join_keys=["driver_id"])
    grant(p1, "read-a", ["DESCRIBE"], ["entity"], patterns=["a_.*"])
    client = as_user(roles=("reader",))
    visible = client.delete(f"{API}/entities/a_driver?project=p1")
    assert visible.status_code == 403
    assert "DELETE" in visible.json()["detail"] and "a_driver" in visible.json()["detail"]
    hidden = client.delete(f"{API}/entities/b_driver?project=p1")
    assert hidden.status_code == 404
    assert hidden.json()["detail"] == "Entity b_driver does not exist in project p1"
    assert Entity.objects.filter(project=p1).count() == 2


def test_delete_refused_while_referenced_is_422(as_user, registry):
    client = as_user(is_superuser=True)
    response = client.delete(f"{API}/entities/secretw_entity?project=demo")
    assert response.status_code == 422
    assert "secretwfv" in " ".join(item["msg"] for item in response.json()["detail"])
    assert Entity.objects.filter(name="secretw_entity").exists()


def test_saved_datasets_are_read_only(as_user, registry):
    client = as_user(is_superuser=True)
    assert client.post(f"{API}/saved_datasets", {"project": "demo", "name": "x"}, content_type="application/json")
    assert client.post(f"{API}/saved_datasets", {}, content_type="application/json").status_code == 405
    assert client.delete(f"{API}/saved_datasets/secretw_dataset?project=demo").status_code == 405


def test_superuser_applies_and_deletes_a_project(as_user):
    client = as_user(is_superuser=True)
    body = {"name": "fresh", "description": "new project", "tags": {"team": "x"}}
    assert client.post(f"{API}/projects", body, content_type="application/json").status_code == 201
    assert Project.objects.get(name="fresh").description == "new project"
    assert client.delete(f"{API}/projects/fresh").json() == {"name": "fresh", "project": "fresh", "status": "deleted"}
    assert not Project.objects.filter(name="fresh").exists()


def test_project_update_is_gated_on_the_project(as_user, p1):
    grant(p1, "project", ["DESCRIBE", "UPDATE"], ["project"])
    client = as_user(roles=("reader",))
    ok = client.post(f"{API}/projects", {"name": "p1", "description": "d"}, content_type="application/json")
    assert ok.status_code == 201, ok.content
    assert client.post(f"{API}/projects", {"name": "p9"}, content_type="application/json").status_code == 403


def test_a_full_feature_view_apply_round_trips(as_user, registry):
    client = as_user(is_superuser=True)
    body = {
        "project": "demo",
        "name": "fresh_view",
        "entities": ["secretw_entity"],
        "source": "secretw_file",
        "ttl": "1d",
        "schema": [{"name": "x", "dtype": "Float32"}],
        "tags": {"team": "t"},
    }
    assert client.post(f"{API}/feature_views", body, content_type="application/json").status_code == 201
    spec = client.get(f"{API}/feature_views/fresh_view?project=demo").json()["spec"]
    assert spec["ttl"] == "86400s"
    assert spec["features"] == [{"name": "x", "valueType": "FLOAT", "description": "", "tags": {}}]
    assert FeatureView.objects.get(name="fresh_view").ttl == timedelta(days=1)


# -- OpenAPI -------------------------------------------------------------------------------


def test_openapi_schema_validates_without_warnings(tmp_path):
    out = tmp_path / "schema.json"
    call_command("spectacular", "--validate", "--fail-on-warn", "--format", "openapi-json", "--file", str(out))
    schema = json.loads(out.read_text())
    operations = {op["operationId"] for item in schema["paths"].values() for op in item.values()}
    assert {
        "getVersion",
        "listProjects",
        "listEntities",
        "listAllFeatureViews",
        "getOnDemandFeatureView",
        "applyFeatureService",
        "deletePermission",
        "listSavedDatasets",
        "listFeatures",
        "getFeature",
    } <= operations
    assert "applySavedDataset" not in operations
    assert "/api/v1/entities/" not in schema["paths"]  # the slash twins stay out
    assert schema["components"]["schemas"]["FeatureViewList"]["properties"]["featureViews"]["type"] == "array"


def test_schema_and_docs_need_a_login(client, as_user):
    assert client.get("/api/schema/").status_code == 401
    assert client.get("/api/docs/").status_code == 401
    assert as_user().get("/api/schema/").status_code == 200


# -- the base class ------------------------------------------------------------------------


class ForgetfulView(GatedAPIView):
    """Answers POST without calling the gate: the base class must refuse to send it."""

    queryset = Entity.objects.all()

    def post(self, request: Request) -> Response:
        return Response({"names": list(Entity.objects.values_list("name", flat=True))})


def test_a_view_that_skips_the_gate_fails_loudly(make_user):
    request = APIRequestFactory().post("/x", {}, format="json")
    force_authenticate(request, user=make_user("bob"))
    with pytest.raises(ImproperlyConfigured, match="without passing the gate"):
        ForgetfulView.as_view()(request)


def test_unmapped_methods_are_405(as_user, registry):
    client = as_user(is_superuser=True)
    assert client.put(f"{API}/entities/secretw_entity?project=demo").status_code == 405
    assert client.options(f"{API}/entities?project=demo").status_code == 405
