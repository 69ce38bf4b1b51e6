"""plan/apply of a whole repo: output, no-op re-apply, in-place updates, history."""

from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from access.models import Permission
from catalog.models import (
    DataSource,
    Entity,
    FeatureService,
    FeatureView,
    Field,
    MaterializationInterval,
    OnDemandFeatureView,
    Project,
    RegistryChange,
)
from catalog.repo import apply, canonical, load_repo, plan
from catalog.repo.testing import sample_repo, write_repo

pytestmark = pytest.mark.django_db

FIRST_APPLY = """\
Created project driver_stats
Created entity driver
Created data source driver_hourly
Created data source trip_request
Created data source driver_push
Created feature view driver_hourly_stats
Created on demand feature view conv_rate_plus_val
Created feature service driver_activity
Created permission scientists-read"""


@pytest.fixture
def repo(tmp_path):
    """Write a repo (the sample, or the given files) and load it."""

    def _load(files=None):
        return load_repo(write_repo(tmp_path / "repo", files or sample_repo()))

    return _load


def view(files):
    return files["features.yaml"]["feature_views"][0]


def test_first_apply_creates_everything_in_dependency_order(repo):
    definition = repo()
    assert str(plan(definition)) == FIRST_APPLY
    assert Project.objects.count() == 0  # plan writes nothing
    result = apply(definition)
    assert str(result) == FIRST_APPLY
    assert len(result.created) == 9 and not result.updated and not result.deleted
    project = Project.objects.get(name="driver_stats")
    assert project.version == 1
    fv = FeatureView.objects.get(project=project, name="driver_hourly_stats")
    assert fv.ttl == timedelta(hours=2)
    assert [e.name for e in fv.entities.all()] == ["driver"]
    assert list(fv.fields.values_list("name", "dtype", "position")) == [
        ("conv_rate", "Float32", 0),
        ("acc_rate", "Float32", 1),
        ("avg_daily_trips", "Int64", 2),
    ]
    push = DataSource.objects.get(name="driver_push")
    assert push.batch_source.name == "driver_hourly"
    odfv = OnDemandFeatureView.objects.get(name="conv_rate_plus_val")
    assert [v.name for v in odfv.sources.all()] == ["driver_hourly_stats"]
    assert [s.name for s in odfv.request_sources.all()] == ["trip_request"]
    service = FeatureService.objects.get(name="driver_activity")
    assert [(p.view_name, p.features) for p in service.projections.all()] == [
        ("driver_hourly_stats", ["conv_rate", "acc_rate"]),
        ("conv_rate_plus_val", []),
    ]
    permission = Permission.objects.get(name="scientists-read")
    assert permission.types == ["feature_view", "on_demand_feature_view"]
    assert permission.actions == ["DESCRIBE", "READ_ONLINE", "READ_OFFLINE"]
    assert RegistryChange.objects.count() == 9


def test_file_source_path_is_stored_absolute(repo, tmp_path):
    apply(repo())
    expected = (tmp_path / "repo" / "data" / "driver_stats.parquet").resolve()
    assert DataSource.objects.get(name="driver_hourly").path == str(expected)


def test_canonical_of_each_row_equals_the_repo_definition(repo):
    definition = repo()
    apply(definition)
    wanted = definition.canonical_state()
    assert canonical(Project.objects.get()) == wanted["project"]["driver_stats"]
    models = {
        "entity": Entity,
        "data_source": DataSource,
        "feature_view": FeatureView,
        "on_demand_feature_view": OnDemandFeatureView,
        "feature_service": FeatureService,
        "permission": Permission,
    }
    for object_type, model in models.items():
        for obj in model.objects.all():
            assert canonical(obj) == wanted[object_type][obj.name], (object_type, obj.name)


def test_reapply_is_a_no_op(repo):
    apply(repo())
    changes, version = RegistryChange.objects.count(), Project.objects.get().version
    updated_at = FeatureView.objects.get().updated_at
    result = apply(repo())
    assert not result
    assert str(result) == "No changes to registry"
    assert str(plan(repo())) == "No changes to registry"
    assert RegistryChange.objects.count() == changes
    assert Project.objects.get().version == version
    assert FeatureView.objects.get().updated_at == updated_at


