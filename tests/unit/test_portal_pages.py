"""The portal's pages: gated (anonymous -> login; no roles -> nothing; a scoped role ->
exactly its objects, on lists, counts, details and lineage), filters and sorting,
the feature view page's curl example, YAML, history and permissions panel, and flat
query counts as the registry grows."""

import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from catalog.models import Field, RegistryChange
from tests.unit import portal_data
from tests.unit.portal_data import HIDDEN_FROM_TEAM_A, view

pytestmark = pytest.mark.django_db

LISTS = [
    "/features/",
    "/feature-views/",
    "/on-demand-feature-views/",
    "/feature-services/",
    "/entities/",
    "/data-sources/",
    "/saved-datasets/",
    "/permissions/",
]
DETAILS = [
    "/projects/p1/",
    "/projects/p1/lineage/",
    "/projects/p1/entities/rider_entity/",
    "/projects/p1/data-sources/src_alpha/",
    "/projects/p1/data-sources/push_alpha/",
    "/projects/p1/data-sources/req_extra/",
    "/projects/p1/feature-views/team_a_stats/",
    "/projects/p1/feature-views/team_b_stats/",
    "/projects/p1/on-demand-feature-views/team_a_plus/",
    "/projects/p1/feature-services/svc_alpha/",
    "/projects/p1/saved-datasets/ds_alpha/",
    "/projects/p1/saved-datasets/ds_beta/",
    "/projects/p1/permissions/all-describe/",
    "/projects/p1/feature-views/team_a_stats/features/f1/",
    "/projects/p1/on-demand-feature-views/team_a_plus/features/g/",
]


@pytest.fixture
def registry(tmp_path):
    return portal_data.build(tmp_path)


@pytest.fixture
def login(make_user):
    def _login(username: str = "root", roles: tuple[str, ...] = (), **extra) -> Client:
        client = Client()
        client.force_login(make_user(username, roles=roles, **extra))
        return client

    return _login


def names_in(response) -> list[str]:
    return [getattr(o, "name", None) for o in response.context["objects"]]


def text(response) -> str:
    return response.content.decode()


# -- the gate ----------------------------------------------------------------------------------


def test_anonymous_is_sent_to_login_everywhere(registry, client):
    for url in ["/", *LISTS, *DETAILS]:
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith("/accounts/login/"), url


def test_every_page_renders_for_a_superuser(registry, login):
    root = login("root", is_superuser=True, is_staff=True)
    for url in ["/", *LISTS, *DETAILS]:
        response = root.get(url)
        assert response.status_code == 200, url
    assert names_in(root.get("/feature-views/")) == ["team_a_fresh", "team_a_other", "team_a_stats", "team_b_stats"]


def test_a_user_without_roles_sees_nothing(registry, login):
    nobody = login("nobody")
    for url in LISTS:
        response = nobody.get(url)
        assert response.status_code == 200, url
        assert list(response.context["objects"]) == [], url
        assert "you may not hold a role" in text(response)
    for url in DETAILS:
        assert nobody.get(url).status_code == 404, url
    home = text(nobody.get("/"))
    for name in ["p1", "team_a_stats", "rider_entity", "svc_alpha"]:
        assert name not in home


def test_a_scoped_role_sees_exactly_its_objects(registry, login):
    ana = login("ana", roles=("team-a",))
    assert names_in(ana.get("/feature-views/")) == ["team_a_fresh", "team_a_stats"]
    features = ana.get("/features/")
    assert sorted((f.parent_name, f.name) for f in features.context["objects"]) == [
        ("team_a_fresh", "f1"),
        ("team_a_fresh", "f2"),
        ("team_a_stats", "f1"),
        ("team_a_stats", "f2"),
    ]
    for url in LISTS:
        if url not in ("/features/", "/feature-views/"):
            assert list(ana.get(url).context["objects"]) == [], url
    for url in LISTS:
        body = text(ana.get(url))
        for hidden in HIDDEN_FROM_TEAM_A:
            assert hidden not in body, (url, hidden)
    # filter choices never name hidden objects either
    assert "rider_entity" not in text(ana.get("/feature-views/"))


