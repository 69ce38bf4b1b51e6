"""The permission matcher, through both faces of the gate: `authorize` (one object) and
`restrict` (a queryset). Every rule is checked through both, then a property test
proves the two agree on a whole fixture registry."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import AnonymousUser
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from access.actions import ALL_ACTIONS, Action
from access.models import Permission
from access.policy import AccessDenied, authorize, has_any, is_allowed, restrict
from access.principals import forget_principal
from catalog.models import (
    DataSource,
    Entity,
    FeatureService,
    FeatureView,
    Field,
    OnDemandFeatureView,
    Project,
    SavedDataset,
)

pytestmark = pytest.mark.django_db

REGISTRY_MODELS = [
    Project,
    Entity,
    DataSource,
    FeatureView,
    OnDemandFeatureView,
    FeatureService,
    SavedDataset,
    Permission,
]


@pytest.fixture(autouse=True)
def fast_hasher(settings):
    """Users are made by the dozen here; PBKDF2 would dominate the run time."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


# -- helpers ------------------------------------------------------------------------------
def grant(project: Project, name: str = "p", **spec) -> Permission:
    """A permission; DESCRIBE for role `reader` unless told otherwise."""
    spec.setdefault("actions", ["DESCRIBE"])
    if "groups" not in spec:
        spec.setdefault("roles", ["reader"])
    return Permission.objects.create(project=project, name=name, **spec)


def view(project: Project, name: str, **tags) -> FeatureView:
    source, _ = DataSource.objects.get_or_create(project=project, name="src", defaults={"kind": "file"})
    return FeatureView.objects.create(project=project, name=name, source=source, tags=tags)


def allowed(user, actions, obj) -> bool:
    """The gate's answer for `obj`, asserted identical through is_allowed, authorize and restrict."""
    if hasattr(user, "pk") and user.pk:
        forget_principal(user)  # permissions may have changed since the last check
    by_is_allowed = is_allowed(user, actions, obj)
    try:
        authorize(user, actions, obj)
        by_authorize = True
    except AccessDenied:
        by_authorize = False
    by_restrict = restrict(type(obj).objects.all(), user, actions).filter(pk=obj.pk).exists()
    assert by_is_allowed == by_authorize == by_restrict, (by_is_allowed, by_authorize, by_restrict)
    return by_is_allowed


@pytest.fixture
def alpha():
    return Project.objects.create(name="alpha")


@pytest.fixture
def beta():
    return Project.objects.create(name="beta")


@pytest.fixture
def reader(make_user):
    return make_user("reader", roles=("reader",))


# -- one rule at a time -------------------------------------------------------------------
def test_types_match_and_empty_types_mean_all(alpha, reader):
    fv = view(alpha, "driver")
    entity = Entity.objects.create(project=alpha, name="driver", join_keys=["driver_id"])
    perm = grant(alpha, types=["feature_view"])
    assert allowed(reader, Action.DESCRIBE, fv)
    assert not allowed(reader, Action.DESCRIBE, entity)

    perm.types = []
    perm.save()
    assert allowed(reader, Action.DESCRIBE, fv)
    assert allowed(reader, Action.DESCRIBE, entity)
    assert allowed(reader, Action.DESCRIBE, alpha)


def test_name_patterns_must_match_the_whole_name(alpha, reader):
    exact, longer, prefixed = view(alpha, "driver"), view(alpha, "driver_stats"), view(alpha, "my_driver")
    perm = grant(alpha, name_patterns=["driver"])
    assert allowed(reader, Action.DESCRIBE, exact)
    assert not allowed(reader, Action.DESCRIBE, longer)  # a partial (search) match is no match
    assert not allowed(reader, Action.DESCRIBE, prefixed)

    perm.name_patterns = ["nothing", "driver_.*"]  # any one pattern is enough
    perm.save()
    assert not allowed(reader, Action.DESCRIBE, exact)
    assert allowed(reader, Action.DESCRIBE, longer)


