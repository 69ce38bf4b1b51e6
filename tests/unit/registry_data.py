"""Registry rows for API and URL-gate tests, built straight from the models (no repo
loading): one object of every type, every string carrying a distinctive word so a
test can tell whether any of it leaked into a response."""

from datetime import UTC, datetime, timedelta
from typing import Any

from access.models import Permission
from catalog.models import (
    DataSource,
    Entity,
    FeatureService,
    FeatureView,
    FeatureViewProjection,
    Field,
    MaterializationInterval,
    OnDemandFeatureView,
    Project,
    SavedDataset,
)


def make_view(
    project: Project,
    name: str,
    source: DataSource,
    entities: list[Entity] = (),
    features: tuple[tuple[str, str], ...] = (("f1", "Float32"),),
    **extra: Any,
) -> FeatureView:
    view = FeatureView.objects.create(project=project, name=name, source=source, **extra)
    view.entities.set(entities)
    Field.objects.bulk_create(
        Field(feature_view=view, name=f, dtype=d, position=i, description=f"{f} of {name}")
        for i, (f, d) in enumerate(features)
    )
    return view


def build_registry(project_name: str, word: str) -> dict[str, Any]:
    """One object of every registry type (and every data source kind) in project
    `project_name`, by type. Every name, description, owner, tag value, column and
    path contains `word`, so a response containing `word` leaked something."""
    w = word
    project = Project.objects.create(name=project_name, description=f"{w} project", owner=f"{w}@owner", tags={"t": w})
    entity = Entity.objects.create(
        project=project,
        name=f"{w}_entity",
        join_keys=[f"{w}_id"],
        value_type="Int64",
        description=f"{w} entity doc",
        owner=f"{w}_ent_owner",
        tags={"team": f"{w}_team"},
    )
    file_source = DataSource.objects.create(
        project=project,
        name=f"{w}_file",
        kind="file",
        path=f"data/{w}.parquet",
        timestamp_field=f"{w}_ts",
        created_timestamp_column=f"{w}_created",
        field_mapping={f"{w}_src": f"{w}_dst"},
        description=f"{w} file doc",
    )
    pg_source = DataSource.objects.create(
        project=project,
        name=f"{w}_pg",
        kind="postgres",
        table=f"{w}_table",
        dsn_setting=f"{w.upper()}_DSN",
        timestamp_field="ts",
    )
    push_source = DataSource.objects.create(project=project, name=f"{w}_push", kind="push", batch_source=file_source)
    request_source = DataSource.objects.create(
        project=project, name=f"{w}_request", kind="request", schema=[{"name": f"{w}_input", "dtype": "Int64"}]
    )
    view = make_view(
        project,
        f"{w}fv",
        file_source,
        [entity],
        features=((f"{w}_feat", "Float32"), (f"{w}_list", "Array(String)")),
        ttl=timedelta(days=1),
        description=f"{w} view doc",
        owner=f"{w}_fv_owner",
        tags={"team": f"{w}_team"},
    )
    MaterializationInterval.objects.create(
        feature_view=view, start=datetime(2024, 1, 1, tzinfo=UTC), end=datetime(2024, 1, 2, tzinfo=UTC)
    )
    push_view = make_view(project, f"{w}_pushfv", push_source, [entity], features=((f"{w}_pushed", "Int64"),))
    odfv = OnDemandFeatureView.objects.create(
        project=project,
        name=f"{w}_odfv",
        mode="expression",
        expressions={f"{w}_out": f"{w}_feat + {w}_input"},
        description=f"{w} odfv doc",
    )
    odfv.sources.set([view])
    odfv.request_sources.set([request_source])
    Field.objects.create(on_demand_feature_view=odfv, name=f"{w}_out", dtype="Float64")
    service = FeatureService.objects.create(project=project, name=f"{w}_service", description=f"{w} service doc")
    FeatureViewProjection.objects.create(feature_service=service, feature_view=view, features=[f"{w}_feat"], position=0)
    FeatureViewProjection.objects.create(
        feature_service=service, on_demand_feature_view=odfv, alias=f"{w}_alias", position=1
    )
    dataset = SavedDataset.objects.create(
        project=project,
        name=f"{w}_dataset",
        features=[f"{w}fv:{w}_feat"],
        join_keys=[f"{w}_id"],
        storage=f"var/{w}/dataset.parquet",
        feature_service=service,
        description=f"{w} dataset doc",
    )
    permission = Permission.objects.create(
        project=project,
        name=f"{w}_permission",
        types=["feature_view"],
        name_patterns=[f"{w}_nomatch.*"],
        actions=["DESCRIBE"],
        roles=[f"{w}_role"],
        description=f"{w} permission doc",
    )
    objects = {
        "project": project,
        "entity": entity,
        "data_source": file_source,
        "pg_source": pg_source,
        "push_source": push_source,
        "request_source": request_source,
        "feature_view": view,
        "push_view": push_view,
        "on_demand_feature_view": odfv,
        "feature_service": service,
        "saved_dataset": dataset,
        "permission": permission,
    }
    return objects
