"""Search on PostgreSQL (catalog.search_postgres): full-text with A/B/C weights, typo
correction through pg_trgm, the same ranking and restriction as the fallback, and the
search index kept in step with the registry (catalog.search_index)."""

import re

import pytest
from django.contrib.auth.models import Group, User
from django.db import connection
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from access.models import Permission
from access.name_patterns import sql_regex
from access.policy import is_allowed, restrict
from catalog import search_index
from catalog.models import DataSource, Entity, FeatureService, FeatureView, Project, SearchDocument, SearchTerm
from catalog.search import DESCRIPTION, NAME_EXACT, NAME_PREFIX, TAGS, SearchParams, search
from tests.unit import test_name_patterns as name_patterns
from tests.unit.registry_data import make_view

pytestmark = [pytest.mark.integration, pytest.mark.django_db]


@pytest.fixture
def catalog():
    shop = Project.objects.create(name="shop")
    source = DataSource.objects.create(
        project=shop, name="events", kind="file", path="e.parquet", tags={"topic": "churn"}, owner="data@x.org"
    )
    Entity.objects.create(project=shop, name="churn", join_keys=["customer_id"], owner="growth@x.org")
    make_view(shop, "churn_score_daily", source, owner="growth@x.org", tags={"team": "growth"})
    make_view(
        shop,
        "customer_profile",
        source,
        features=(("customer_churn", "Float32"), ("lifetime_value", "Float64")),
        owner="growth@x.org",
    )
    FeatureService.objects.create(project=shop, name="retention", description="Predicts churn of customers.")
    make_view(shop, "secret_churn", source, features=(("secret_feature", "Float32"),), owner="risk@x.org")
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
def admin():
    return User.objects.create_superuser("root", password=None)


@pytest.fixture
def analyst():
    user = User.objects.create_user("ana")
    user.groups.add(Group.objects.create(name="analyst"))
    return user


def names(results):
    return [(h.parent_name + ":" if h.parent_name else "") + h.name for h in results.hits]


def test_runs_on_postgresql_with_pg_trgm():
    assert connection.vendor == "postgresql"
    with connection.cursor() as cursor:
        cursor.execute("SELECT extname FROM pg_extension WHERE extname = 'pg_trgm'")
        assert cursor.fetchone() == ("pg_trgm",)


def test_the_first_search_indexes_the_registry(catalog, admin):
    search(admin, SearchParams(query="churn"))
    types = set(SearchDocument.objects.values_list("object_type", flat=True))
    assert types >= {"entity", "data_source", "feature_view", "feature", "feature_service", "permission"}
    doc = SearchDocument.objects.get(object_type="feature", name="customer_churn")
    assert (doc.parent_type, doc.parent_name, doc.owner, doc.project_name) == (
        "feature_view",
        "customer_profile",
        "growth@x.org",
        "shop",
    )
    assert doc.search_vector is not None
    assert SearchTerm.objects.filter(word__in=["customer", "churn", "predicts"]).count() == 3


def test_ranking_name_over_description_over_tags(catalog, admin):
    results = search(
        admin,
        SearchParams(query="churn", types=("entity", "feature_view", "feature", "feature_service", "data_source")),
    )
    got = names(results)
    assert got[:2] == ["churn", "churn_score_daily"]
    assert got.index("customer_profile:customer_churn") < got.index("retention") < got.index("events")
    by_name = {h.name: h.score for h in results.hits}
    assert (by_name["churn"], by_name["churn_score_daily"]) == (NAME_EXACT, NAME_PREFIX)
    assert (by_name["retention"], by_name["events"]) == (DESCRIPTION, TAGS)
    assert [h.score for h in results.hits] == sorted((h.score for h in results.hits), reverse=True)


def test_words_match_as_prefixes_in_any_order(catalog, admin):
    assert names(search(admin, SearchParams(query="daily churn")))[0] == "churn_score_daily"
    assert "customer_profile:lifetime_value" in names(search(admin, SearchParams(query="lifetime val")))