def test_required_tags_need_every_pair(alpha, reader):
    both = view(alpha, "both", team="a", tier="gold", extra="x")
    missing_key = view(alpha, "missing_key", team="a")
    wrong_value = view(alpha, "wrong_value", team="b", tier="gold")
    untagged = view(alpha, "untagged")
    grant(alpha, required_tags={"team": "a", "tier": "gold"})
    assert allowed(reader, Action.DESCRIBE, both)
    assert not allowed(reader, Action.DESCRIBE, missing_key)
    assert not allowed(reader, Action.DESCRIBE, wrong_value)
    assert not allowed(reader, Action.DESCRIBE, untagged)


def test_every_requested_action_must_be_listed_in_one_permission(alpha, reader):
    fv = view(alpha, "driver")
    grant(alpha, "describe", actions=["DESCRIBE"])
    assert allowed(reader, Action.DESCRIBE, fv)
    assert not allowed(reader, Action.UPDATE, fv)
    assert not allowed(reader, [Action.DESCRIBE, Action.UPDATE], fv)  # Feast's update check

    # DESCRIBE and UPDATE from two different permissions do not add up (Feast's matcher).
    grant(alpha, "update", actions=["UPDATE"])
    assert allowed(reader, Action.UPDATE, fv)
    assert not allowed(reader, [Action.DESCRIBE, Action.UPDATE], fv)

    grant(alpha, "both", actions=["DESCRIBE", "UPDATE"])
    assert allowed(reader, [Action.DESCRIBE, Action.UPDATE], fv)


def test_one_granting_permission_among_several_is_enough(alpha, make_user):
    fv = view(alpha, "driver")
    user = make_user("bob", roles=("reader",))
    grant(alpha, "for-others", roles=["writer"])
    assert not allowed(user, Action.DESCRIBE, fv)
    grant(alpha, "for-readers", roles=["reader"])
    assert allowed(user, Action.DESCRIBE, fv)


def test_wrong_role_is_denied_and_role_names_are_case_sensitive(alpha, make_user):
    fv = view(alpha, "driver")
    grant(alpha, roles=["Reader"])
    assert not allowed(make_user("lower", roles=("reader",)), Action.DESCRIBE, fv)
    assert not allowed(make_user("other", roles=("writer",)), Action.DESCRIBE, fv)
    assert allowed(make_user("exact", roles=("Reader",)), Action.DESCRIBE, fv)


def test_group_policy_grants(alpha, make_user):
    fv = view(alpha, "driver")
    grant(alpha, groups=["ml-team"])
    assert allowed(make_user("member", roles=("ml-team",)), Action.DESCRIBE, fv)
    assert not allowed(make_user("outsider", roles=("ops",)), Action.DESCRIBE, fv)


def test_no_permission_at_all_denies(alpha, reader):
    fv = view(alpha, "driver")
    assert Permission.objects.count() == 0
    for action in ALL_ACTIONS:
        assert not allowed(reader, action, fv)
    assert not allowed(reader, Action.DESCRIBE, alpha)
    assert not has_any(reader, Action.DESCRIBE, "feature_view")


def test_superuser_passes_without_permissions(alpha, make_user):
    fv = view(alpha, "driver")
    root = make_user("root", is_superuser=True)
    for action in ALL_ACTIONS:
        assert allowed(root, action, fv)
    assert restrict(FeatureView.objects.all(), root).count() == 1
    assert has_any(root, Action.DELETE, "permission")


def test_anonymous_and_inactive_users_are_denied(alpha, make_user):
    fv = view(alpha, "driver")
    grant(alpha, actions=ALL_ACTIONS)
    inactive = make_user("gone", roles=("reader",), is_active=False)
    inactive_root = make_user("gone_root", is_superuser=True, is_active=False)
    for user in (AnonymousUser(), inactive, inactive_root, None):
        assert not allowed(user, Action.DESCRIBE, fv)
        assert not has_any(user, Action.DESCRIBE, "feature_view")
    with pytest.raises(AccessDenied):
        authorize(AnonymousUser(), Action.DESCRIBE, fv)