def test_scoped_counts_on_home_and_project(registry, login):
    ana = login("ana", roles=("team-a",))
    home = ana.get("/")
    cards = {card.project.name: dict(card.counts) for card in home.context["cards"]}
    assert cards == {
        "p1": {
            "Entities": 0,
            "Data sources": 0,
            "Feature views": 2,
            "On-demand views": 0,
            "Feature services": 0,
            "Permissions": 0,
        }
    }
    project = ana.get("/projects/p1/")
    assert project.status_code == 200
    counts = {page.resource_type: n for page, n in project.context["counts"]}
    assert counts["feature_view"] == 2 and counts["on_demand_feature_view"] == 0
    assert project.context["n_features"] == 4
    assert "Project one" not in text(project), "the project's documentation needs DESCRIBE on the project"
    assert ana.get("/projects/p2/").status_code == 404


def test_scoped_details_show_only_visible_relations(registry, login):
    ana = login("ana", roles=("team-a",))
    page = ana.get("/projects/p1/feature-views/team_a_stats/")
    assert page.status_code == 200
    body = text(page)
    for hidden in HIDDEN_FROM_TEAM_A:
        assert hidden not in body, hidden
    assert "(hidden)" in body  # the source and entity references in the YAML and the summary
    assert ana.get("/projects/p1/feature-views/team_b_stats/").status_code == 404
    assert ana.get("/projects/p1/feature-views/team_a_stats/features/f1/").status_code == 200
    assert ana.get("/projects/p1/on-demand-feature-views/team_a_plus/").status_code == 404, "type-scoped"
    assert ana.get("/projects/p2/feature-views/team_a_other/").status_code == 404, "project-scoped"


def test_scoped_lineage_page(registry, login):
    ana = login("ana", roles=("team-a",))
    page = ana.get("/projects/p1/lineage/")
    assert page.status_code == 200
    assert page.context["n_nodes"] == 2 and page.context["lineage"]["relationships"] == []
    body = text(page)
    for hidden in HIDDEN_FROM_TEAM_A:
        assert hidden not in body, hidden
    assert "team_a_stats" in body
    reader = login("reader", roles=("reader",))
    full = reader.get("/projects/p1/lineage/")
    assert len(full.context["lineage"]["relationships"]) == 16
    assert 'id="lineage-figure"' in text(full)


# -- filters, sorting, pagination ----------------------------------------------------------------


def test_filters(registry, login):
    root = login("root", is_superuser=True)
    assert names_in(root.get("/feature-views/?project=p2")) == ["team_a_other"]
    assert names_in(root.get("/feature-views/?tags=team:b")) == ["team_b_stats"]
    assert names_in(root.get("/feature-views/?tags=team:a&project=p1")) == ["team_a_fresh", "team_a_stats"]
    assert names_in(root.get("/feature-views/?owner=bob@example.com")) == ["team_b_stats"]
    assert names_in(root.get("/feature-views/?entity=rider_entity")) == ["team_a_fresh", "team_a_stats", "team_b_stats"]
    assert names_in(root.get("/feature-views/?kind=push")) == ["team_a_fresh"]
    assert names_in(root.get("/feature-views/?store=offline")) == ["team_a_fresh"]
    assert "team_b_stats" not in names_in(root.get("/feature-views/?store=online"))
    assert names_in(root.get("/feature-views/?q=B_ST")) == ["team_b_stats"]
    assert names_in(root.get("/data-sources/?kind=request")) == ["req_extra"]
    assert names_in(root.get("/feature-services/?tags=team:a")) == ["svc_alpha"]
    features = root.get("/features/?view_kind=on_demand")
    assert sorted(f.name for f in features.context["objects"]) == ["g", "h"]
    assert [f.name for f in root.get("/features/?q=team_b_plus").context["objects"]] == ["h"]
    bad = root.get("/feature-views/?tags=oops")
    assert "ignored: oops" in text(bad)
    empty = root.get("/feature-views/?q=zzz")
    assert "No feature views match these filters" in text(empty)


def test_sorting(registry, login):
    root = login("root", is_superuser=True)
    assert names_in(root.get("/feature-views/?sort=-name")) == [
        "team_b_stats",
        "team_a_stats",
        "team_a_other",
        "team_a_fresh",
    ]
    assert names_in(root.get("/feature-views/?sort=project&project=p1"))[0] == "team_a_fresh"
    page = text(root.get("/feature-views/?sort=name"))
    assert 'aria-sort="ascending"' in page and "sort=-name" in page, "clicking again reverses"
    assert names_in(root.get("/feature-views/?sort=bogus"))[0] == "team_a_fresh", "unknown sorts fall back"