def test_a_typod_name_finds_the_feature(catalog, analyst):
    results = search(analyst, SearchParams(query="custmer_chrun"))
    assert results.fuzzy
    assert names(results)[0] == "customer_profile:customer_churn"
    assert results.hits[0].score < TAGS
    whole = search(analyst, SearchParams(query="churn_score_dialy"))
    assert names(whole)[0] == "churn_score_daily"


def test_restriction_before_matching_and_counting(catalog, admin, analyst):
    everything = search(admin, SearchParams(query="churn", limit=100))
    seen = search(analyst, SearchParams(query="churn", limit=100))
    assert "secret_churn" in names(everything)
    assert not {"secret_churn", "secret_churn:secret_feature"} & set(names(seen))
    assert seen.total == len(seen.hits) < everything.total
    assert sum(f.count for f in seen.facets["type"]) == seen.total
    assert "risk@x.org" not in {f.value for f in seen.facets["owner"]}
    typo = search(analyst, SearchParams(query="secret_featur"))
    assert not any("secret" in n for n in names(typo))


def test_facets_and_filters(catalog, admin):
    results = search(admin, SearchParams(query="churn", limit=1))
    facets = {name: {f.value: f.count for f in values} for name, values in results.facets.items()}
    assert results.total == sum(facets["type"].values())
    assert facets["tag"]["topic:churn"] == 1
    tagged = search(admin, SearchParams(query="churn", tags=(("team", "growth"),)))
    assert names(tagged) == ["churn_score_daily"]
    owned = search(admin, SearchParams(query="churn", owner="risk@x.org", types=("feature_view",)))
    assert names(owned) == ["secret_churn"]


def test_the_index_follows_saves_and_version_bumps(catalog, admin):
    search(admin, SearchParams(query="churn"))  # index built
    view = FeatureView.objects.get(name="churn_score_daily")
    view.name = "attrition_score_daily"
    view.save()  # post_save: reindexed at once, its features too
    assert names(search(admin, SearchParams(query="attrition")))[:1] == ["attrition_score_daily"]
    assert "churn_score_daily" not in names(search(admin, SearchParams(query="churn", limit=100)))
    FeatureView.objects.filter(name="secret_churn").delete()  # no signal: found by the version bump
    Project.objects.filter(pk=catalog.pk).update(version=catalog.version + 1)
    assert "secret_churn" not in names(search(admin, SearchParams(query="churn", limit=100)))
    assert not SearchDocument.objects.filter(name__in=["secret_churn", "secret_feature"]).exists()
    assert search_index.sync_project(catalog.pk) == 0  # in step: nothing to rewrite


def test_the_api_on_postgresql(catalog, analyst):
    client = Client()
    client.force_login(analyst)
    data = client.get("/api/v1/search", {"query": "custmer_chrun"}).json()
    assert data["results"][0]["name"] == "customer_churn"
    assert data["results"][0]["type"] == "feature" and data["results"][0]["featureView"] == "customer_profile"
    assert data["pagination"]["totalCount"] >= 1 and data["errors"] == []


def test_the_indexes_can_serve_the_query(catalog, admin):
    """With sequential scans off the planner must find index paths for every match kind."""
    search(admin, SearchParams(query="churn"))
    with connection.cursor() as cursor:
        cursor.execute("SET enable_seqscan = off")
        try:
            for condition, value in (
                ("search_vector @@ to_tsquery('simple', %s)", "churn:*"),
                ("key LIKE %s", "%score%"),
                ("key %% %s", "chrun_score"),
                ("tags @> %s::jsonb", '{"team": "growth"}'),
            ):
                cursor.execute(f"EXPLAIN SELECT id FROM catalog_searchdocument WHERE {condition}", [value])
                plan = "\n".join(r[0] for r in cursor.fetchall())
                assert "Index" in plan, (condition, plan)
        finally:
            cursor.execute("SET enable_seqscan = on")


