"""catalog.lineage: the graph of a project, its restriction to what the viewer may see,
the layered drawing, and /api/v1/lineage in Feast's shape."""

import json

import pytest
from django.test import Client

from catalog.lineage import build_project_graph
from catalog.lineage_chart import layout_positions, lineage_figure
from tests.unit import portal_data

pytestmark = pytest.mark.django_db

DS, EN, FV, OD, FS, SD = "dataSource", "entity", "featureView", "onDemandFeatureView", "featureService", "savedDataset"

EXPECTED_P1 = {
    ((DS, "src_alpha"), (FV, "team_a_stats")),
    ((DS, "push_alpha"), (FV, "team_a_fresh")),
    ((DS, "src_alpha"), (FV, "team_a_fresh")),  # the push source's batch source feeds the view too
    ((DS, "src_beta"), (FV, "team_b_stats")),
    ((EN, "rider_entity"), (FV, "team_a_stats")),
    ((EN, "rider_entity"), (FV, "team_a_fresh")),
    ((EN, "rider_entity"), (FV, "team_b_stats")),
    ((FV, "team_a_stats"), (OD, "team_a_plus")),
    ((DS, "req_extra"), (OD, "team_a_plus")),
    ((FV, "team_b_stats"), (OD, "team_b_plus")),
    ((FV, "team_a_stats"), (FS, "svc_alpha")),
    ((OD, "team_a_plus"), (FS, "svc_alpha")),
    ((FV, "team_b_stats"), (FS, "svc_beta")),
    ((FS, "svc_alpha"), (SD, "ds_alpha")),
    ((FV, "team_b_stats"), (SD, "ds_beta")),  # no service: the views its features name
    ((FV, "team_a_stats"), (SD, "ds_beta")),
}


@pytest.fixture
def registry(tmp_path):
    return portal_data.build(tmp_path)


def edges(graph) -> set:
    return {(e.source, e.target) for e in graph.edges}


def test_graph_of_a_project_for_a_superuser(registry, make_user):
    graph = build_project_graph(registry["p1"], make_user("root", is_superuser=True))
    assert edges(graph) == EXPECTED_P1
    assert (FV, "team_a_other") not in graph.nodes, "another project's view is not in p1's lineage"
    assert graph.nodes[(DS, "push_alpha")].kind == "push"


def test_indirect_relationships_feed_services(registry, make_user):
    graph = build_project_graph(registry["p1"], make_user("root", is_superuser=True))
    indirect = {(e.source, e.target) for e in graph.indirect_edges()}
    assert ((EN, "rider_entity"), (FS, "svc_alpha")) in indirect
    assert ((DS, "src_alpha"), (FS, "svc_alpha")) in indirect
    assert ((FV, "team_a_stats"), (FS, "svc_alpha")) not in indirect, "direct edges are not repeated"
    assert ((DS, "req_extra"), (FS, "svc_alpha")) in indirect  # through the on-demand view


def test_neighbourhood_is_ancestors_and_descendants(registry, make_user):
    graph = build_project_graph(registry["p1"], make_user("root", is_superuser=True))
    around = graph.neighbourhood((FV, "team_b_stats"))
    assert set(around.nodes) == {
        (FV, "team_b_stats"),
        (DS, "src_beta"),
        (EN, "rider_entity"),
        (OD, "team_b_plus"),
        (FS, "svc_beta"),
        (SD, "ds_beta"),
    }, "siblings (team_a_stats, which shares the entity) are not part of it"
    assert ((EN, "rider_entity"), (FV, "team_a_stats")) not in edges(around)
    limited = graph.neighbourhood((EN, "rider_entity"), limit=3)
    assert len(limited.nodes) == 3 and limited.truncated > 0