def test_a_permission_never_grants_in_another_project(alpha, beta, reader):
    """feast#6784: a shared registry enforced only its home project's permissions."""
    in_alpha, in_beta = view(alpha, "driver"), view(beta, "driver")
    grant(alpha, types=["feature_view"], name_patterns=[".*"])
    assert allowed(reader, Action.DESCRIBE, in_alpha)
    assert not allowed(reader, Action.DESCRIBE, in_beta)
    assert not allowed(reader, Action.DESCRIBE, beta)
    assert has_any(reader, Action.DESCRIBE, "feature_view", project_id=alpha.pk)
    assert not has_any(reader, Action.DESCRIBE, "feature_view", project_id=beta.pk)


def test_shorthands_cover_their_actions(alpha, reader):
    fv = view(alpha, "driver")
    # Saved without full_clean: save() must still store READ as its two actions.
    perm = grant(alpha, types=["FeatureView"], actions=["read"])
    assert perm.types == ["feature_view"]
    assert perm.actions == ["READ_ONLINE", "READ_OFFLINE"]
    assert allowed(reader, Action.READ_ONLINE, fv)
    assert allowed(reader, Action.READ_OFFLINE, fv)
    assert allowed(reader, [Action.READ_ONLINE, Action.READ_OFFLINE], fv)
    assert not allowed(reader, Action.WRITE_ONLINE, fv)
    assert not allowed(reader, Action.DESCRIBE, fv)

    perm.actions = ["CRUD"]
    perm.save()
    assert allowed(reader, [Action.CREATE, Action.DESCRIBE, Action.UPDATE, Action.DELETE], fv)
    assert not allowed(reader, Action.READ_ONLINE, fv)


def test_fields_are_restricted_through_their_view(alpha, reader):
    seen, hidden = view(alpha, "seen"), view(alpha, "hidden")
    odfv_seen = OnDemandFeatureView.objects.create(project=alpha, name="seen_odfv")
    odfv_hidden = OnDemandFeatureView.objects.create(project=alpha, name="hidden_odfv")
    for parent in (seen, hidden):
        Field.objects.create(feature_view=parent, name="trips", dtype="Int64")
    for parent in (odfv_seen, odfv_hidden):
        Field.objects.create(on_demand_feature_view=parent, name="ratio", dtype="Float64")
    grant(alpha, name_patterns=["seen.*"])
    visible = restrict(Field.objects.all(), reader, Action.DESCRIBE)
    assert {(f.view_name, f.name) for f in visible} == {("seen", "trips"), ("seen_odfv", "ratio")}
    assert restrict(Field.objects.all(), reader, Action.UPDATE).count() == 0


def test_projects_are_guarded_by_their_own_permissions(alpha, beta, reader):
    grant(alpha, "views-only", types=["feature_view"])
    assert not allowed(reader, Action.DESCRIBE, alpha)  # wrong type
    grant(alpha, "project", types=["project"], name_patterns=["alpha"])
    assert allowed(reader, Action.DESCRIBE, alpha)
    assert not allowed(reader, Action.DESCRIBE, beta)
    grant(alpha, "beta-by-name", types=["project"], name_patterns=["beta"])
    assert not allowed(reader, Action.DESCRIBE, beta)  # a permission of alpha says nothing about beta


def test_unsaved_objects_are_judged_for_create(alpha, reader):
    grant(alpha, types=["feature_view"], name_patterns=["team_a_.*"], actions=["CREATE"])
    source = DataSource.objects.create(project=alpha, name="src", kind="file")
    assert is_allowed(reader, Action.CREATE, FeatureView(project=alpha, name="team_a_new", source=source))
    assert not is_allowed(reader, Action.CREATE, FeatureView(project=alpha, name="team_b_new", source=source))
    assert not is_allowed(reader, Action.CREATE, Project(name="fresh"))


def test_denial_names_the_object_and_the_actions(alpha, reader):
    fv = view(alpha, "driver")
    with pytest.raises(AccessDenied) as denied:
        authorize(reader, [Action.UPDATE, Action.DESCRIBE], fv)
    assert str(denied.value) == "Permission denied: DESCRIBE, UPDATE on feature_view 'driver' in project 'alpha'"
    assert denied.value.actions == ["DESCRIBE", "UPDATE"]


