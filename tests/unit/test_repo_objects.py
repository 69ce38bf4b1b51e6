"""apply_object / delete_object: the REST API's one-object upsert and delete."""

import pytest

from catalog.models import Entity, FeatureView, OnDemandFeatureView, Project, RegistryChange
from catalog.repo import (
    ObjectNotFound,
    PythonTransformationForbidden,
    RepoValidationError,
    apply,
    apply_object,
    delete_object,
    load_repo,
)
from catalog.repo.testing import sample_repo, write_repo

pytestmark = pytest.mark.django_db


@pytest.fixture
def registry(tmp_path, settings):
    settings.LARDER_DATA_DIR = tmp_path / "repo"
    apply(load_repo(write_repo(tmp_path / "repo", sample_repo())))
    return Project.objects.get(name="driver_stats")


PYTHON_VIEW = {
    "name": "conv_plus_one",
    "sources": ["driver_hourly_stats"],
    "mode": "python",
    "function": "catalog.repo.testing.sample_transform",
    "schema": [{"name": "conv_rate_plus_one", "dtype": "Float64"}],
}


def test_create_update_and_unchanged(registry, make_user):
    user = make_user("eng")
    change = apply_object("driver_stats", "entity", {"name": "customer", "join_keys": ["customer_id"]}, user)
    assert change.action == "create"
    customer = Entity.objects.get(name="customer")
    assert customer.join_keys == ["customer_id"]
    record = RegistryChange.objects.get(object_name="customer")
    assert (record.action, record.actor, record.user) == ("create", "api", user)

    change = apply_object(
        "driver_stats", "Entity", {"name": "customer", "join_keys": ["customer_id"], "owner": "me"}, user
    )
    assert change.action == "update" and change.diff == {"owner": ("", "me")}
    assert str(change) == 'Updated entity customer\n  owner: "" -> me'
    assert Entity.objects.get(name="customer").pk == customer.pk

    version = Project.objects.get().version
    change = apply_object(
        "driver_stats", "entity", {"name": "customer", "join_keys": ["customer_id"], "owner": "me"}, user
    )
    assert change.action == "unchanged"
    assert Project.objects.get().version == version
    assert RegistryChange.objects.filter(object_name="customer").count() == 2


def test_project_is_created_on_a_new_name(db):
    change = apply_object("fresh", "project", {"description": "new"}, None)
    assert change.action == "create"
    project = Project.objects.get(name="fresh")
    assert project.description == "new" and project.version == 1
    with pytest.raises(RepoValidationError, match="differs from the project"):
        apply_object("fresh", "project", {"name": "other"}, None)


def test_unknown_project(db):
    with pytest.raises(ObjectNotFound, match="unknown project 'nope'"):
        apply_object("nope", "entity", {"name": "x"}, None)


def test_invalid_object_is_refused_and_nothing_written(registry):
    before = (FeatureView.objects.count(), RegistryChange.objects.count())
    spec = {"name": "v2", "entities": ["drivr"], "source": "driver_hourly", "schema": [{"name": "a", "dtype": "Int64"}]}
    with pytest.raises(RepoValidationError) as excinfo:
        apply_object("driver_stats", "feature_view", spec, None)
    assert [str(e) for e in excinfo.value.errors] == [
        "feature_view 'v2': field 'entities': unknown entity 'drivr' (did you mean 'driver'?)"
    ]
    with pytest.raises(RepoValidationError, match="field 'tll': unknown field"):
        apply_object("driver_stats", "feature_view", {**spec, "entities": ["driver"], "tll": 5}, None)
    assert (FeatureView.objects.count(), RegistryChange.objects.count()) == before


def test_update_that_breaks_another_object_is_refused(registry):
    spec = {
        "name": "driver_hourly_stats",
        "entities": ["driver"],
        "source": "driver_hourly",
        "schema": [{"name": "acc_rate", "dtype": "Float32"}],  # drops conv_rate, used by the service and the odfv
    }
    with pytest.raises(RepoValidationError) as excinfo:
        apply_object("driver_stats", "feature_view", spec, None)
    messages = [str(e) for e in excinfo.value.errors]
    assert any("feature_service 'driver_activity'" in m and "has no feature 'conv_rate'" in m for m in messages)
    assert any("on_demand_feature_view 'conv_rate_plus_val'" in m and "'conv_rate'" in m for m in messages)
    assert FeatureView.objects.get().fields.count() == 3


