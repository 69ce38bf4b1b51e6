"""The Django admin answers to Larder permissions only, through the one gate."""

import pytest
from django.contrib import admin
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from access.admin_gate import GatedModelAdmin
from access.forms import PermissionForm
from access.models import Permission
from access.policy import AccessDenied
from catalog.admin import REGISTRY_MODELS
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

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fast_hasher(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


# -- fixtures and helpers -----------------------------------------------------------------
@pytest.fixture
def alpha():
    return Project.objects.create(name="alpha")


@pytest.fixture
def beta():
    return Project.objects.create(name="beta")


@pytest.fixture
def views(alpha, beta):
    """team_a_* and team_b_* views in alpha, and a team_a_* view in beta."""
    source = DataSource.objects.create(project=alpha, name="trips", kind="file", path="trips.parquet")
    other_source = DataSource.objects.create(project=beta, name="trips", kind="file", path="trips.parquet")
    made = {}
    for name in ("team_a_trips", "team_a_rides", "team_b_trips"):
        made[name] = FeatureView.objects.create(project=alpha, name=name, source=source, tags={"team": name[5]})
        Field.objects.create(feature_view=made[name], name="trips", dtype="Int64")
    made["beta_team_a"] = FeatureView.objects.create(project=beta, name="team_a_trips", source=other_source)
    return made


def grant(project, name="p", **spec):
    spec.setdefault("roles", ["team-a"])
    return Permission.objects.create(project=project, name=name, **spec)


@pytest.fixture
def staff(make_user):
    return make_user("staff", roles=("team-a",), is_staff=True)


def url(model, view, *args):
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


def listed(response) -> set[str]:
    return {str(obj.name) for obj in response.context["cl"].result_list}


def index_models(response) -> set[str]:
    return {m["object_name"] for app in response.context["app_list"] for m in app["models"]}


def change_form_data(response) -> dict:
    """The POST body the change page would send back unchanged (main form and inlines)."""
    data = {}

    def put(form, names):
        for name in names:
            value = form[name].value()
            if value is None:
                continue
            data[form.add_prefix(name)] = [str(v) for v in value] if isinstance(value, list) else value

    form = response.context["adminform"].form
    put(form, form.fields)
    for inline in response.context["inline_admin_formsets"]:
        formset = inline.formset
        put(formset.management_form, formset.management_form.fields)
        for sub in formset.forms:
            put(sub, [n for n in sub.fields if n != "DELETE"])
    return data


def edit(client, obj, **changes):
    """GET the change page of `obj`, change some fields, POST it back."""
    response = client.get(url(type(obj), "change", obj.pk))
    assert response.status_code == 200
    data = change_form_data(response)
    data.update(changes)
    return client.post(url(type(obj), "change", obj.pk), data)


def form_errors(response) -> str:
    form = response.context["adminform"].form
    return " ".join(str(e) for errors in form.errors.values() for e in errors)


# -- who gets in --------------------------------------------------------------------------
def test_every_registry_model_has_a_gated_admin():
    for model in REGISTRY_MODELS:
        assert isinstance(admin.site.get_model_admin(model), GatedModelAdmin), model


def test_anonymous_and_non_staff_users_are_sent_to_a_login(client, make_user):
    response = client.get("/admin/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")

    client.force_login(make_user("plain", roles=("team-a",)))
    response = client.get(url(FeatureView, "changelist"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))


def test_staff_without_larder_permissions_sees_nothing(client, staff, views):
    client.force_login(staff)
    assert index_models(client.get("/admin/")) == set()
    for model in REGISTRY_MODELS:
        assert client.get(url(model, "changelist")).status_code == 403, model
    fv = views["team_a_trips"]
    assert client.get(url(FeatureView, "change", fv.pk)).status_code == 403
    assert client.post(url(FeatureView, "change", fv.pk), {"name": "x"}).status_code == 403
    assert client.get(url(FeatureView, "delete", fv.pk)).status_code == 403
    assert client.get(url(FeatureView, "add")).status_code == 403
    assert client.get(url(RegistryChange, "changelist")).status_code == 403


def test_describe_on_a_name_pattern_shows_exactly_those_views(client, staff, views, alpha):
    grant(alpha, types=["feature_view"], name_patterns=["team_a_.*"], actions=["DESCRIBE"])
    assert not staff.user_permissions.exists()  # no Django model permission at all
    client.force_login(staff)

    # Materialization jobs and schedules follow their feature view's DESCRIBE (materialization/admin.py).
    assert index_models(client.get("/admin/")) == {
        "FeatureView",
        "RegistryChange",
        "MaterializationJob",
        "MaterializationSchedule",
    }
    response = client.get(url(FeatureView, "changelist"))
    assert response.status_code == 200
    assert listed(response) == {"team_a_trips", "team_a_rides"}  # not team_b, not beta's team_a_trips
    assert client.get(url(DataSource, "changelist")).status_code == 403

    # Read-only: the page opens, a POST is refused, nothing may be added or deleted.
    page = client.get(url(FeatureView, "change", views["team_a_trips"].pk))
    assert page.status_code == 200 and not page.context["has_change_permission"]
    assert client.post(url(FeatureView, "change", views["team_a_trips"].pk), {"name": "x"}).status_code == 403
    assert client.get(url(FeatureView, "add")).status_code == 403

    # An object out of sight answers like a missing one (no hint that it exists).
    hidden = client.get(url(FeatureView, "change", views["team_b_trips"].pk))
    missing = client.get(url(FeatureView, "change", 999999))
    assert hidden.status_code == missing.status_code == 302
    assert hidden["Location"] == missing["Location"] == reverse("admin:index")


def test_update_cannot_carry_a_view_out_of_reach(client, staff, views, alpha, beta):
    grant(alpha, types=["feature_view"], name_patterns=["team_a_.*"], actions=["DESCRIBE", "UPDATE"])
    grant(beta, "beta-read", types=["feature_view"], actions=["DESCRIBE"])
    client.force_login(staff)
    fv = views["team_a_trips"]
    version = Project.objects.get(pk=alpha.pk).version

    refused = edit(client, fv, name="team_b_x")
    assert refused.status_code == 200
    assert "Permission denied: DESCRIBE, UPDATE on feature_view 'team_b_x'" in form_errors(refused)
    moved = edit(client, fv, project=str(beta.pk))  # beta grants DESCRIBE only
    assert moved.status_code == 200 and "project" in moved.context["adminform"].form.errors
    fv.refresh_from_db()
    assert (fv.name, fv.project_id) == ("team_a_trips", alpha.pk)
    assert not RegistryChange.objects.exists()
    assert Project.objects.get(pk=alpha.pk).version == version

    accepted = edit(client, fv, name="team_a_renamed", description="Trips per day")
    assert accepted.status_code == 302, form_errors(accepted)
    fv.refresh_from_db()
    assert (fv.name, fv.description) == ("team_a_renamed", "Trips per day")
    change = RegistryChange.objects.get()
    assert (change.action, change.object_type, change.object_name) == ("update", "feature_view", "team_a_renamed")
    assert (change.user, change.actor, change.project_name) == (staff, "admin", "alpha")
    assert change.diff == {"name": ["team_a_trips", "team_a_renamed"], "description": ["", "Trips per day"]}
    assert Project.objects.get(pk=alpha.pk).version == version + 1


def test_a_tag_change_cannot_escape_a_required_tags_rule(client, staff, views, alpha):
    grant(alpha, types=["feature_view"], required_tags={"team": "a"}, actions=["DESCRIBE", "UPDATE"])
    client.force_login(staff)
    fv = views["team_a_trips"]
    refused = edit(client, fv, tags='{"team": "b"}')
    assert "Permission denied" in form_errors(refused)
    fv.refresh_from_db()
    assert fv.tags == {"team": "a"}
    assert edit(client, fv, tags='{"team": "a", "tier": "gold"}').status_code == 302
    fv.refresh_from_db()
    assert fv.tags == {"team": "a", "tier": "gold"}
    assert RegistryChange.objects.get().diff == {"tags": [{"team": "a"}, {"team": "a", "tier": "gold"}]}


def test_save_model_gates_even_without_the_form(rf, staff, views, alpha, beta):
    """The form check is a courtesy; save_model decides on its own."""
    grant(alpha, types=["feature_view"], name_patterns=["team_a_.*"], actions=["DESCRIBE", "UPDATE"])
    request = rf.post("/admin/")
    request.user = staff
    model_admin = admin.site.get_model_admin(FeatureView)
    fv = FeatureView.objects.get(pk=views["team_a_trips"].pk)
    fv.name = "team_b_sneaky"
    with pytest.raises(AccessDenied):
        model_admin.save_model(request, fv, form=None, change=True)
    fv = FeatureView.objects.get(pk=views["team_a_trips"].pk)
    fv.project = beta  # same name, other project: UPDATE there is not granted
    with pytest.raises(AccessDenied):
        model_admin.save_model(request, fv, form=None, change=True)
    assert set(FeatureView.objects.filter(project=alpha).values_list("name", flat=True)) == {
        "team_a_trips",
        "team_a_rides",
        "team_b_trips",
    }


def test_inline_fields_follow_the_parent_view(client, staff, views, alpha):
    grant(alpha, types=["feature_view"], name_patterns=["team_a_.*"], actions=["DESCRIBE", "UPDATE"])
    fv = views["team_a_trips"]
    MaterializationInterval.objects.create(feature_view=fv, start="2024-01-01T00:00:00Z", end="2024-01-02T00:00:00Z")
    client.force_login(staff)
    page = client.get(url(FeatureView, "change", fv.pk))
    inlines = {i.formset.get_default_prefix(): i for i in page.context["inline_admin_formsets"]}
    assert inlines["fields"].has_add_permission and inlines["fields"].has_change_permission
    assert not inlines["materialization_intervals"].has_change_permission  # read-only rows
    assert len(inlines["materialization_intervals"].formset.forms) == 1

    data = change_form_data(page)
    data.update({"fields-TOTAL_FORMS": "2", "fields-1-name": "rides", "fields-1-dtype": "Int32"})
    data.update({"fields-1-position": "1", "fields-1-tags": "{}", "fields-1-description": ""})
    response = client.post(url(FeatureView, "change", fv.pk), data)
    assert response.status_code == 302
    assert [f.name for f in fv.fields.all()] == ["trips", "rides"]
    diff = RegistryChange.objects.get().diff
    assert [row["name"] for row in diff["fields"][0]] == ["trips"]
    assert [(row["name"], row["dtype"]) for row in diff["fields"][1]] == [("trips", "Int64"), ("rides", "Int32")]


def test_delete_needs_delete(client, staff, views, alpha):
    grant(alpha, types=["feature_view"], name_patterns=["team_a_.*"], actions=["DESCRIBE", "UPDATE"])
    client.force_login(staff)
    fv = views["team_a_trips"]
    assert client.post(url(FeatureView, "delete", fv.pk), {"post": "yes"}).status_code == 403
    bulk = {"action": "delete_selected", "_selected_action": [fv.pk], "post": "yes"}
    client.post(url(FeatureView, "changelist"), bulk)
    assert FeatureView.objects.filter(pk=fv.pk).exists()

    grant(alpha, "deleter", types=["feature_view"], name_patterns=["team_a_trips"], actions=["DESCRIBE", "DELETE"])
    version = Project.objects.get(pk=alpha.pk).version
    assert client.post(url(FeatureView, "delete", fv.pk), {"post": "yes"}).status_code == 302
    assert not FeatureView.objects.filter(pk=fv.pk).exists()
    change = RegistryChange.objects.get()
    assert (change.action, change.object_name, change.diff["source"]) == ("delete", "team_a_trips", "trips")
    assert Project.objects.get(pk=alpha.pk).version == version + 1

    # The bulk action checks every selected row: team_a_rides may not be deleted.
    rides = views["team_a_rides"]
    client.post(url(FeatureView, "changelist"), {**bulk, "_selected_action": [rides.pk]})
    assert FeatureView.objects.filter(pk=rides.pk).exists()


def test_every_admin_page_renders_for_a_superuser(client, make_user, views, alpha):
    fv = views["team_a_trips"]
    odfv = OnDemandFeatureView.objects.create(project=alpha, name="ratio")
    Field.objects.create(on_demand_feature_view=odfv, name="ratio", dtype="Float64")
    service = FeatureService.objects.create(project=alpha, name="svc")
    FeatureViewProjection.objects.create(feature_service=service, feature_view=fv, features=["trips"])
    Entity.objects.create(project=alpha, name="driver", join_keys=["driver_id"])
    SavedDataset.objects.create(project=alpha, name="ds", storage="ds.parquet", feature_service=service)
    grant(alpha)
    RegistryChange.objects.create(
        project=alpha,
        project_name="alpha",
        object_type="feature_view",
        object_name="team_a_trips",
        action="create",
        diff={"name": "team_a_trips"},
    )
    client.force_login(make_user("root", is_superuser=True, is_staff=True))
    for model in [*REGISTRY_MODELS, RegistryChange]:
        obj = model.objects.first()
        assert client.get(url(model, "changelist")).status_code == 200, model
        assert client.get(url(model, "changelist"), {"q": "a"}).status_code == 200, model
        assert client.get(url(model, "change", obj.pk)).status_code == 200, model
        if model is not RegistryChange:
            assert client.get(url(model, "add")).status_code == 200, model
    assert client.get(url(RegistryChange, "add")).status_code == 403


def test_a_projection_names_exactly_one_view(client, make_user, views, alpha):
    service = FeatureService.objects.create(project=alpha, name="svc")
    client.force_login(make_user("root", is_superuser=True, is_staff=True))
    data = change_form_data(client.get(url(FeatureService, "change", service.pk)))
    data.update({"projections-TOTAL_FORMS": "1", "projections-0-features": "[]", "projections-0-position": "0"})
    response = client.post(url(FeatureService, "change", service.pk), data)
    assert response.status_code == 200
    assert "Choose exactly one view" in str(response.context["inline_admin_formsets"][0].formset.errors)
    data["projections-0-feature_view"] = str(views["team_a_trips"].pk)
    assert client.post(url(FeatureService, "change", service.pk), data).status_code == 302
    assert service.projections.get().view_name == "team_a_trips"


def test_superuser_sees_everything(client, make_user, views):
    client.force_login(make_user("root", is_superuser=True, is_staff=True))
    assert listed(client.get(url(FeatureView, "changelist"))) == {"team_a_trips", "team_a_rides", "team_b_trips"}
    assert client.get(url(FeatureView, "changelist")).context["cl"].result_count == 4
    models = index_models(client.get("/admin/"))
    assert {m.__name__ for m in REGISTRY_MODELS} | {"RegistryChange"} <= models


def test_create_is_judged_on_the_new_object(client, staff, views, alpha, beta):
    grant(alpha, types=["feature_view"], name_patterns=["team_a_.*"], actions=["CREATE"])
    grant(alpha, "sources", types=["data_source"], actions=["DESCRIBE"])
    client.force_login(staff)
    page = client.get(url(FeatureView, "add"))
    assert page.status_code == 200
    form = page.context["adminform"].form
    assert list(form.fields["project"].queryset) == [alpha]  # beta grants nothing
    assert {s.project_id for s in form.fields["source"].queryset} == {alpha.pk}
    source = DataSource.objects.get(project=alpha)
    data = {"project": alpha.pk, "source": source.pk, "ttl": "0", "online": "on", "tags": "{}"}
    data.update({"fields-TOTAL_FORMS": "0", "fields-INITIAL_FORMS": "0"})
    data.update({"materialization_intervals-TOTAL_FORMS": "0", "materialization_intervals-INITIAL_FORMS": "0"})

    refused = client.post(url(FeatureView, "add"), {**data, "name": "team_b_new"})
    assert "Permission denied: CREATE on feature_view 'team_b_new'" in form_errors(refused)
    created = client.post(url(FeatureView, "add"), {**data, "name": "team_a_new"})
    assert created.status_code == 302, form_errors(created)
    change = RegistryChange.objects.get()
    assert (change.action, change.object_name, change.diff["source"]) == ("create", "team_a_new", "trips")


def test_references_stay_inside_the_project(client, make_user, views, alpha, beta):
    client.force_login(make_user("root", is_superuser=True, is_staff=True))
    fv = views["team_a_trips"]
    beta_source = DataSource.objects.get(project=beta)
    response = edit(client, fv, source=str(beta_source.pk))
    assert response.status_code == 200
    assert "'trips' belongs to project 'beta'" in form_errors(response)
    fv.refresh_from_db()
    assert fv.source.project_id == alpha.pk


def test_projects_can_be_created_by_superusers_only(client, staff, alpha):
    grant(alpha, types=["project"], actions=["CRUD"])
    client.force_login(staff)
    assert client.get(url(Project, "add")).status_code == 403
    response = client.get(url(Project, "changelist"))
    assert listed(response) == {"alpha"}


def test_registry_changes_show_only_describable_objects(client, staff, views, alpha):
    grant(alpha, types=["feature_view"], name_patterns=["team_a_.*"], actions=["DESCRIBE"])
    for name in ("team_a_trips", "team_b_trips", "team_a_gone"):
        RegistryChange.objects.create(
            project=alpha, project_name="alpha", object_type="feature_view", object_name=name, action="create"
        )
    client.force_login(staff)
    response = client.get(url(RegistryChange, "changelist"))
    assert [c.object_name for c in response.context["cl"].result_list] == ["team_a_trips"]
    hidden = RegistryChange.objects.get(object_name="team_b_trips")
    assert client.get(url(RegistryChange, "change", hidden.pk)).status_code == 302
    shown = RegistryChange.objects.get(object_name="team_a_trips")
    page = client.get(url(RegistryChange, "change", shown.pk))
    assert page.status_code == 200 and not page.context["has_change_permission"]
    assert client.post(url(RegistryChange, "delete", shown.pk), {"post": "yes"}).status_code == 403


def test_changelist_queries_do_not_grow_with_rows(client, staff, alpha):
    grant(alpha, types=["feature_view"], name_patterns=["team_a_.*"], actions=["DESCRIBE"])
    source = DataSource.objects.create(project=alpha, name="trips", kind="file")
    client.force_login(staff)

    def count_queries() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert client.get(url(FeatureView, "changelist")).status_code == 200
        return len(queries)

    FeatureView.objects.bulk_create(FeatureView(project=alpha, name=f"team_a_{i}", source=source) for i in range(2))
    few = count_queries()
    FeatureView.objects.bulk_create(FeatureView(project=alpha, name=f"team_a_{i}", source=source) for i in range(2, 12))
    assert count_queries() == few


# -- the Permission form ------------------------------------------------------------------
def permission_form(alpha, **overrides) -> PermissionForm:
    data = {
        "project": alpha.pk,
        "name": "readers",
        "tags": "{}",
        "types": ["feature_view"],
        "name_patterns": "team_a_.*\n\n driver ",
        "required_tags": "team=a\ntier = gold",
        "actions": ["DESCRIBE", "READ_ONLINE"],
        "roles": "reader, analyst\nreader",
        "groups": "",
    }
    data.update(overrides)
    return PermissionForm(data)


def test_permission_form_turns_lines_into_lists(alpha):
    form = permission_form(alpha)
    assert form.is_valid(), form.errors
    perm = form.save()
    assert perm.name_patterns == ["team_a_.*", "driver"]
    assert perm.required_tags == {"team": "a", "tier": "gold"}
    assert perm.roles == ["reader", "analyst"] and perm.groups == []
    assert perm.actions == ["DESCRIBE", "READ_ONLINE"] and perm.types == ["feature_view"]

    shown = PermissionForm(instance=perm)
    assert shown["name_patterns"].value() == "team_a_.*\ndriver"
    assert shown["required_tags"].value() == "team=a\ntier=gold"
    # Re-submitting what is shown changes nothing (the audit diff stays empty).
    resubmitted = permission_form(alpha, name_patterns="team_a_.*\ndriver", roles="reader, analyst")
    changed = PermissionForm(resubmitted.data, instance=perm).changed_data
    assert not set(changed) & {"types", "name_patterns", "required_tags", "actions", "roles", "groups"}


def test_permission_form_names_a_bad_regex(alpha):
    form = permission_form(alpha, name_patterns="team_a_.*\nteam_(b\n[x")
    assert not form.is_valid()
    errors = " ".join(form.errors["name_patterns"])
    assert "'team_(b'" in errors and "'[x'" in errors and "team_a_" not in errors


def test_permission_form_offers_known_actions_only(alpha):
    for bad in (["READ"], ["describe"], ["EXECUTE"]):
        form = permission_form(alpha, actions=bad)
        assert not form.is_valid() and "actions" in form.errors, bad
    assert "actions" in permission_form(alpha, actions=[]).errors
    assert "types" in permission_form(alpha, types=["featureview"]).errors


def test_permission_form_needs_a_role_or_a_group(alpha):
    form = permission_form(alpha, roles=" , \n", groups="")
    assert not form.is_valid()
    assert "at least one role or group" in " ".join(form.non_field_errors())
    assert permission_form(alpha, roles="", groups="ml").is_valid()


def test_permission_form_rejects_malformed_tags(alpha):
    assert "expected key=value" in " ".join(permission_form(alpha, required_tags="team").errors["required_tags"])
    assert "given twice" in " ".join(permission_form(alpha, required_tags="a=1\na=2").errors["required_tags"])


def test_permission_admin_creates_through_the_gate(client, staff, alpha, beta):
    grant(alpha, types=["permission"], name_patterns=["team_a_.*"], actions=["CREATE", "DESCRIBE"])
    client.force_login(staff)
    data = {
        "project": alpha.pk,
        "tags": "{}",
        "types": ["feature_view"],
        "actions": ["DESCRIBE"],
        "roles": "team-a",
    }
    refused = client.post(url(Permission, "add"), {**data, "name": "everything"})
    assert "Permission denied: CREATE on permission 'everything'" in form_errors(refused)
    other_project = client.post(url(Permission, "add"), {**data, "name": "team_a_x", "project": beta.pk})
    assert "project" in other_project.context["adminform"].form.errors
    created = client.post(url(Permission, "add"), {**data, "name": "team_a_readers"})
    assert created.status_code == 302, form_errors(created)
    perm = Permission.objects.get(name="team_a_readers")
    assert (perm.types, perm.actions, perm.roles) == (["feature_view"], ["DESCRIBE"], ["team-a"])
    assert RegistryChange.objects.get().object_type == "permission"