def test_restrict_keeps_the_callers_filters(alpha, reader):
    view(alpha, "a_one", team="a")
    view(alpha, "a_two", team="a")
    view(alpha, "b_one", team="b")
    grant(alpha, required_tags={"team": "a"})
    narrowed = restrict(FeatureView.objects.filter(name__endswith="_one"), reader, Action.DESCRIBE)
    assert [fv.name for fv in narrowed] == ["a_one"]


# -- authorize and restrict agree ----------------------------------------------------------
ACTION_SETS = [[a] for a in ALL_ACTIONS] + [
    [Action.DESCRIBE, Action.UPDATE],
    [Action.READ_ONLINE, Action.READ_OFFLINE],
]


@pytest.fixture
def registry(alpha, beta):
    """Two projects, every type, assorted names and tags."""
    for project in (alpha, beta):
        src_a = DataSource.objects.create(project=project, name="drivers_src", kind="file", tags={"team": "a"})
        DataSource.objects.create(project=project, name="orders_src", kind="postgres", tags={"team": "b"})
        DataSource.objects.create(project=project, name="push_src", kind="push", batch_source=src_a)
        driver = Entity.objects.create(project=project, name="driver", join_keys=["driver_id"])
        Entity.objects.create(project=project, name="order", join_keys=["order_id"], tags={"team": "b"})
        views = {}
        for name, tags in [
            ("team_a_stats", {"team": "a", "tier": "gold"}),
            ("team_a_raw", {"team": "a"}),
            ("team_b_stats", {"team": "b"}),
            ("driver", {}),
            ("driver_stats", {"tier": "gold"}),
        ]:
            views[name] = FeatureView.objects.create(
                project=project, name=name, source=src_a, tags=tags, ttl=timedelta(days=1)
            )
            views[name].entities.add(driver)
            Field.objects.create(feature_view=views[name], name="trips", dtype="Int64")
        for name, tags in [("team_a_calc", {"team": "a"}), ("other_calc", {})]:
            odfv = OnDemandFeatureView.objects.create(project=project, name=name, tags=tags)
            Field.objects.create(on_demand_feature_view=odfv, name="ratio", dtype="Float64")
        service = FeatureService.objects.create(project=project, name="svc_a", tags={"team": "a"})
        FeatureService.objects.create(project=project, name="svc_b")
        SavedDataset.objects.create(project=project, name="ds_a", tags={"team": "a"}, feature_service=service)
        SavedDataset.objects.create(project=project, name="other_ds")
    specs = [
        (alpha, "team-a-views", {"types": ["feature_view", "on_demand_feature_view"], "name_patterns": ["team_a_.*"],
                                 "actions": ["CRUD"], "roles": ["team-a"]}),
        (alpha, "tagged-a", {"required_tags": {"team": "a"}, "actions": ["DESCRIBE", "READ_ONLINE"],
                             "roles": ["reader"]}),
        (alpha, "catalog", {"types": ["project", "entity", "data_source"], "actions": ["DESCRIBE"],
                            "roles": ["reader", "team-a"]}),
        (beta, "driver-exact", {"types": ["feature_view"], "name_patterns": ["driver"],
                                "actions": ["DESCRIBE", "READ_OFFLINE"], "groups": ["ml"]}),
        (beta, "gold-stats", {"name_patterns": [".*_stats"], "required_tags": {"tier": "gold"}, "actions": ["ALL"],
                              "roles": ["admin-b"]}),
        (beta, "services", {"types": ["permission", "feature_service"], "actions": ["DESCRIBE", "UPDATE", "DELETE"],
                            "roles": ["Reader"]}),
        (alpha, "datasets", {"types": ["saved_dataset"], "name_patterns": ["ds_.*"], "actions": ["DESCRIBE"],
                             "groups": ["ml"]}),
    ]  # fmt: skip
    for project, name, spec in specs:
        Permission.objects.create(project=project, name=name, **spec)


