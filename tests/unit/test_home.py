"""The landing page: gated, counts only what the user may DESCRIBE, hides unseen changes."""

import pytest
from django.urls import reverse

from access.models import Permission
from catalog.models import DataSource, Entity, FeatureView, Project, RegistryChange

pytestmark = pytest.mark.django_db


@pytest.fixture
def registry():
    project = Project.objects.create(name="rides", description="Ride features")
    other = Project.objects.create(name="secret_project")
    source = DataSource.objects.create(project=project, name="trips", kind="file", path="data/trips.parquet")
    Entity.objects.create(project=project, name="driver", join_keys=["driver_id"])
    FeatureView.objects.create(project=project, name="driver_stats", source=source)
    FeatureView.objects.create(project=project, name="driver_pii", source=source, tags={"pii": "true"})
    hidden_source = DataSource.objects.create(project=other, name="s", kind="file", path="x.parquet")
    FeatureView.objects.create(project=other, name="hidden_view", source=hidden_source)
    Permission.objects.create(
        project=project,
        name="read-stats",
        types=["feature_view"],
        name_patterns=["driver_stats"],
        actions=["DESCRIBE"],
        roles=["analyst"],
    )
    for name in ("driver_stats", "driver_pii", "gone_view"):
        RegistryChange.objects.create(
            project=project, project_name="rides", object_type="feature_view", object_name=name, action="create"
        )
    RegistryChange.objects.create(
        project=other,
        project_name="secret_project",
        object_type="feature_view",
        object_name="hidden_view",
        action="create",
    )
    return project


def counts(response) -> dict[str, dict[str, int]]:
    return {card.project.name: dict(card.counts) for card in response.context["cards"]}


def test_anonymous_is_sent_to_login(client):
    response = client.get(reverse("catalog:home"))
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_user_without_permissions_sees_the_empty_state_only(client, make_user, registry):
    client.force_login(make_user("nobody"))
    response = client.get(reverse("catalog:home"))
    body = response.content.decode()
    assert response.status_code == 200
    assert response.context["cards"] == []
    assert "No feature views yet" in body and "python manage.py apply examples/driver_stats" in body
    for hidden in ("Ride features", "secret_project", "driver_pii", "hidden_view"):
        assert hidden not in body


def test_counts_only_what_the_user_may_describe(client, make_user, registry):
    client.force_login(make_user("ana", roles=("analyst",)))
    response = client.get(reverse("catalog:home"))
    assert counts(response) == {
        "rides": {
            "Entities": 0,
            "Data sources": 0,
            "Feature views": 1,
            "On-demand views": 0,
            "Feature services": 0,
            "Permissions": 0,
        }
    }
    body = response.content.decode()
    assert "secret_project" not in body
    shown = [c.object_name for c in response.context["changes"]]
    assert shown == ["driver_stats"], "changes to hidden, deleted or foreign objects stay hidden"


def test_superuser_sees_everything_including_deleted_objects_history(client, make_user, registry):
    client.force_login(make_user("root", is_superuser=True))
    response = client.get(reverse("catalog:home"))
    assert counts(response)["rides"]["Feature views"] == 2
    assert counts(response)["rides"]["Permissions"] == 1
    assert counts(response)["secret_project"]["Feature views"] == 1
    assert {c.object_name for c in response.context["changes"]} == {
        "driver_stats",
        "driver_pii",
        "gone_view",
        "hidden_view",
    }
    assert "No feature views yet" not in response.content.decode()


def test_project_documentation_needs_describe_on_the_project(client, make_user, registry):
    registry.description = "Internal roadmap notes"
    registry.owner = "owner@example.com"
    registry.save()
    client.force_login(make_user("ana", roles=("analyst",)))
    body = client.get(reverse("catalog:home")).content.decode()
    assert "rides" in body, "the name is implied by the view the user may see"
    assert "Internal roadmap notes" not in body and "owner@example.com" not in body