def test_pagination_keeps_filters(registry, login):
    for i in range(30):
        view(registry["p1"], f"bulk_{i:02d}", registry["src_b"], tags={"batch": "yes"})
    root = login("root", is_superuser=True)
    first = root.get("/feature-views/?tags=batch:yes&sort=name")
    assert len(first.context["objects"]) == 25 and first.context["page_obj"].paginator.count == 30
    links = re.findall(r'href="(\?[^"]*page=2[^"]*)"', text(first))
    assert links and all("tags=batch%3Ayes" in link and "sort=name" in link for link in links)
    second = root.get("/feature-views/" + links[0].replace("&amp;", "&"))
    assert names_in(second) == [f"bulk_{i:02d}" for i in range(25, 30)]


def test_htmx_requests_get_the_results_only(registry, login):
    root = login("root", is_superuser=True)
    response = root.get("/feature-views/?q=team_b", HTTP_HX_REQUEST="true", HTTP_HX_TARGET="results")
    body = text(response)
    assert "team_b_stats" in body and "<html" not in body and 'class="filters"' not in body
    assert "<html" in text(root.get("/feature-views/?q=team_b"))


def test_empty_states(db, login):
    root = login("root", is_superuser=True)
    body = text(root.get("/feature-views/"))
    assert "No feature views yet — apply a feature repo: python manage.py apply examples/driver_stats" in body


# -- the feature view page ---------------------------------------------------------------------


def test_feature_view_page_has_curl_yaml_history_and_permissions(registry, login):
    reader = login("reader", roles=("reader",))
    page = reader.get("/projects/p1/feature-views/team_a_stats/")
    body = text(page)
    curl = page.context["curl"].command
    assert "/get-online-features" in curl and "Bearer $TOKEN" in curl
    assert '"features": ["team_a_stats:f1", "team_a_stats:f2"]' in curl
    assert '"entities": {"rider_id": [4242]}' in curl, "a real key value read from the source's Parquet file"
    assert "API tokens" in body
    yaml_text = page.context["definition_yaml"]
    assert yaml_text.startswith("feature_views:\n  - name: team_a_stats\n")
    assert "ttl: 1d" in yaml_text and "source: src_alpha" in yaml_text and "entities: [rider_entity]" in yaml_text
    history = page.context["history"]
    assert [h.action for h in history] == ["update", "create"]
    assert ("ttl", "1h", "1d") in history[0].fields
    assert ("description", "Old words", "Team A's stats") in history[0].fields
    assert "src_beta" in body and "Old words" in body
    rules = [r["permission"].name for r in page.context["permissions_panel"]["rules"]]
    assert rules == ["all-describe", "team-a-describe"]
    assert page.context["permissions_panel"]["yours"] == ["DESCRIBE"]
    other = reader.get("/projects/p1/feature-views/team_b_stats/")
    assert [r["permission"].name for r in other.context["permissions_panel"]["rules"]] == ["all-describe"]
    assert "Edit in admin" not in body, "admin links are for staff"
    assert page.context["freshness"].stale
    assert page.context["intervals"][0].end.year == 2024
    assert "Last job:</span> none yet" in body


def test_curl_falls_back_to_a_placeholder(registry, login):
    page = login("root", is_superuser=True).get("/projects/p1/feature-views/team_b_stats/")
    assert '"rider_id": [1001]' in page.context["curl"].command
    assert page.context["curl"].placeholders == ["rider_id"]


def test_history_redacts_hidden_references(registry, login):
    ana = login("ana", roles=("team-a",))
    page = ana.get("/projects/p1/feature-views/team_a_stats/")
    update = page.context["history"][0]
    assert ("source", "(hidden)", "(hidden)") in update.fields
    assert page.context["permissions_panel"]["rules"] == [], "team-a may not see the permissions themselves"
    assert page.context["permissions_panel"]["yours"] == ["DESCRIBE"]


def test_staff_get_admin_links(registry, login):
    staff = login("root", is_superuser=True, is_staff=True)
    body = text(staff.get("/projects/p1/feature-views/team_a_stats/"))
    assert "/admin/catalog/featureview/" in body and "/admin/access/permission/" in body


