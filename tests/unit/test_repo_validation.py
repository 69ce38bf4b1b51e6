"""Every validation error names file, object and field; a failed apply writes nothing."""

import pytest

from access.models import Permission
from catalog.models import (
    DataSource,
    Entity,
    FeatureService,
    FeatureView,
    Field,
    OnDemandFeatureView,
    Project,
    RegistryChange,
)
from catalog.repo import RepoValidationError, apply, load_repo, plan
from catalog.repo.testing import sample_repo, write_repo


def fv(files):
    return files["features.yaml"]["feature_views"][0]


def odfv(files):
    return files["features.yaml"]["on_demand_feature_views"][0]


def sources(files):
    return files["sources.yaml"]["data_sources"]


def perm(files):
    return files["permissions.yaml"]["permissions"][0]


def service(files):
    return files["features.yaml"]["feature_services"][0]


def _set(getter, key, value):
    def mutate(files):
        getter(files)[key] = value

    return mutate


def _python_mode(function):
    def mutate(files):
        view = odfv(files)
        del view["expressions"]
        view.update(mode="python", function=function)

    return mutate


def _add_file(name, content):
    def mutate(files):
        files[name] = content

    return mutate


def _extra_odfv(name):
    def mutate(files):
        files["features.yaml"]["on_demand_feature_views"].append(
            {
                "name": name,
                "sources": ["trip_request"],
                "schema": [{"name": "x", "dtype": "Int64"}],
                "expressions": {"x": "val_to_add * 2"},
            }
        )

    return mutate


def _join_key_feature(files):
    fv(files)["schema"].append({"name": "driver_id", "dtype": "Int64"})


def _second_project(files):
    files["other.yaml"] = {"project": {"name": "other"}}


def _no_project(files):
    del files["project.yaml"]


