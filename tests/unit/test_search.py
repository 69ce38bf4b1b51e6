"""Search (catalog.search) on the SQLite fallback: ranking, facets, restriction, typos,
the search page and its htmx fragments, and /api/v1/search in Feast's shape.
The PostgreSQL backend is checked against the same expectations in
tests/integration/test_search_postgres.py."""

import pytest
from django.test import Client

from access.models import Permission
from catalog.models import DataSource, Entity, FeatureService, Project
from catalog.search import (
    DESCRIPTION,
    NAME_CONTAINS,
    NAME_EXACT,
    NAME_PREFIX,
    NAME_WORDS,
    TAGS,
    SearchParams,
    matched_tags,
    score,
    search,
    words,
)
from tests.unit.registry_data import make_view

pytestmark = pytest.mark.django_db


@pytest.fixture
def catalog():
    """Project `shop`: one object per ranking tier for the word "churn", and a hidden
    view `secret_churn` (with a feature) that the analyst role may not see; project
    `other` with one more churn view nobody but superusers sees."""
    shop = Project.objects.create(name="shop")
    other = Project.objects.create(name="other")
    source = DataSource.objects.create(
        project=shop, name="events", kind="file", path="e.parquet", tags={"topic": "churn"}, owner="data@x.org"
    )
    Entity.objects.create(project=shop, name="churn", join_keys=["customer_id"], owner="growth@x.org")
    make_view(shop, "churn_score_daily", source, owner="growth@x.org", tags={"team": "growth"})
    make_view(
        shop,
        "customer_profile",
        source,
        features=(("customer_churn", "Float32"), ("age", "Int64")),
        owner="growth@x.org",
        tags={"team": "growth"},
    )
    FeatureService.objects.create(project=shop, name="retention", description="Predicts churn of customers.")
    make_view(shop, "secret_churn", source, features=(("secret_feature", "Float32"),), owner="risk@x.org")
    make_view(other, "other_churn", DataSource.objects.create(project=other, name="s", kind="file", path="o"))
    Permission.objects.create(
        project=shop,
        name="analysts",
        types=["entity", "data_source", "feature_service"],
        actions=["DESCRIBE"],
        roles=["analyst"],
    )
    Permission.objects.create(
        project=shop,
        name="analysts-views",
        types=["feature_view"],
        name_patterns=["churn_.*", "customer_.*"],
        actions=["DESCRIBE"],
        roles=["analyst"],
    )
    return shop


@pytest.fixture
def admin(make_user):
    return make_user("root", is_superuser=True)


@pytest.fixture
def analyst(make_user):
    return make_user("ana", roles=("analyst",))


def names(results):
    return [(h.parent_name + ":" if h.parent_name else "") + h.name for h in results.hits]


# -- the ranking rule --------------------------------------------------------------------


def test_words_split_like_the_index():
    assert words("driverHourly_stats-v2.x") == ["driver", "hourly", "stats", "v2", "x"]


@pytest.mark.parametrize(
    ("name", "description", "tags", "tier"),
    [
        ("churn", "", {}, NAME_EXACT),
        ("churn_score", "", {}, NAME_PREFIX),
        ("customer_churn", "", {}, NAME_CONTAINS),
        ("score_of_churning", "", {}, NAME_CONTAINS),
        ("retention", "predicts churn", {}, DESCRIPTION),
        ("events", "", {"topic": "churn"}, TAGS),
        ("events", "nothing here", {"team": "growth"}, 0),
    ],
)
def test_score_tiers(name, description, tags, tier):
    assert score("churn", name, description, tags) == tier


def test_score_words_in_any_order_of_the_name():
    assert score("daily churn", "churn_score_daily", "", {}) == NAME_WORDS


def test_matched_tags_names_the_tags_holding_a_query_word():
    assert matched_tags({"topic": "churn", "team": "growth"}, ["churn"]) == {"topic": "churn"}


def test_ranking_name_over_description_over_tags(catalog, admin):
    results = search(
        admin,
        SearchParams(query="churn", types=("entity", "feature_view", "feature", "feature_service", "data_source")),
    )
    got = names(results)
    assert got[:2] == ["churn", "churn_score_daily"]
    assert got.index("customer_profile:customer_churn") < got.index("retention") < got.index("events")
    scores = [h.score for h in results.hits]
    assert scores == sorted(scores, reverse=True)
    by_name = {h.name: h for h in results.hits}
    assert by_name["churn"].score == NAME_EXACT
    assert by_name["retention"].score == DESCRIPTION
    assert by_name["events"].score == TAGS
    assert by_name["events"].matched_tags == {"topic": "churn"}


