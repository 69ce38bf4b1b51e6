"""The example repo: its data generator, and (once apply exists) that it applies cleanly."""

import io
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from django.core.management import call_command

from access.actions import Action
from access.models import Permission
from access.policy import is_allowed
from catalog.models import (
    DataSource,
    Entity,
    FeatureService,
    FeatureView,
    OnDemandFeatureView,
    Project,
    RegistryChange,
)
from catalog.repo import apply, load_repo
from examples.driver_stats import generate as gen

REPO = Path(__file__).resolve().parents[2] / "examples" / "driver_stats"
REFERENCE = datetime(2026, 3, 1, 12, tzinfo=UTC)


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    out = tmp_path_factory.mktemp("data")
    counts = gen.generate(out, REFERENCE, seed=7)
    return out, counts


def test_writes_the_three_files_with_their_schemas(generated):
    out, counts = generated
    assert sorted(p.name for p in out.iterdir()) == sorted(gen.FILES)
    for name, schema in gen.FILES.items():
        table = pq.read_table(out / name)
        assert table.schema.equals(schema, check_metadata=False), name
        assert table.num_rows == counts[name]


def test_row_counts_cover_fourteen_days(generated):
    _, counts = generated
    assert counts == {
        "driver_stats.parquet": 50 * 14 * 24 + 20,  # hourly rows plus 20 late corrections
        "customer_profile.parquet": 100 * 14,
        "driver_daily.parquet": 50 * 14,
    }


def test_timestamps_end_at_the_reference_and_are_utc(generated):
    out, _ = generated
    stats = pq.read_table(out / "driver_stats.parquet")
    events = stats.column("event_timestamp").to_pylist()
    assert max(events) == REFERENCE
    assert min(events) == REFERENCE - timedelta(hours=14 * 24 - 1)
    assert stats.schema.field("event_timestamp").type == pa.timestamp("us", tz="UTC")
    created = stats.column("created").to_pylist()
    assert all(c > e for c, e in zip(created, events, strict=True)), "created follows the event"
    daily = pq.read_table(out / "driver_daily.parquet").column("event_timestamp").to_pylist()
    assert max(daily) == REFERENCE.replace(hour=0) and all(t.hour == 0 for t in daily)


def test_has_nulls_and_late_corrections(generated):
    out, _ = generated
    df = pq.read_table(out / "driver_stats.parquet").to_pandas()
    assert 0 < df["conv_rate"].isna().sum() < len(df) * 0.05
    dupes = df[df.duplicated(["driver_id", "event_timestamp"], keep=False)]
    assert len(dupes) == 2 * 20
    for _, group in dupes.groupby(["driver_id", "event_timestamp"]):
        assert group["created"].nunique() == 2, "a correction is told apart by its created time"
    assert df["driver_id"].between(1001, 1050).all()
    assert df["conv_rate"].dropna().between(0, 1).all()


def test_same_seed_and_reference_give_identical_data(generated, tmp_path):
    out, _ = generated
    gen.generate(tmp_path, REFERENCE, seed=7)
    for name in gen.FILES:
        assert pq.read_table(tmp_path / name).equals(pq.read_table(out / name)), name
    gen.generate(tmp_path, REFERENCE, seed=8)
    assert not pq.read_table(tmp_path / "driver_stats.parquet").equals(pq.read_table(out / "driver_stats.parquet"))


def test_default_reference_is_the_current_hour():
    now = datetime(2026, 5, 4, 17, 42, 9, 123, tzinfo=UTC)
    assert gen.default_reference(now) == datetime(2026, 5, 4, 17, tzinfo=UTC)


def test_naive_reference_is_refused(tmp_path):
    with pytest.raises(ValueError, match="timezone"):
        gen.generate(tmp_path, datetime(2026, 1, 1))  # noqa: DTZ001 - the point of the test
    assert list(tmp_path.iterdir()) == []


def test_cli_writes_into_the_given_folder(tmp_path, capsys):
    gen.main(["--out", str(tmp_path), "--reference", "2026-01-01T00:00:00Z"])
    assert "driver_stats.parquet: 16820 rows" in capsys.readouterr().out
    assert not list(tmp_path.glob(".*.tmp")), "no temporary files left behind"