def test_the_typo_phase_knows_names_saved_after_the_first_index(catalog, admin):
    search(admin, SearchParams(query="churn"))  # index built
    source = DataSource.objects.get(name="events")
    make_view(catalog, "merchant_payout_weekly", source)  # post_save: indexed, name added to the lexicon
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM catalog_searchname WHERE key = 'merchant_payout_weekly'")
        assert cursor.fetchone() == (1,)
    results = search(admin, SearchParams(query="merchant_payuot_weekly"))
    assert results.fuzzy and names(results)[0] == "merchant_payout_weekly"


@pytest.mark.django_db(transaction=True)  # autocommit, as in a request without ATOMIC_REQUESTS
def test_the_typo_phase_leaves_no_similarity_threshold_behind(catalog, admin):
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('pg_trgm.similarity_threshold')")
        before = cursor.fetchone()
        assert search(admin, SearchParams(query="churn_score_dialy")).fuzzy
        cursor.execute("SELECT current_setting('pg_trgm.similarity_threshold')")
        assert cursor.fetchone() == before


def test_the_name_lexicon_and_key_indexes_serve_the_typo_phase(catalog, admin):
    search(admin, SearchParams(query="churn"))
    with connection.cursor() as cursor:
        for statement, value in (
            ("SELECT key FROM catalog_searchname WHERE key %% %s", "chrun_score"),
            ("SELECT id FROM catalog_searchdocument WHERE key = ANY(%s)", ["churn_score_daily"]),
        ):
            cursor.execute("SET LOCAL enable_seqscan = off")
            cursor.execute(f"EXPLAIN {statement}", [value])
            plan = "\n".join(r[0] for r in cursor.fetchall())
            cursor.execute("SET LOCAL enable_seqscan = on")
            assert "Index" in plan, (statement, plan)


# -- name patterns matched by PostgreSQL (access.name_patterns) ---------------------------
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pattern=name_patterns.patterns, candidates=st.lists(name_patterns.names, min_size=1, max_size=15))
def test_postgresql_matches_translated_patterns_as_python_fullmatch(pattern, candidates):
    regex = sql_regex(pattern)
    if regex is None:
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT n ~ %s FROM unnest(%s::text[]) WITH ORDINALITY AS u(n, i) ORDER BY i", [regex, candidates]
        )
        got = [r[0] for r in cursor.fetchall()]
    want = [re.fullmatch(pattern.strip(), name) is not None for name in candidates]
    assert got == want, (pattern, regex, candidates)


@pytest.mark.parametrize("patterns", [["churn_.*"], ["customer_.*", "secret_churn"], ["(?i)CHURN_.*"], [r"\w+_churn"]])
def test_restrict_on_postgresql_agrees_with_is_allowed(catalog, patterns):
    source = DataSource.objects.get(name="events")
    make_view(catalog, "churn_\nline_break", source)
    user = User.objects.create_user("pat")
    user.groups.add(Group.objects.create(name="pattern-reader"))
    Permission.objects.create(
        project=catalog,
        name="pattern-reader",
        types=["feature_view"],
        name_patterns=patterns,
        actions=["DESCRIBE"],
        roles=["pattern-reader"],
    )
    views = list(FeatureView.objects.all())
    expected = {v.name for v in views if is_allowed(user, "DESCRIBE", v)}
    assert set(restrict(FeatureView.objects.all(), user).values_list("name", flat=True)) == expected
    assert expected and "churn_\nline_break" not in expected
    seen = search(user, SearchParams(query="", types=("feature_view",), limit=100))
    assert {h.name for h in seen.hits} == expected and seen.total == len(expected)


def test_typos_with_server_side_binding_take_a_transaction_block_and_agree(catalog, admin, monkeypatch):
    """Without client-side binding the SET LOCAL cannot share the message with the
    query: the fallback runs both in a transaction block, with the same answer."""
    from catalog import search_postgres

    one_message = search(admin, SearchParams(query="custmer_chrun"))
    monkeypatch.setattr(search_postgres, "ClientCursor", None)
    in_block = search(admin, SearchParams(query="custmer_chrun"))
    assert one_message.fuzzy and in_block.fuzzy
    assert [(h.name, h.score) for h in in_block.hits] == [(h.name, h.score) for h in one_message.hits]
    assert in_block.total == one_message.total