@pytest.fixture
def users(make_user):
    return [
        make_user("team_a", roles=("team-a",)),
        make_user("reader", roles=("reader",)),
        make_user("ml", roles=("ml",)),
        make_user("admin_b", roles=("admin-b",)),
        make_user("mixed", roles=("reader", "ml", "Reader")),
        make_user("nobody"),
        make_user("root", is_superuser=True),
        make_user("inactive", roles=("team-a",), is_active=False),
        AnonymousUser(),
    ]


def assert_agreement(users, action_sets) -> int:
    """For every user, model and action set: restrict() == the objects is_allowed() admits."""
    objects = {model: list(model.objects.all()) for model in REGISTRY_MODELS}
    fields = list(Field.objects.select_related("feature_view", "on_demand_feature_view"))
    checks = 0
    for user in users:
        if getattr(user, "pk", None):
            forget_principal(user)
        for actions in action_sets:
            for model, objs in objects.items():
                expected = {o.pk for o in objs if is_allowed(user, actions, o)}
                assert set(restrict(model.objects.all(), user, actions).values_list("pk", flat=True)) == expected, (
                    user,
                    model.__name__,
                    actions,
                )
                checks += 1
            expected_fields = {f.pk for f in fields if is_allowed(user, actions, f.view)}
            assert set(restrict(Field.objects.all(), user, actions).values_list("pk", flat=True)) == expected_fields
    return checks


def test_authorize_and_restrict_agree_on_the_fixture_registry(registry, users):
    assert assert_agreement(users, ACTION_SETS) == len(users) * len(ACTION_SETS) * len(REGISTRY_MODELS)
    # The fixture is not trivially all-or-nothing: spot-check some answers.
    team_a, reader, ml, admin_b, mixed, nobody, root = users[:7]
    names = lambda user, model, action: {o.name for o in restrict(model.objects.all(), user, action)}  # noqa: E731
    assert names(team_a, FeatureView, Action.UPDATE) == {"team_a_stats", "team_a_raw"}
    assert names(reader, FeatureView, Action.DESCRIBE) == {"team_a_stats", "team_a_raw"}
    assert names(reader, DataSource, Action.DESCRIBE) == {"drivers_src", "orders_src", "push_src"}
    assert names(ml, FeatureView, Action.READ_OFFLINE) == {"driver"}
    assert names(admin_b, FeatureView, Action.DELETE) == {"team_a_stats", "driver_stats"}
    assert names(mixed, FeatureService, Action.DELETE) == {"svc_a", "svc_b"}
    assert names(nobody, Project, Action.DESCRIBE) == set()
    assert len(names(root, FeatureView, Action.DELETE)) == 5  # same names in both projects


name_patterns = st.lists(st.sampled_from(["team_a_.*", "driver", ".*_stats", "svc_.*", ".*", "alpha"]), max_size=2)
required_tags = st.dictionaries(st.sampled_from(["team", "tier"]), st.sampled_from(["a", "b", "gold"]), max_size=2)
permission_specs = st.lists(
    st.fixed_dictionaries(
        {
            "project": st.sampled_from(["alpha", "beta"]),
            "types": st.lists(st.sampled_from([m.resource_type for m in REGISTRY_MODELS]), max_size=3, unique=True),
            "name_patterns": name_patterns,
            "required_tags": required_tags,
            "actions": st.lists(st.sampled_from(ALL_ACTIONS), min_size=1, max_size=4, unique=True),
            "roles": st.lists(st.sampled_from(["team-a", "reader", "admin-b"]), max_size=2, unique=True),
            "groups": st.lists(st.sampled_from(["ml"]), max_size=1),
        }
    ),
    min_size=1,
    max_size=5,
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(specs=permission_specs, action_sets=st.lists(st.sampled_from(ACTION_SETS), min_size=1, max_size=2))
def test_authorize_and_restrict_agree_for_generated_permissions(registry, users, specs, action_sets):
    Permission.objects.all().delete()
    projects = {p.name: p for p in Project.objects.all()}
    for i, spec in enumerate(specs):
        spec = dict(spec)
        if not spec["roles"] and not spec["groups"]:
            spec["roles"] = ["reader"]
        Permission.objects.create(name=f"gen{i}", **{**spec, "project": projects[spec["project"]]})
    assert_agreement(users[:6], action_sets)