def test_hidden_nodes_and_their_edges_vanish(registry, make_user):
    """team-a may see only the views named team_a_.* of p1: no source, entity, service,
    on-demand view or dataset name may appear, in nodes or in edges."""
    graph = build_project_graph(registry["p1"], make_user("ana", roles=("team-a",)))
    assert set(graph.nodes) == {(FV, "team_a_stats"), (FV, "team_a_fresh")}
    assert graph.edges == [] and graph.indirect_edges() == []
    dumped = json.dumps([e.as_feast() for e in graph.edges]) + json.dumps(graph.as_plain())
    for hidden in portal_data.HIDDEN_FROM_TEAM_A:
        assert hidden not in dumped


def test_a_path_is_never_drawn_through_a_hidden_node(registry, make_user):
    """With services visible but not the views in between, sources and services stay unlinked."""
    from access.models import Permission

    Permission.objects.create(
        project=registry["p1"],
        name="no-views",
        types=["data_source", "feature_service"],
        actions=["DESCRIBE"],
        roles=["edge"],
    )
    graph = build_project_graph(registry["p1"], make_user("eve", roles=("edge",)))
    assert {n[0] for n in graph.nodes} == {DS, FS}
    assert graph.edges == [] and graph.indirect_edges() == []


def test_nobody_sees_an_empty_graph(registry, make_user):
    graph = build_project_graph(registry["p1"], make_user("nobody"))
    assert graph.nodes == {} and graph.edges == []


def test_query_count_does_not_grow_with_the_project(registry, make_user, django_assert_max_num_queries):
    from tests.unit.portal_data import view

    user = make_user("ana", roles=("team-a",))
    with django_assert_max_num_queries(20) as captured:
        build_project_graph(registry["p1"], user)
    baseline = len(captured.captured_queries)
    for i in range(30):
        view(registry["p1"], f"team_a_more_{i}", registry["src_a"], [registry["rider"]])
    user = make_user("ana2", roles=("team-a",))
    with django_assert_max_num_queries(baseline):
        graph = build_project_graph(registry["p1"], user)
    assert len(graph.nodes) == 32


# -- the drawing ------------------------------------------------------------------------------


def test_layout_is_layered_left_to_right(registry, make_user):
    graph = build_project_graph(registry["p1"], make_user("root", is_superuser=True))
    plain = graph.as_plain(lambda n: f"/x/{n.name}/")
    positions = layout_positions(plain)
    column = {(plain["nodes"][i]["type"], plain["nodes"][i]["name"]): x for i, (x, _) in positions.items()}
    assert column[(DS, "src_alpha")] == column[(EN, "rider_entity")] == 0
    assert column[(FV, "team_a_stats")] == 1 and column[(OD, "team_a_plus")] == 2
    assert column[(FS, "svc_alpha")] == 3 and column[(SD, "ds_alpha")] == 4
    for s, t in plain["edges"]:
        assert positions[s][0] < positions[t][0], "every edge points right"
    ys = [y for (x, y) in positions.values() if x == 1]
    assert len(ys) == len(set(ys)), "nodes of a column do not overlap"


def test_figure_nodes_link_to_their_pages_and_focus_is_marked(registry, make_user):
    graph = build_project_graph(registry["p1"], make_user("root", is_superuser=True))
    figure = lineage_figure(graph.as_plain(lambda n: f"/x/{n.name}/"), focus=(FV, "team_a_stats"))
    traces = {t.get("name"): t for t in figure["data"]}
    views = traces["Feature view"]
    assert "/x/team_a_stats/" in views["customdata"]
    index = views["customdata"].index("/x/team_a_stats/")
    assert views["marker"]["size"][index] > min(views["marker"]["size"])
    assert views["text"][index] == "<b>team_a_stats</b>"
    assert len([a for a in figure["layout"]["annotations"] if a.get("showarrow")]) == len(EXPECTED_P1)
    assert lineage_figure({"nodes": [], "edges": []}) == {"data": [], "layout": {}}


