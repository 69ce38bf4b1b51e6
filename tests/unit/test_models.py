"""Registry model constraints: what the database and model validation refuse."""

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

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

pytestmark = pytest.mark.django_db


@pytest.fixture
def alpha():
    return Project.objects.create(name="alpha")


@pytest.fixture
def source(alpha):
    return DataSource.objects.create(project=alpha, name="trips", kind="file", path="trips.parquet")


def refused(make) -> bool:
    """Whether the database refuses what `make` writes (in its own savepoint)."""
    try:
        with transaction.atomic():
            make()
    except IntegrityError:
        return True
    return False


def test_names_are_unique_per_project_and_type(alpha, source):
    FeatureView.objects.create(project=alpha, name="driver", source=source)
    assert refused(lambda: FeatureView.objects.create(project=alpha, name="driver", source=source))
    assert refused(lambda: DataSource.objects.create(project=alpha, name="trips", kind="file"))
    # Another type may reuse the name, as in Feast (an entity and a view both called driver).
    Entity.objects.create(project=alpha, name="driver", join_keys=["driver_id"])
    OnDemandFeatureView.objects.create(project=alpha, name="driver")
    Permission.objects.create(project=alpha, name="driver", actions=["DESCRIBE"], roles=["r"])
    assert refused(lambda: Permission.objects.create(project=alpha, name="driver", actions=["DESCRIBE"], roles=["r"]))


def test_the_same_name_lives_in_two_projects(alpha, source):
    beta = Project.objects.create(name="beta")
    other_source = DataSource.objects.create(project=beta, name="trips", kind="file")
    FeatureView.objects.create(project=alpha, name="driver", source=source)
    FeatureView.objects.create(project=beta, name="driver", source=other_source)
    assert FeatureView.objects.filter(name="driver").count() == 2
    assert refused(lambda: Project.objects.create(name="alpha"))


def test_a_field_belongs_to_exactly_one_view(alpha, source):
    fv = FeatureView.objects.create(project=alpha, name="driver", source=source)
    odfv = OnDemandFeatureView.objects.create(project=alpha, name="ratio")
    assert refused(lambda: Field.objects.create(name="orphan", dtype="Int64"))
    assert refused(lambda: Field.objects.create(feature_view=fv, on_demand_feature_view=odfv, name="x", dtype="Int64"))
    Field.objects.create(feature_view=fv, name="trips", dtype="Int64")
    Field.objects.create(on_demand_feature_view=odfv, name="trips", dtype="Int64")  # same name, other view
    assert refused(lambda: Field.objects.create(feature_view=fv, name="trips", dtype="Float32"))
    assert refused(lambda: Field.objects.create(on_demand_feature_view=odfv, name="trips", dtype="Float32"))
    assert [str(f) for f in Field.objects.order_by("pk")] == ["driver:trips", "ratio:trips"]


def test_a_projection_names_exactly_one_view(alpha, source):
    fv = FeatureView.objects.create(project=alpha, name="driver", source=source)
    odfv = OnDemandFeatureView.objects.create(project=alpha, name="ratio")
    service = FeatureService.objects.create(project=alpha, name="svc")
    assert refused(lambda: FeatureViewProjection.objects.create(feature_service=service))
    assert refused(
        lambda: FeatureViewProjection.objects.create(
            feature_service=service, feature_view=fv, on_demand_feature_view=odfv
        )
    )
    projection = FeatureViewProjection.objects.create(feature_service=service, feature_view=fv, alias="d")
    assert projection.view_name == "d"


def test_batch_source_of_a_push_source_is_its_batch_source(alpha, source):
    push = DataSource.objects.create(project=alpha, name="trips_push", kind="push", batch_source=source)
    pushed = FeatureView.objects.create(project=alpha, name="pushed", source=push)
    direct = FeatureView.objects.create(project=alpha, name="direct", source=source)
    assert pushed.batch_source == source
    assert direct.batch_source == source


@pytest.mark.parametrize("name", ["alpha", "driver_ranking", "team-a", "A1", "9lives", "x"])
def test_project_names_feast_accepts(name):
    Project(name=name).full_clean()


@pytest.mark.parametrize("name", ["", "_private", "-dash", "with space", "dot.ted", "slash/ed", "é"])
def test_project_names_feast_refuses(name):
    with pytest.raises(ValidationError) as error:
        Project(name=name).full_clean()
    assert "name" in error.value.message_dict


def test_a_project_guards_itself():
    project = Project.objects.create(name="alpha")
    assert project.project is project and project.project_id == project.pk


def test_permission_clean_normalises_and_validates(alpha):
    perm = Permission(project=alpha, name="p", types=["FEATURE_VIEW", "FeatureService"], actions=["crud"], roles=["r"])
    perm.full_clean()
    assert perm.types == ["feature_view", "feature_service"]
    assert perm.actions == ["CREATE", "DESCRIBE", "UPDATE", "DELETE"]

    with pytest.raises(ValidationError, match="at least one role or group"):
        Permission(project=alpha, name="q", actions=["DESCRIBE"]).full_clean()
    with pytest.raises(ValidationError) as error:
        Permission(
            project=alpha, name="q", actions=["DESCRIBE"], roles=["r"], name_patterns=["ok", "(bad"]
        ).full_clean()
    assert "'(bad'" in str(error.value.message_dict["name_patterns"])
    # A bad type or action is a validation error naming it, not a crash in clean().
    with pytest.raises(ValidationError) as error:
        Permission(project=alpha, name="q", types=["gizmo"], actions=["FLY"], roles=["r"]).full_clean()
    assert "'gizmo'" in str(error.value.message_dict["types"])
    assert "'FLY'" in str(error.value.message_dict["actions"])


def test_permission_save_stores_canonical_lists(alpha):
    """Rows saved without full_clean are normalised too: the matcher compares literally."""
    perm = Permission.objects.create(project=alpha, name="p", types=["OnDemandFeatureView"], actions=["write"])
    perm.refresh_from_db()
    assert perm.types == ["on_demand_feature_view"]
    assert perm.actions == ["WRITE_ONLINE", "WRITE_OFFLINE"]


@pytest.mark.django_db
def test_deleting_a_project_deletes_everything_in_it(tmp_path):
    """Sources are RESTRICTed, not PROTECTed: a view's source cannot be deleted alone,
    but deleting the whole project cascades through both."""
    from django.db.models.deletion import RestrictedError

    from catalog import repo
    from catalog.models import DataSource, FeatureView, Project
    from catalog.repo import testing

    repo.apply(repo.load_repo(testing.write_repo(tmp_path, testing.sample_repo())))
    source = FeatureView.objects.first().source
    with pytest.raises(RestrictedError):
        source.delete()
    Project.objects.all().delete()
    assert not FeatureView.objects.exists()
    assert not DataSource.objects.exists()