def test_other_detail_pages(registry, login):
    root = login("root", is_superuser=True)
    entity = root.get("/projects/p1/entities/rider_entity/")
    assert [v.name for v in entity.context["views"]] == ["team_a_fresh", "team_a_stats", "team_b_stats"]
    source = root.get("/projects/p1/data-sources/src_alpha/")
    assert [v.name for v in source.context["views"]] == ["team_a_stats"]
    assert [v.name for v in source.context["views_through_push"]] == ["team_a_fresh"]
    assert [s.name for s in source.context["push_sources"]] == ["push_alpha"]
    odfv = root.get("/projects/p1/on-demand-feature-views/team_a_plus/")
    assert "f1 + bonus" in text(odfv) and '"bonus": [1001]' in odfv.context["curl"].command
    service = root.get("/projects/p1/feature-services/svc_alpha/")
    rows = service.context["rows"]
    assert [(r["view"].name, [f.name for f in r["fields"]], r["subset"]) for r in rows] == [
        ("team_a_stats", ["f1"], True),
        ("team_a_plus", ["g"], False),
    ]
    assert '"feature_service": "svc_alpha"' in service.context["curl"].command
    dataset = root.get("/projects/p1/saved-datasets/ds_beta/")
    assert [f["ref"] for f in dataset.context["features"]] == ["team_b_stats:f1", "team_a_stats:f2"]
    permission = root.get("/projects/p1/permissions/team-a-describe/")
    applies = {g["page"].resource_type: [o.name for o in g["objects"]] for g in permission.context["applies"]}
    assert applies == {"feature_view": ["team_a_fresh", "team_a_stats"]}
    feature = root.get("/projects/p1/feature-views/team_a_stats/features/f1/")
    assert [p.feature_service.name for p in feature.context["services"]] == ["svc_alpha"]
    assert [v.name for v in feature.context["readers"]] == ["team_a_plus"]
    f2 = root.get("/projects/p1/feature-views/team_a_stats/features/f2/")
    assert f2.context["services"] == [] and f2.context["readers"] == []
    output = root.get("/projects/p1/on-demand-feature-views/team_a_plus/features/g/")
    assert output.context["expression"] == "f1 + bonus"


def test_permission_page_lists_only_visible_matches(registry, login):
    from access.models import Permission

    Permission.objects.create(
        project=registry["p1"], name="see-perms", types=["permission"], actions=["DESCRIBE"], roles=["auditor"]
    )
    auditor = login("aud", roles=("auditor",))
    page = auditor.get("/projects/p1/permissions/all-describe/")
    assert page.status_code == 200
    applies = {g["page"].resource_type: [o.name for o in g["objects"]] for g in page.context["applies"]}
    assert applies == {"permission": ["all-describe", "see-perms", "team-a-describe"]}
    assert "team_a_stats" not in text(page)


def test_feature_history_shows_schema_changes_of_that_feature(registry, login):
    RegistryChange.objects.create(
        project=registry["p1"],
        project_name="p1",
        object_type="feature_view",
        object_name="team_a_stats",
        action="update",
        diff={"schema": [[{"name": "f1", "dtype": "Float64"}], [{"name": "f1", "dtype": "Float32"}]]},
    )
    root = login("root", is_superuser=True)
    history = root.get("/projects/p1/feature-views/team_a_stats/features/f1/").context["history"]
    assert history[0].fields[0][0] == "schema" and "Float64" in history[0].fields[0][1]
    assert root.get("/projects/p1/feature-views/team_a_stats/features/f2/").context["history"] == [], (
        "a schema change of f1 is not f2's history"
    )


def test_home_lists_stale_online_views(registry, login):
    root = login("root", is_superuser=True)
    home = root.get("/")
    stale = {(s.project, s.name) for s in home.context["stale"]}
    assert ("p1", "team_a_stats") in stale, "its only interval ended in 2024, ttl 1d"
    assert ("p1", "team_a_fresh") in stale, "never materialized"
    assert ("p1", "team_b_stats") not in stale, "offline only"
    assert "never materialized" in text(home) and "ttl" in text(home)
    ana = login("ana", roles=("team-a",))
    assert {s.name for s in ana.get("/").context["stale"]} == {"team_a_stats", "team_a_fresh"}