def test_update_prints_field_diffs_and_keeps_rows_in_place(repo):
    apply(repo())
    fv = FeatureView.objects.get()
    fields_before = {f.name: f.pk for f in fv.fields.all()}
    start = datetime(2026, 1, 1, tzinfo=UTC)
    MaterializationInterval.objects.create(feature_view=fv, start=start, end=start + timedelta(days=1))

    files = sample_repo()
    view(files)["ttl"] = 10800
    view(files)["schema"] = [
        {"name": "acc_rate", "dtype": "Float64"},  # dtype changed, moved first
        {"name": "conv_rate", "dtype": "Float32", "description": "Conversion rate"},
        {"name": "trips_today", "dtype": "Int64"},  # new; avg_daily_trips removed
    ]
    result = apply(repo(files))
    text = str(result)
    assert text.startswith("Updated feature view driver_hourly_stats\n  ttl: 7200 -> 10800\n  schema: ")
    assert "+trips_today (Int64)" in text and "-avg_daily_trips" in text
    assert "acc_rate.dtype: Float32 -> Float64" in text
    assert [c.name for c in result.updated] == ["driver_hourly_stats"]

    same = FeatureView.objects.get()
    assert same.pk == fv.pk and same.created_at == fv.created_at
    assert same.updated_at > fv.updated_at
    assert same.ttl == timedelta(hours=3)
    assert MaterializationInterval.objects.filter(feature_view=same).count() == 1
    after = {f.name: (f.pk, f.dtype, f.position) for f in same.fields.all()}
    assert after["acc_rate"] == (fields_before["acc_rate"], "Float64", 0)
    assert after["conv_rate"][0] == fields_before["conv_rate"]
    assert "avg_daily_trips" not in after
    assert after["trips_today"][0] not in fields_before.values()
    assert Project.objects.get().version == 2

    change = RegistryChange.objects.filter(action="update").get()
    assert change.object_type == "feature_view" and change.object_name == "driver_hourly_stats"
    assert change.diff["ttl"] == [7200, 10800]
    assert set(change.diff) == {"ttl", "schema"}
    assert change.actor == "cli"


def test_references_are_updated_in_place(repo):
    apply(repo())
    service_pk = FeatureService.objects.get().pk
    files = sample_repo()
    files["entities.yaml"]["entities"].append({"name": "customer", "join_keys": ["customer_id"]})
    view(files)["entities"] = ["customer", "driver"]
    view(files)["source"] = "driver_push"
    files["features.yaml"]["feature_services"][0]["features"] = [{"feature_view": "conv_rate_plus_val", "alias": "c"}]
    result = apply(repo(files))
    assert str(result).splitlines()[0] == "Created entity customer"
    fv = FeatureView.objects.get()
    assert sorted(e.name for e in fv.entities.all()) == ["customer", "driver"]
    assert fv.source.name == "driver_push"
    service = FeatureService.objects.get()
    assert service.pk == service_pk
    assert [(p.view_name, p.features) for p in service.projections.all()] == [("c", [])]


def test_deletions_run_after_updates_in_reverse_dependency_order(repo):
    apply(repo())
    files = sample_repo()
    del files["features.yaml"]["on_demand_feature_views"]
    del files["features.yaml"]["feature_services"]
    files["sources.yaml"]["data_sources"] = [
        {"name": "fresh", "kind": "file", "path": "data/driver_stats.parquet", "timestamp_field": "ts"}
    ]
    view(files)["source"] = "fresh"
    result = apply(repo(files))
    assert str(result).splitlines() == [
        "Created data source fresh",
        "Updated feature view driver_hourly_stats",
        "  source: driver_hourly -> fresh",
        "Deleted feature service driver_activity",
        "Deleted on demand feature view conv_rate_plus_val",
        "Deleted data source driver_push",
        "Deleted data source driver_hourly",
        "Deleted data source trip_request",
    ]
    assert sorted(DataSource.objects.values_list("name", flat=True)) == ["fresh"]
    deleted = RegistryChange.objects.get(action="delete", object_name="driver_push")
    assert deleted.diff == {
        "name": "driver_push",
        "kind": "push",
        "batch_source": "driver_hourly",
        "description": "",
        "owner": "",
        "tags": {},
    }