# (id, mutation, file, object text, field, message fragment)
CASES = [
    (
        "unknown entity",
        _set(fv, "entities", ["drivr"]),
        "features.yaml",
        "feature_view 'driver_hourly_stats'",
        "entities",
        "unknown entity 'drivr' (did you mean 'driver'?)",
    ),
    (
        "unknown source",
        _set(fv, "source", "nope"),
        "features.yaml",
        "feature_view 'driver_hourly_stats'",
        "source",
        "unknown data source 'nope'",
    ),
    (
        "view source of wrong kind",
        _set(fv, "source", "trip_request"),
        "features.yaml",
        "feature_view 'driver_hourly_stats'",
        "source",
        "is a request source",
    ),
    (
        "push batch source of wrong kind",
        lambda f: sources(f)[1].update(batch_source="trip_request"),
        "sources.yaml",
        "data_source 'driver_push'",
        "batch_source",
        "must be a file or postgres source",
    ),
    (
        "push batch source unknown",
        lambda f: sources(f)[1].update(batch_source="ghost"),
        "sources.yaml",
        "data_source 'driver_push'",
        "batch_source",
        "unknown data source 'ghost'",
    ),
    (
        "odfv source of wrong kind",
        _set(odfv, "sources", ["driver_hourly_stats", "driver_hourly"]),
        "features.yaml",
        "on_demand_feature_view 'conv_rate_plus_val'",
        "sources",
        "must be feature views or request sources",
    ),
    (
        "odfv source unknown",
        _set(odfv, "sources", ["driver_hourly_stats", "nope"]),
        "features.yaml",
        "on_demand_feature_view 'conv_rate_plus_val'",
        "sources",
        "unknown source 'nope'",
    ),
    (
        "duplicate name",
        _add_file("more.yaml", {"entities": [{"name": "driver"}]}),
        "more.yaml",
        "entity 'driver'",
        "name",
        "duplicate entity 'driver' (also defined in entities.yaml)",
    ),
    (
        "case-insensitive view clash",
        _extra_odfv("Driver_Hourly_Stats"),
        "features.yaml",
        "on_demand_feature_view 'Driver_Hourly_Stats'",
        "name",
        "clashes with feature_view 'driver_hourly_stats'",
    ),
    (
        "case-insensitive source clash",
        lambda f: sources(f).append(
            {"name": "Driver_Hourly", "kind": "request", "schema": [{"name": "a", "dtype": "Int64"}]}
        ),
        "sources.yaml",
        "data_source 'Driver_Hourly'",
        "name",
        "data source names must be unique ignoring case: clashes with data_source 'driver_hourly'",
    ),
    (
        "schema field without expression",
        lambda f: odfv(f)["schema"].append({"name": "second", "dtype": "Int64"}),
        "features.yaml",
        "on_demand_feature_view 'conv_rate_plus_val'",
        "expressions",
        "schema field 'second' has no expression",
    ),
    (
        "bad dtype",
        lambda f: fv(f)["schema"][0].update(dtype="Float3"),
        "features.yaml",
        "feature_view 'driver_hourly_stats'",
        "schema.conv_rate.dtype",
        "bad dtype 'Float3'",
    ),
    (
        "bad ttl",
        _set(fv, "ttl", "2 hours"),
        "features.yaml",
        "feature_view 'driver_hourly_stats'",
        "ttl",
        "bad ttl '2 hours'",
    ),
    (
        "negative ttl",
        _set(fv, "ttl", -5),
        "features.yaml",
        "feature_view 'driver_hourly_stats'",
        "ttl",
        "must not be negative",
    ),
    (
        "service names a missing view",
        lambda f: service(f)["features"][0].update(feature_view="nope"),
        "features.yaml",
        "feature_service 'driver_activity'",
        "features[0].feature_view",
        "unknown feature view 'nope'",
    ),
    (
        "service names a missing feature",
        lambda f: service(f)["features"][0].update(features=["conv_rat"]),
        "features.yaml",
        "feature_service 'driver_activity'",
        "features[0].features",
        "feature view 'driver_hourly_stats' has no feature 'conv_rat'",
    ),
    (
        "bad regex",
        _set(perm, "name_patterns", ["driver_(["]),
        "permissions.yaml",
        "permission 'scientists-read'",
        "name_patterns",
        "bad regular expression",
    ),
    (
        "regex that may backtrack exponentially",
        _set(perm, "name_patterns", ["(driver_.*)*x"]),
        "permissions.yaml",
        "permission 'scientists-read'",
        "name_patterns",
        "exponential time",
    ),
    (
        "unknown action",
        _set(perm, "actions", ["DESCRIBE", "READ_ALL"]),
        "permissions.yaml",
        "permission 'scientists-read'",
        "actions",
        "unknown action 'READ_ALL'",
    ),
    (
        "unknown resource type",
        _set(perm, "types", ["feature_veiw"]),
        "permissions.yaml",
        "permission 'scientists-read'",
        "types",
        "unknown resource type 'feature_veiw'",
    ),
    (
        "permission without policy",
        _set(perm, "roles", []),
        "permissions.yaml",
        "permission 'scientists-read'",
        "roles",
        "at least one role or group",
    ),
    (
        "unknown top-level key",
        _add_file("typo.yaml", {"feature_veiws": []}),
        "typo.yaml",
        "",
        "feature_veiws",
        "unknown top-level section (did you mean 'feature_views'?)",
    ),
    (
        "unknown field",
        _set(fv, "tll", "2h"),
        "features.yaml",
        "feature_view 'driver_hourly_stats'",
        "tll",
        "unknown field (did you mean 'ttl'?)",
    ),
    (
        "field of another source kind",
        lambda f: sources(f)[0].update(table="t"),
        "sources.yaml",
        "data_source 'driver_hourly'",
        "table",
        "unknown field for a file source",
    ),
    (
        "bad project name",
        lambda f: f["project.yaml"]["project"].update(name="_bad"),
        "project.yaml",
        "project '_bad'",
        "name",
        "bad project name '_bad'",
    ),
    (
        "function not importable",
        _python_mode("nowhere.module.fn"),
        "features.yaml",
        "on_demand_feature_view 'conv_rate_plus_val'",
        "function",
        "is not an importable function",
    ),
    (
        "function not callable",
        _python_mode("catalog.repo.spec.OBJECT_TYPES"),
        "features.yaml",
        "on_demand_feature_view 'conv_rate_plus_val'",
        "function",
        "is not callable",
    ),
    (
        "expression does not parse",
        lambda f: odfv(f)["expressions"].update(conv_rate_plus_val1="conv_rate.__class__"),
        "features.yaml",
        "on_demand_feature_view 'conv_rate_plus_val'",
        "expressions.conv_rate_plus_val1",
        "attribute access is not allowed",
    ),
    (
        "expression names a non-input",
        lambda f: odfv(f)["expressions"].update(conv_rate_plus_val1="conv_rate + bogus"),
        "features.yaml",
        "on_demand_feature_view 'conv_rate_plus_val'",
        "expressions.conv_rate_plus_val1",
        "'bogus' is not an input of this view",
    ),
    (
        "feature named like a join key",
        _join_key_feature,
        "features.yaml",
        "feature_view 'driver_hourly_stats'",
        "schema.driver_id",
        "is the join key of entity 'driver'",
    ),
    (
        "file path missing",
        lambda f: sources(f)[0].update(path="data/missing.parquet"),
        "sources.yaml",
        "data_source 'driver_hourly'",
        "path",
        "file source path 'data/missing.parquet' does not exist",
    ),
    (
        "dsn in dsn_setting",
        lambda f: sources(f).append(
            {
                "name": "orders",
                "kind": "postgres",
                "table": "orders",
                "timestamp_field": "ts",
                "dsn_setting": "postgres://u:p@h/db",
            }
        ),
        "sources.yaml",
        "data_source 'orders'",
        "dsn_setting",
        "never the DSN itself",
    ),
    (
        "two project sections",
        _second_project,
        "project.yaml",
        "project",
        "",
        "more than one project section (other.yaml, project.yaml)",
    ),
    ("no project section", _no_project, "", "project", "", "no project"),
    ("bad YAML", _add_file("broken.yaml", "entities: [\n  - {name: x"), "broken.yaml", "", "", "not valid YAML"),
]