# --- the YAML: validates, applies, re-applies as a no-op, and grants the demo roles what they need


@pytest.fixture(scope="module")
def repo_copy(tmp_path_factory):
    """The example repo's YAML beside freshly generated data, away from the work tree."""
    root = tmp_path_factory.mktemp("driver_stats")
    for yaml_file in REPO.glob("*.yaml"):
        shutil.copy(yaml_file, root / yaml_file.name)
    gen.generate(root / "data", REFERENCE)
    return root


def test_example_repo_loads_without_errors(repo_copy):
    definition = load_repo(repo_copy)
    assert definition.errors == []
    assert definition.project_name == "driver_stats"


@pytest.mark.django_db
def test_example_repo_applies_and_reapplies_as_a_no_op(repo_copy):
    out = io.StringIO()
    call_command("apply", str(repo_copy), stdout=out)
    assert "Applied 21 changes to project driver_stats" in out.getvalue()  # the project and 20 objects
    project = Project.objects.get(name="driver_stats")
    assert {
        "entities": Entity.objects.filter(project=project).count(),
        "sources": DataSource.objects.filter(project=project).count(),
        "views": FeatureView.objects.filter(project=project).count(),
        "odfvs": OnDemandFeatureView.objects.filter(project=project).count(),
        "services": FeatureService.objects.filter(project=project).count(),
        "permissions": Permission.objects.filter(project=project).count(),
    } == {"entities": 2, "sources": 5, "views": 4, "odfvs": 2, "services": 2, "permissions": 5}

    stats = FeatureView.objects.get(project=project, name="driver_hourly_stats")
    assert stats.ttl == timedelta(days=1)
    assert [(f.name, f.dtype) for f in stats.fields.all()] == [
        ("conv_rate", "Float32"),
        ("acc_rate", "Float32"),
        ("avg_daily_trips", "Int64"),
    ]
    assert FeatureView.objects.get(project=project, name="customer_profile").ttl == timedelta(days=7)
    fresh = FeatureView.objects.get(project=project, name="driver_hourly_stats_fresh")
    assert fresh.source.kind == "push" and fresh.batch_source.name == "driver_hourly"

    version, changes = Project.objects.get(pk=project.pk).version, RegistryChange.objects.count()
    out = io.StringIO()
    call_command("apply", str(repo_copy), stdout=out)
    assert "No changes to registry" in out.getvalue()
    assert Project.objects.get(pk=project.pk).version == version
    assert RegistryChange.objects.count() == changes


@pytest.mark.django_db
def test_demo_roles_get_what_the_readme_promises(repo_copy, make_user):
    apply(load_repo(repo_copy))
    project = Project.objects.get(name="driver_stats")
    service = FeatureService.objects.get(project=project, name="driver_activity_v2")
    stats = FeatureView.objects.get(project=project, name="driver_hourly_stats")
    fresh = FeatureView.objects.get(project=project, name="driver_hourly_stats_fresh")
    permission = Permission.objects.get(project=project, name="ml-engineer-all")

    scientist = make_user("scientist", roles=("data-scientist",))
    assert is_allowed(scientist, [Action.READ_ONLINE, Action.READ_OFFLINE], service)
    assert is_allowed(scientist, Action.DESCRIBE, permission)
    assert not is_allowed(scientist, Action.UPDATE, stats)
    assert not is_allowed(scientist, Action.WRITE_ONLINE, fresh)

    engineer = make_user("engineer", roles=("ml-engineer",))
    assert all(is_allowed(engineer, a, obj) for a in Action for obj in (project, stats, service, permission))

    server = make_user("model-server", roles=("model-server",))
    assert is_allowed(server, [Action.DESCRIBE, Action.READ_ONLINE], service)
    assert is_allowed(server, Action.READ_ONLINE, stats)
    assert not is_allowed(server, Action.READ_OFFLINE, stats)
    assert not is_allowed(server, Action.DESCRIBE, project)

    producer = make_user("producer", roles=("producer",))
    assert is_allowed(producer, [Action.WRITE_ONLINE, Action.WRITE_OFFLINE], fresh)
    assert not is_allowed(producer, Action.WRITE_ONLINE, stats)
    assert not is_allowed(producer, Action.READ_ONLINE, fresh)