def test_collapsed_columns_when_types_are_missing():
    plain = {
        "nodes": [
            {"type": FV, "name": "v", "kind": "", "url": ""},
            {"type": FS, "name": "s", "kind": "", "url": ""},
        ],
        "edges": [(0, 1)],
    }
    positions = layout_positions(plain)
    assert positions[0][0] == 0 and positions[1][0] == 1


# -- the API ----------------------------------------------------------------------------------


def api(user, url):
    client = Client()
    client.force_login(user)
    return client.get(url)


def test_registry_lineage_api_shape(registry, make_user):
    response = api(make_user("root", is_superuser=True), "/api/v1/lineage/registry?project=p1")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {
        "relationships",
        "indirect_relationships",
        "relationships_pagination",
        "indirect_relationships_pagination",
    }
    got = {
        ((r["source"]["type"], r["source"]["name"]), (r["target"]["type"], r["target"]["name"]))
        for r in body["relationships"]
    }
    assert got == EXPECTED_P1
    assert body["relationships_pagination"]["totalCount"] == len(EXPECTED_P1)


def test_registry_lineage_pages_and_filters(registry, make_user):
    root = make_user("root", is_superuser=True)
    body = api(root, "/api/v1/lineage/registry?project=p1&page=2&limit=5").json()
    assert len(body["relationships"]) == 5
    assert body["relationships_pagination"] == {
        "page": 2,
        "limit": 5,
        "totalCount": len(EXPECTED_P1),
        "totalPages": 4,
        "hasNext": True,
        "hasPrevious": True,
    }
    body = api(root, "/api/v1/lineage/registry?project=p1&filter_object_type=featureService").json()
    assert all(FS in (r["source"]["type"], r["target"]["type"]) for r in body["relationships"])
    assert api(root, "/api/v1/lineage/registry?project=p1&filter_object_type=nope").status_code == 422
    assert api(root, "/api/v1/lineage/registry?project=p1&limit=0").status_code == 422
    assert api(root, "/api/v1/lineage/registry").status_code == 422  # project is required, as in Feast


def test_object_relationships_api(registry, make_user):
    root = make_user("root", is_superuser=True)
    body = api(root, "/api/v1/lineage/objects/featureService/svc_alpha?project=p1").json()
    assert {(r["source"]["name"], r["target"]["name"]) for r in body["relationships"]} == {
        ("team_a_stats", "svc_alpha"),
        ("team_a_plus", "svc_alpha"),
        ("svc_alpha", "ds_alpha"),
    }
    assert body["pagination"]["totalCount"] == 3
    indirect = api(root, "/api/v1/lineage/objects/featureService/svc_alpha?project=p1&include_indirect=true").json()
    assert ("rider_entity", "svc_alpha") in {
        (r["source"]["name"], r["target"]["name"]) for r in indirect["relationships"]
    }
    assert api(root, "/api/v1/lineage/objects/entity/nope?project=p1").status_code == 404


def test_lineage_api_is_restricted(registry, make_user, client):
    ana = make_user("ana", roles=("team-a",))
    response = api(ana, "/api/v1/lineage/registry?project=p1&include_indirect=true")
    assert response.status_code == 200
    assert response.json()["relationships"] == [] and response.json()["indirect_relationships"] == []
    assert api(ana, "/api/v1/lineage/objects/featureView/team_a_stats?project=p1").json()["relationships"] == []
    hidden = api(ana, "/api/v1/lineage/objects/featureService/svc_alpha?project=p1")
    assert hidden.status_code == 404, "a hidden object answers like a missing one"
    assert api(ana, "/api/v1/lineage/registry?project=p2").status_code == 404, "team-a's permission is p1's only"
    nobody = api(make_user("nobody"), "/api/v1/lineage/registry?project=p1")
    assert nobody.status_code == 404 and "rider" not in nobody.content.decode()
    assert client.get("/api/v1/lineage/registry?project=p1").status_code == 401
