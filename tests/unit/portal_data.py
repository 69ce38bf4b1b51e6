"""A small two-project registry for the portal and lineage tests, built from the models.

p1 holds two teams' objects; the role `team-a` may DESCRIBE only the feature views
named `team_a_.*` of p1 (not its on-demand views, not p2's views). `reader` may
DESCRIBE everything in p1. Names are distinct words, so a test can tell whether a
hidden one leaked into a page.
"""

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

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
    RegistryChange,
    SavedDataset,
)

# Names a `team-a` user must never see.
HIDDEN_FROM_TEAM_A = [
    "rider_entity",
    "src_alpha",
    "src_beta",
    "push_alpha",
    "req_extra",
    "team_b_stats",
    "team_a_plus",
    "team_b_plus",
    "svc_alpha",
    "svc_beta",
    "ds_alpha",
    "ds_beta",
    "team-a-describe",
    "all-describe",
    "team_a_other",
]


def write_parquet(path: Path, rider_ids: list[int]) -> Path:
    now = datetime(2024, 5, 1, tzinfo=UTC)
    table = pa.table(
        {
            "rider_id": pa.array(rider_ids, pa.int64()),
            "f1": pa.array([0.5] * len(rider_ids), pa.float32()),
            "event_timestamp": pa.array([now] * len(rider_ids), pa.timestamp("us", tz="UTC")),
        }
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)
    return path


def view(project, name, source, entities=(), fields=("f1", "f2"), **extra) -> FeatureView:
    fv = FeatureView.objects.create(project=project, name=name, source=source, **extra)
    fv.entities.set(entities)
    Field.objects.bulk_create(
        Field(feature_view=fv, name=f, dtype="Float32", position=i, description=f"{f} of {name}", tags={"unit": "x"})
        for i, f in enumerate(fields)
    )
    return fv


def build(data_dir: Path) -> dict[str, Any]:
    p1 = Project.objects.create(name="p1", description="Project one", owner="ml@example.com")
    p2 = Project.objects.create(name="p2", description="Project two")
    rider = Entity.objects.create(project=p1, name="rider_entity", join_keys=["rider_id"], value_type="Int64")
    parquet = write_parquet(data_dir / "alpha.parquet", [4242, 7])
    src_a = DataSource.objects.create(
        project=p1, name="src_alpha", kind="file", path=str(parquet), timestamp_field="event_timestamp"
    )
    src_b = DataSource.objects.create(
        project=p1, name="src_beta", kind="file", path=str(data_dir / "missing.parquet"), timestamp_field="ts"
    )
    push_a = DataSource.objects.create(project=p1, name="push_alpha", kind="push", batch_source=src_a)
    req = DataSource.objects.create(
        project=p1, name="req_extra", kind="request", schema=[{"name": "bonus", "dtype": "Int64"}]
    )
    a_stats = view(
        p1,
        "team_a_stats",
        src_a,
        [rider],
        ttl=timedelta(days=1),
        tags={"team": "a"},
        owner="alice@example.com",
        description="Team A's stats",
    )
    a_fresh = view(p1, "team_a_fresh", push_a, [rider], tags={"team": "a"}, owner="alice@example.com", offline=True)
    b_stats = view(p1, "team_b_stats", src_b, [rider], tags={"team": "b"}, owner="bob@example.com", online=False)
    MaterializationInterval.objects.create(
        feature_view=a_stats, start=datetime(2024, 1, 1, tzinfo=UTC), end=datetime(2024, 1, 2, tzinfo=UTC)
    )
    a_plus = OnDemandFeatureView.objects.create(project=p1, name="team_a_plus", expressions={"g": "f1 + bonus"})
    a_plus.sources.set([a_stats])
    a_plus.request_sources.set([req])
    Field.objects.create(on_demand_feature_view=a_plus, name="g", dtype="Float64")
    b_plus = OnDemandFeatureView.objects.create(project=p1, name="team_b_plus", expressions={"h": "f2 * 2"})
    b_plus.sources.set([b_stats])
    Field.objects.create(on_demand_feature_view=b_plus, name="h", dtype="Float64")
    svc_a = FeatureService.objects.create(project=p1, name="svc_alpha", tags={"team": "a"})
    FeatureViewProjection.objects.create(feature_service=svc_a, feature_view=a_stats, features=["f1"], position=0)
    FeatureViewProjection.objects.create(feature_service=svc_a, on_demand_feature_view=a_plus, position=1)
    svc_b = FeatureService.objects.create(project=p1, name="svc_beta")
    FeatureViewProjection.objects.create(feature_service=svc_b, feature_view=b_stats, position=0)
    ds_a = SavedDataset.objects.create(
        project=p1, name="ds_alpha", feature_service=svc_a, features=["team_a_stats:f1"], storage="var/a.parquet"
    )
    ds_b = SavedDataset.objects.create(
        project=p1, name="ds_beta", features=["team_b_stats:f1", "team_a_stats:f2"], storage="var/b.parquet"
    )
    team_a = Permission.objects.create(
        project=p1,
        name="team-a-describe",
        types=["feature_view"],
        name_patterns=["team_a_.*"],
        actions=["DESCRIBE"],
        roles=["team-a"],
    )
    everything = Permission.objects.create(project=p1, name="all-describe", actions=["DESCRIBE"], roles=["reader"])
    other_src = DataSource.objects.create(project=p2, name="src_other", kind="file", path="x.parquet")
    other = view(p2, "team_a_other", other_src)
    RegistryChange.objects.create(
        project=p1,
        project_name="p1",
        object_type="feature_view",
        object_name="team_a_stats",
        action="create",
        diff={"name": "team_a_stats", "source": "src_beta", "ttl": 3600, "entities": ["rider_entity"]},
        actor="cli",
    )
    RegistryChange.objects.create(
        project=p1,
        project_name="p1",
        object_type="feature_view",
        object_name="team_a_stats",
        action="update",
        diff={
            "ttl": [3600, 86400],
            "description": ["Old words", "Team A's stats"],
            "source": ["src_beta", "src_alpha"],
        },
        actor="cli",
    )
    return {
        "p1": p1,
        "p2": p2,
        "rider": rider,
        "src_a": src_a,
        "src_b": src_b,
        "push_a": push_a,
        "req": req,
        "a_stats": a_stats,
        "a_fresh": a_fresh,
        "b_stats": b_stats,
        "a_plus": a_plus,
        "b_plus": b_plus,
        "svc_a": svc_a,
        "svc_b": svc_b,
        "ds_a": ds_a,
        "ds_b": ds_b,
        "perm_team_a": team_a,
        "perm_all": everything,
        "other": other,
    }