def test_home_and_view_page_show_failed_jobs(registry, login):
    from materialization.models import MaterializationJob

    b = registry["b_stats"]
    interval = registry["a_stats"].materialization_intervals.first()
    MaterializationJob.objects.create(
        feature_view=b,
        project_name="p1",
        view_name=b.name,
        start=interval.start,
        end=interval.end,
        state="FAILED",
        error="source file missing",
    )
    root = login("root", is_superuser=True)
    failing = {s.name: s for s in root.get("/").context["stale"]}
    assert failing["team_b_stats"].failed and "failed" in failing["team_b_stats"].reason, "offline-only, but failing"
    page = root.get("/projects/p1/feature-views/team_b_stats/")
    assert page.context["last_job"].state == "FAILED" and "source file missing" in text(page)
    ana = login("ana", roles=("team-a",))
    assert "team_b_stats" not in {s.name for s in ana.get("/").context["stale"]}


def test_keyboard_and_accessibility_hooks(registry, login):
    root = login("root", is_superuser=True)
    body = text(root.get("/feature-views/"))
    assert "/static/larder.js" in body and "htmx-2.min.js" in body
    assert '<label for="filter-project">' in body and 'id="filter-project"' in body
    assert '<th scope="col"' in body
    assert 'aria-label="Catalog"' in body
    detail = text(root.get("/projects/p1/feature-views/team_a_stats/"))
    assert "vendor/plotly.min.js" in detail and 'aria-label="Copy the curl command"' in detail


# -- query counts ----------------------------------------------------------------------------------


PAGES = [
    *LISTS,
    "/",
    "/projects/p1/",
    "/projects/p1/lineage/",
    "/projects/p1/entities/rider_entity/",
    "/projects/p1/data-sources/src_alpha/",
    "/projects/p1/feature-views/team_a_stats/",
    "/projects/p1/on-demand-feature-views/team_a_plus/",
    "/projects/p1/feature-services/svc_alpha/",
    "/projects/p1/saved-datasets/ds_beta/",
    "/projects/p1/permissions/team-a-describe/",
    "/projects/p1/feature-views/team_a_stats/features/f1/",
]


def grow(registry, start: int, stop: int) -> None:
    """More views (with fields, the entity, an interval), and on-demand views and
    services around each, all visible to team-a and reader."""
    from catalog.models import FeatureService, FeatureViewProjection, MaterializationInterval, OnDemandFeatureView

    base = registry["a_stats"]
    for i in range(start, stop):
        fv = view(registry["p1"], f"team_a_grow_{i}", registry["src_a"], [registry["rider"]], tags={"team": "a"})
        MaterializationInterval.objects.create(
            feature_view=fv, start=base.created_at, end=base.created_at + timedelta(1)
        )
        odfv = OnDemandFeatureView.objects.create(
            project=registry["p1"], name=f"grow_plus_{i}", expressions={"x": "f1"}
        )
        odfv.sources.set([fv, base])
        Field.objects.create(on_demand_feature_view=odfv, name="x", dtype="Float64")
        service = FeatureService.objects.create(project=registry["p1"], name=f"grow_svc_{i}")
        FeatureViewProjection.objects.create(feature_service=service, feature_view=fv, position=0)
        FeatureViewProjection.objects.create(feature_service=service, feature_view=base, position=1)
        FeatureViewProjection.objects.create(feature_service=registry["svc_a"], feature_view=fv, position=2 + i)


def count_queries(client: Client, url: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200, url
    return len(captured.captured_queries)


@pytest.mark.parametrize("roles,superuser", [(("reader",), False), (("team-a", "reader"), False), ((), True)])
def test_query_counts_stay_flat(registry, login, roles, superuser, django_assert_max_num_queries):
    """Every list and detail page costs no more queries with 33 feature views (and 33
    services, on-demand views...) than with 3: an N+1 regression makes a count grow."""
    user = login("u", roles=roles, is_superuser=superuser)
    grow(registry, 0, 1)
    before = {url: count_queries(user, url) for url in PAGES}
    grow(registry, 1, 31)
    for url in PAGES:
        with django_assert_max_num_queries(before[url]):
            assert user.get(url).status_code == 200, url