def test_facets_count_every_match_after_the_filters(catalog, admin):
    # "churn" matches 10 objects: make_view gives each view a feature described "f1 of <view>".
    results = search(admin, SearchParams(query="churn", limit=2))
    assert results.total == 10 and len(results.hits) == 2
    facets = {name: {f.value: f.count for f in values} for name, values in results.facets.items()}
    assert facets["type"] == {"feature_view": 3, "feature": 4, "feature_service": 1, "entity": 1, "data_source": 1}
    assert facets["project"] == {"shop": 8, "other": 2}
    assert facets["owner"] == {"growth@x.org": 4, "risk@x.org": 2, "data@x.org": 1}
    assert facets["tag"] == {"team:growth": 1, "topic:churn": 1}

    narrowed = search(admin, SearchParams(query="churn", projects=("shop",), types=("feature_view",)))
    assert names(narrowed) == ["churn_score_daily", "secret_churn"]
    assert {f.value: f.count for f in narrowed.facets["type"]} == {"feature_view": 2}
    tagged = search(admin, SearchParams(query="churn", tags=(("team", "growth"),)))
    assert names(tagged) == ["churn_score_daily"]
    owned = search(admin, SearchParams(query="churn", owner="risk@x.org"))
    assert names(owned) == ["secret_churn", "secret_churn:secret_feature"]


def test_an_empty_query_lists_everything_visible_by_type(catalog, analyst):
    results = search(analyst, SearchParams(query="", limit=50))
    assert results.total == len(results.hits)
    assert {h.name for h in results.hits} >= {"churn", "churn_score_daily", "events", "retention"}
    assert "secret_churn" not in {h.name for h in results.hits}


# -- restriction --------------------------------------------------------------------------


def test_a_scoped_user_never_sees_hidden_objects_in_results_or_counts(catalog, analyst, admin):
    everything = search(admin, SearchParams(query="churn", limit=100))
    seen = search(analyst, SearchParams(query="churn", limit=100))
    visible = set(names(seen))
    assert "secret_churn" in set(names(everything))
    assert not {"secret_churn", "secret_churn:secret_feature", "other_churn"} & visible
    assert {"churn", "churn_score_daily", "customer_profile:customer_churn", "retention", "events"} <= visible
    assert seen.total == len(visible) < everything.total
    assert {f.value: f.count for f in seen.facets["project"]} == {"shop": seen.total}
    counted_types = {f.value: f.count for f in seen.facets["type"]}
    assert counted_types["feature_view"] == 1  # churn_score_daily; secret_churn is not counted
    assert "risk@x.org" not in {f.value for f in seen.facets["owner"]}
    secret = search(analyst, SearchParams(query="secret_feature", limit=100))
    assert not any("secret" in name for name in names(secret))
    assert secret.total == len(secret.hits) == sum(f.count for f in secret.facets["type"])


def test_a_user_without_roles_finds_nothing(catalog, make_user):
    results = search(make_user("nobody"), SearchParams(query="churn"))
    assert results.total == 0 and results.hits == []


# -- typos (SQLite fallback) --------------------------------------------------------------


def test_a_misspelt_name_still_finds_the_object(catalog, analyst):
    results = search(analyst, SearchParams(query="chrun_score_dialy"))
    assert results.fuzzy
    assert names(results)[0] == "churn_score_daily"
    assert results.hits[0].score < TAGS


def test_a_misspelt_word_finds_names_holding_it(catalog, admin):
    results = search(admin, SearchParams(query="custmer"))
    assert results.fuzzy
    assert "customer_profile" in names(results)


def test_exact_matches_suppress_the_typo_pass(catalog, admin):
    assert not search(admin, SearchParams(query="churn")).fuzzy


def test_nothing_close_gives_nothing(catalog, admin):
    results = search(admin, SearchParams(query="zzqxv"))
    assert results.total == 0 and not results.fuzzy


# -- the page -------------------------------------------------------------------------------


