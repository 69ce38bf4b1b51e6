"""Specs built from the registry (a push source stands for its batch source), the engine
registry by source kind, and the Arrow types of Feast dtypes."""

from datetime import timedelta

import pyarrow as pa
import pytest
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from catalog.models import DataSource, Entity, Project
from serving.offline import registry
from serving.offline.base import OfflineInputError
from serving.offline.duckdb import DuckDBOfflineEngine
from serving.offline.postgres import PostgresOfflineEngine
from serving.offline.specs import SourceSpec, source_spec, view_spec
from serving.offline.types import arrow_type
from tests.unit.registry_data import make_view


@pytest.fixture
def registry_objects(db):
    project = Project.objects.create(name="shop")
    user = Entity.objects.create(project=project, name="user", join_keys=["user_id"])
    region = Entity.objects.create(project=project, name="region", join_keys=["country", "city"])
    batch = DataSource.objects.create(
        project=project,
        name="orders_file",
        kind="file",
        path="/data/orders",
        timestamp_field="ts",
        created_timestamp_column="created",
        field_mapping={"uid": "user_id"},
    )
    pg = DataSource.objects.create(
        project=project, name="orders_pg", kind="postgres", table="orders", timestamp_field="ts"
    )
    push = DataSource.objects.create(project=project, name="orders_push", kind="push", batch_source=batch)
    request = DataSource.objects.create(project=project, name="req", kind="request")
    view = make_view(
        project,
        "orders",
        push,
        [user, region],
        features=(("amount", "Float64"), ("items", "Array(Int64)"), ("note", "String")),
        ttl=timedelta(hours=2),
    )
    return {"view": view, "batch": batch, "pg": pg, "push": push, "request": request}


def test_view_spec_from_the_registry(registry_objects):
    spec = view_spec(registry_objects["view"])
    assert spec.project == "shop" and spec.name == "orders" and spec.alias == ""
    assert spec.join_keys == ("country", "city", "user_id")  # entities by name, keys in their order
    assert spec.features == (("amount", "Float64"), ("items", "Array(Int64)"), ("note", "String"))
    assert spec.ttl_seconds == 7200
    # a push source's rows live in its batch source
    assert spec.source == SourceSpec(
        "orders_file", "file", path="/data/orders", timestamp_field="ts", created_timestamp_column="created",
        field_mapping={"uid": "user_id"},
    )  # fmt: skip
    assert spec.source.column_for("user_id") == "uid" and spec.source.name_for("uid") == "user_id"


def test_view_spec_subset_alias_and_unknown_feature(registry_objects):
    spec = view_spec(registry_objects["view"], alias="recent", features=["note", "amount"])
    assert spec.feature_names == ("note", "amount")
    assert spec.display_name == "recent"
    with pytest.raises(OfflineInputError, match="feature view 'orders' has no feature 'nope'"):
        view_spec(registry_objects["view"], features=["nope"])


def test_source_specs_by_kind(registry_objects):
    pg = source_spec(registry_objects["pg"])
    assert (pg.kind, pg.table, pg.dsn_setting) == ("postgres", "orders", "LARDER_OFFLINE_DSN")
    with pytest.raises(OfflineInputError, match="data source 'req' is a request source"):
        source_spec(registry_objects["request"])
    orphan = DataSource.objects.create(project=registry_objects["pg"].project, name="orphan", kind="push")
    with pytest.raises(OfflineInputError, match="push source 'orphan' has no batch source"):
        source_spec(orphan)


def test_engines_by_source_kind():
    registry.reset_engines()
    assert isinstance(registry.engine_for("file"), DuckDBOfflineEngine)
    assert isinstance(registry.engine_for(SourceSpec("x", "postgres")), PostgresOfflineEngine)
    assert registry.engine_for("file") is registry.engine_for("file"), "one engine per process"
    with pytest.raises(OfflineInputError, match="'request' sources have no offline engine"):
        registry.engine_for("request")
    with pytest.raises(ImproperlyConfigured, match="'spark' is not an offline engine"):
        registry.offline_engine_class("spark")
    with pytest.raises(ImproperlyConfigured, match="is not an OfflineEngine subclass"):
        registry.offline_engine_class("serving.offline.specs.SourceSpec")


def test_engine_settings_apply_and_changes_rebuild_the_engine():
    with override_settings(LARDER_DUCKDB_MEMORY_LIMIT="512MB", LARDER_DUCKDB_THREADS=1):
        engine = registry.engine_for("file")
        assert (engine.memory_limit, engine.threads) == ("512MB", 1)
        with engine.connect() as con:
            limit, threads = con.execute(
                "SELECT current_setting('memory_limit'), current_setting('threads')"
            ).fetchone()
        assert limit.startswith(("488", "512")) and threads == 1
    assert registry.engine_for("file").memory_limit == settings.LARDER_DUCKDB_MEMORY_LIMIT


@pytest.mark.parametrize(
    ("dtype", "expected"),
    [
        ("Int64", pa.int64()),
        ("Float32", pa.float32()),
        ("UnixTimestamp", pa.timestamp("us", tz="UTC")),
        ("Array(String)", pa.list_(pa.string())),
        ("Bytes", pa.binary()),
    ],
)
def test_arrow_types_of_dtypes(dtype, expected):
    assert arrow_type(dtype) == expected