def test_created_change_records_the_full_definition_and_user(repo, make_user):
    user = make_user("admin", is_superuser=True)
    apply(repo(), user=user, actor="api")
    change = RegistryChange.objects.get(object_type="entity")
    assert change.action == "create" and change.user == user and change.actor == "api"
    assert change.diff == {
        "name": "driver",
        "join_keys": ["driver_id"],
        "value_type": "Int64",
        "description": "A driver",
        "owner": "",
        "tags": {},
    }
    assert change.project.name == "driver_stats"


def test_source_kind_change_resets_the_other_kind_fields(repo):
    apply(repo())
    files = sample_repo()
    files["sources.yaml"]["data_sources"][0] = {
        "name": "driver_hourly",
        "kind": "postgres",
        "table": "driver_stats",
        "timestamp_field": "event_timestamp",
    }
    result = apply(repo(files))
    assert "  kind: file -> postgres" in str(result)
    source = DataSource.objects.get(name="driver_hourly")
    assert (source.kind, source.path, source.table, source.dsn_setting) == (
        "postgres",
        "",
        "driver_stats",
        "LARDER_OFFLINE_DSN",
    )


def test_other_projects_are_untouched(repo, tmp_path):
    apply(repo())
    files = sample_repo()
    files["project.yaml"]["project"]["name"] = "other"
    del files["permissions.yaml"]
    apply(load_repo(write_repo(tmp_path / "other", files)))
    assert Project.objects.count() == 2
    assert FeatureView.objects.count() == 2
    assert Permission.objects.filter(project__name="driver_stats").count() == 1
    assert str(plan(repo())) == "No changes to registry"


def test_project_fields_update_in_place(repo):
    apply(repo())
    files = sample_repo()
    files["project.yaml"]["project"]["owner"] = "ml@example.com"
    assert str(apply(repo(files))) == 'Updated project driver_stats\n  owner: "" -> ml@example.com'
    assert Project.objects.get().owner == "ml@example.com"


def _many_views(n):
    files = sample_repo()
    base = view(files)
    files["features.yaml"]["feature_views"] = [{**base, "name": f"view_{i}"} for i in range(n)]
    del files["features.yaml"]["on_demand_feature_views"]
    files["features.yaml"]["feature_services"][0]["features"] = [{"feature_view": "view_0"}]
    return files


def test_query_count_does_not_grow_with_the_number_of_views(repo, django_assert_max_num_queries, tmp_path):
    """No N+1: a no-op re-apply reads the project in a fixed number of queries."""
    counts = []
    for n in (3, 30):
        files = _many_views(n)
        files["project.yaml"]["project"]["name"] = f"p{n}"
        definition = load_repo(write_repo(tmp_path / f"r{n}", files))
        apply(definition)
        with CaptureQueriesContext(connection) as ctx:
            assert not apply(definition)
        counts.append(len(ctx.captured_queries))
    assert counts[0] == counts[1]
    with django_assert_max_num_queries(20):
        apply(definition)


def test_first_apply_of_many_views_uses_bulk_inserts(tmp_path):
    definition = load_repo(write_repo(tmp_path, _many_views(40)))
    with CaptureQueriesContext(connection) as ctx:
        apply(definition)
    assert Field.objects.count() == 40 * 3
    assert len(ctx.captured_queries) < 40


def test_plan_and_apply_commands(repo, tmp_path, capsys):
    path = str(write_repo(tmp_path / "cmd", sample_repo()))
    call_command("plan", path)
    assert capsys.readouterr().out.strip() == FIRST_APPLY
    call_command("apply", path)
    out = capsys.readouterr().out
    assert out.startswith(FIRST_APPLY)
    assert "Applied 9 changes to project driver_stats in " in out
    call_command("apply", path)
    assert capsys.readouterr().out.startswith("No changes to registry\nApplied 0 changes")


def test_commands_print_errors_and_fail(tmp_path, capsys):
    files = sample_repo()
    view(files)["entities"] = ["drivr"]
    view(files)["ttl"] = "soon"
    path = str(write_repo(tmp_path, files))
    for command in ("plan", "apply"):
        with pytest.raises(CommandError, match="2 errors in the feature repo"):
            call_command(command, path)
        err = capsys.readouterr().err.splitlines()
        assert (
            "features.yaml: feature_view 'driver_hourly_stats': field 'entities': unknown entity 'drivr'"
            in err[0] + err[1]
        )
        assert len(err) == 2
    assert Project.objects.count() == 0