def test_saved_datasets_are_not_managed(registry):
    with pytest.raises(RepoValidationError, match="not managed by apply"):
        apply_object("driver_stats", "saved_dataset", {"name": "x"}, None)
    with pytest.raises(RepoValidationError, match="unknown resource type"):
        apply_object("driver_stats", "widget", {"name": "x"}, None)


def test_delete_refuses_while_referenced(registry):
    with pytest.raises(RepoValidationError, match=r"still used by feature_view 'driver_hourly_stats' \(entities\)"):
        delete_object("driver_stats", "entity", "driver", None)
    with pytest.raises(RepoValidationError, match="still used by data_source 'driver_push'"):
        delete_object("driver_stats", "data_source", "driver_hourly", None)
    with pytest.raises(RepoValidationError, match="feature_service 'driver_activity'"):
        delete_object("driver_stats", "on_demand_feature_view", "conv_rate_plus_val", None)
    assert Entity.objects.filter(name="driver").exists()


def test_delete_records_the_change(registry, make_user):
    user = make_user("eng")
    version = Project.objects.get().version
    change = delete_object("driver_stats", "feature_service", "driver_activity", user)
    assert change.action == "delete" and change.old["name"] == "driver_activity"
    record = RegistryChange.objects.get(action="delete")
    assert (record.object_type, record.user, record.diff["features"][1]) == (
        "feature_service",
        user,
        {"feature_view": "conv_rate_plus_val", "features": [], "alias": ""},
    )
    assert Project.objects.get().version == version + 1
    delete_object("driver_stats", "on_demand_feature_view", "conv_rate_plus_val", user)
    assert not OnDemandFeatureView.objects.exists()
    with pytest.raises(ObjectNotFound):
        delete_object("driver_stats", "entity", "ghost", user)


def test_delete_project_only_when_empty(db):
    apply_object("empty", "project", {}, None)
    apply_object("empty", "entity", {"name": "e"}, None)
    with pytest.raises(RepoValidationError, match="still holds 1 entity"):
        delete_object("empty", "project", "empty", None)
    delete_object("empty", "entity", "e", None)
    delete_object("empty", "project", "empty", None)
    assert not Project.objects.filter(name="empty").exists()
    assert RegistryChange.objects.filter(project_name="empty", object_type="project", action="delete").exists()


def test_python_mode_needs_a_superuser(registry, make_user):
    with pytest.raises(PythonTransformationForbidden):
        apply_object("driver_stats", "on_demand_feature_view", PYTHON_VIEW, make_user("eng"))
    with pytest.raises(PythonTransformationForbidden):
        apply_object("driver_stats", "on_demand_feature_view", PYTHON_VIEW, None)
    assert not OnDemandFeatureView.objects.filter(name="conv_plus_one").exists()
    admin = make_user("root", is_superuser=True)
    change = apply_object("driver_stats", "on_demand_feature_view", PYTHON_VIEW, admin)
    assert change.action == "create"
    assert OnDemandFeatureView.objects.get(name="conv_plus_one").function == "catalog.repo.testing.sample_transform"
    # an expression-mode view needs no superuser
    spec = {**PYTHON_VIEW, "mode": "expression", "expressions": {"conv_rate_plus_one": "conv_rate + 1"}}
    del spec["function"]
    assert apply_object("driver_stats", "on_demand_feature_view", spec, make_user("eng2")).action == "update"


def test_relative_file_path_resolves_against_the_data_dir(registry, tmp_path):
    spec = {"name": "again", "kind": "file", "path": "data/driver_stats.parquet", "timestamp_field": "ts"}
    change = apply_object("driver_stats", "data_source", spec, None)
    assert change.new["path"] == str((tmp_path / "repo" / "data" / "driver_stats.parquet").resolve())
    with pytest.raises(RepoValidationError, match="does not exist"):
        apply_object("driver_stats", "data_source", {**spec, "path": "data/nope.parquet"}, None)