def test_search_page_needs_a_login(catalog):
    response = Client().get("/search/?q=churn")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_search_page_shows_ranked_highlighted_results_with_facets_and_links(catalog, analyst):
    client = Client()
    client.force_login(analyst)
    response = client.get("/search/", {"q": "churn"})
    body = response.content.decode()
    assert response.status_code == 200
    assert "<mark>churn</mark>_score_daily" in body
    assert 'href="/projects/shop/feature-views/churn_score_daily/"' in body
    assert 'href="/projects/shop/feature-views/customer_profile/features/customer_churn/"' in body
    assert "secret_churn" not in body and "other_churn" not in body
    assert "?q=churn&amp;type=feature_view" in body  # a facet link
    assert body.index("churn_score_daily") < body.index("retention") < body.index("events")


def test_search_page_htmx_returns_the_results_fragment(catalog, analyst):
    client = Client()
    client.force_login(analyst)
    response = client.get("/search/", {"q": "churn"}, HTTP_HX_REQUEST="true", HTTP_HX_TARGET="search-results")
    body = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in body and "churn_score_daily" in body


def test_header_dropdown_lists_a_few_hits(catalog, analyst):
    client = Client()
    client.force_login(analyst)
    body = client.get("/search/", {"q": "chrun_score", "dropdown": "1"}).content.decode()
    assert "<html" not in body
    assert "No exact match" in body and "churn_score_daily" in body
    assert "secret" not in body
    assert client.get("/search/", {"q": "", "dropdown": "1"}).content.decode().strip() == ""


def test_search_box_partial_is_in_the_header(catalog, analyst):
    client = Client()
    client.force_login(analyst)
    body = client.get("/").content.decode()
    assert "data-search-box" in body and 'action="/search/"' in body and "dropdown=1" in body


# -- the API --------------------------------------------------------------------------------


@pytest.fixture
def api(analyst):
    client = Client()
    client.force_login(analyst)
    return client


def test_api_search_has_feasts_shape(catalog, api):
    response = api.get("/api/v1/search", {"query": "churn", "limit": 3})
    assert response.status_code == 200
    data = response.json()
    assert set(data) >= {"query", "projects_searched", "results", "pagination", "errors"}
    assert data["query"] == "churn" and data["errors"] == []
    assert data["projects_searched"] == ["shop"]
    assert data["pagination"] == {
        "page": 1,
        "limit": 3,
        "totalCount": 6,
        "totalPages": 2,
        "hasNext": True,
        "hasPrevious": False,
    }
    first = data["results"][0]
    assert first == {
        "type": "entity",
        "name": "churn",
        "description": "",
        "project": "shop",
        "matched_tags": {},
        "match_score": NAME_EXACT,
    }
    assert [r["type"] for r in data["results"]] == ["entity", "featureView", "feature"]
    assert data["results"][2]["featureView"] == "customer_profile"
    every = api.get("/api/v1/search", {"query": "churn", "limit": 100}).json()
    assert "secret_churn" not in str(every) and "other_churn" not in str(every)


def test_api_search_filters_and_sorts(catalog, api):
    data = api.get("/api/v1/search", {"query": "churn", "type": "dataSource", "tags": "topic:churn"}).json()
    assert [(r["name"], r["matched_tags"]) for r in data["results"]] == [("events", {"topic": "churn"})]
    by_name = api.get("/api/v1/search", {"query": "churn", "sort_by": "name"}).json()["results"]
    assert [r["name"] for r in by_name] == sorted(r["name"] for r in by_name)


def test_api_search_reports_unknown_and_hidden_projects_alike(catalog, api):
    data = api.get("/api/v1/search", {"query": "churn", "projects": ["other", "nope"]}).json()
    assert data["results"] == []
    assert data["errors"] == ["Following projects do not exist: other, nope"]


def test_api_search_validates_parameters(catalog, api):
    response = api.get("/api/v1/search", {"limit": "500", "type": "spaceship"})
    assert response.status_code == 422
    body = response.json()
    assert body["error_type"] == "RequestValidationError"
    locations = {tuple(item["loc"]) for item in body["detail"]}
    assert {("query", "limit"), ("query", "type")} == locations


def test_api_search_without_a_query_lists_what_the_caller_may_see(catalog, api):
    data = api.get("/api/v1/search", {"limit": 100}).json()
    assert data["pagination"]["totalCount"] == len(data["results"]) > 5
    assert {r["match_score"] for r in data["results"]} == {0}
    assert "secret_churn" not in str(data)


def test_api_search_needs_authentication(catalog):
    assert Client().get("/api/v1/search", {"query": "churn"}).status_code == 401