def _counts():
    models = [
        Project,
        Entity,
        DataSource,
        FeatureView,
        Field,
        OnDemandFeatureView,
        FeatureService,
        Permission,
        RegistryChange,
    ]
    return {m.__name__: m.objects.count() for m in models}


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("mutate", "file", "obj", "field", "message"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_validation_error_names_file_object_and_field(tmp_path, mutate, file, obj, field, message):
    apply(load_repo(write_repo(tmp_path / "good", sample_repo())))  # a registry that must stay untouched
    before = _counts()
    files = sample_repo()
    mutate(files)
    definition = load_repo(write_repo(tmp_path / "bad", files))
    texts = [str(e) for e in definition.errors]
    matching = [e for e in definition.errors if message in e.message]
    assert matching, f"no error containing {message!r} in {texts}"
    error = matching[0]
    assert error.file == file
    assert str(error).startswith(f"{file}: " if file else obj)
    assert obj in str(error)
    assert error.field == field
    if field:
        assert f"field {field!r}" in str(error)
    with pytest.raises(RepoValidationError) as excinfo:
        apply(definition)
    assert any(message in str(e) for e in excinfo.value.errors)
    with pytest.raises(RepoValidationError):
        plan(definition)
    assert _counts() == before


def test_all_errors_are_collected_not_just_the_first(tmp_path):
    files = sample_repo()
    fv(files)["entities"] = ["drivr"]
    fv(files)["ttl"] = "forever"
    perm(files)["actions"] = ["FLY"]
    files["entities.yaml"]["entities"][0]["colour"] = "red"
    definition = load_repo(write_repo(tmp_path, files))
    fields = sorted(e.field for e in definition.errors)
    assert fields == ["actions", "colour", "entities", "ttl"]
    assert str(RepoValidationError(definition.errors)).count("\n") == 3


def test_error_message_format(tmp_path):
    files = sample_repo()
    fv(files)["entities"] = ["drivr"]
    definition = load_repo(write_repo(tmp_path, files))
    assert [str(e) for e in definition.errors] == [
        "features.yaml: feature_view 'driver_hourly_stats': field 'entities': unknown entity 'drivr' "
        "(did you mean 'driver'?)"
    ]


def test_python_mode_with_importable_function_is_valid(tmp_path):
    files = sample_repo()
    _python_mode("catalog.repo.testing.sample_transform")(files)
    definition = load_repo(write_repo(tmp_path, files))
    assert definition.errors == []
    assert definition.objects["on_demand_feature_view"]["conv_rate_plus_val"].canonical["function"] == (
        "catalog.repo.testing.sample_transform"
    )
