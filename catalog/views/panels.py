"""The panels every detail page shows: lineage, permissions, definition and history.

Each takes the object the page already authorized and the viewer, and shows only
what the viewer may DESCRIBE (the lineage graph is built through restrict; the
permissions listed are those the viewer may see; hidden references are redacted).
"""

from __future__ import annotations

from typing import Any

from django.urls import NoReverseMatch, reverse

from access.actions import Action
from access.explain import actions_allowed, permissions_matching
from access.models import Permission
from access.policy import restrict
from catalog.lineage import LineageGraph, Node, NodeKey, build_project_graph
from catalog.lineage_chart import lineage_figure

from . import definition
from .types import detail_url_for

TYPE_WORDS = {
    "dataSource": "data source",
    "entity": "entity",
    "featureView": "feature view",
    "onDemandFeatureView": "on-demand view",
    "featureService": "feature service",
    "savedDataset": "saved dataset",
}


def visible_names(graph: LineageGraph) -> definition.Visible:
    """Names the viewer may see, by resource type (from the restricted lineage graph)."""
    names: definition.Visible = {}
    for node in graph.nodes.values():
        names.setdefault(node.resource_type, set()).add(node.name)
    return names


def node_url(project: str) -> Any:
    def url(node: Node) -> str:
        return detail_url_for(node.resource_type, project, node.name)

    return url


def lineage_panel(graph: LineageGraph, focus: NodeKey | None, whole: bool = False) -> dict[str, Any]:
    """The graph around `focus` (or the whole project), as a figure and as a table."""
    shown = graph if whole or focus is None else graph.neighbourhood(focus)
    url = node_url(graph.project)
    plain = shown.as_plain(url)
    figure = lineage_figure(plain, focus)
    rows = [
        {
            "source": {**_node_row(shown.nodes[e.source], url)},
            "target": {**_node_row(shown.nodes[e.target], url)},
        }
        for e in shown.edges
    ]
    return {
        "figure": figure,
        "has_graph": bool(plain["nodes"]) and len(plain["nodes"]) > 1,
        "relationships": rows,
        "truncated": shown.truncated,
        "project": graph.project,
    }


def _node_row(node: Node, url: Any) -> dict[str, str]:
    return {"name": node.name, "type": TYPE_WORDS.get(node.type, node.type), "url": url(node)}


def admin_change_url(obj: Any) -> str:
    meta = obj._meta
    try:
        return reverse(f"admin:{meta.app_label}_{meta.model_name}_change", args=[obj.pk])
    except NoReverseMatch:
        return ""


def permissions_panel(user: Any, obj: Any) -> dict[str, Any]:
    """Who may do what on `obj`: the viewer's own actions, and every permission of the
    project that applies to it (among those the viewer may see), with roles and groups."""
    project_id = obj.pk if obj.resource_type == "project" else obj.project_id
    seen = restrict(Permission.objects.filter(project_id=project_id), user, Action.DESCRIBE)
    rules = []
    for permission in permissions_matching(obj, seen.select_related("project")):
        rules.append(
            {
                "permission": permission,
                "url": detail_url_for("permission", permission.project.name, permission.name),
                "admin_url": admin_change_url(permission) if user.is_staff else "",
            }
        )
    return {"yours": actions_allowed(user, obj), "rules": rules, "all_actions": [a.value for a in Action]}


def common_context(user: Any, obj: Any, graph: LineageGraph | None = None, focus: NodeKey | None = None) -> dict:
    """Lineage, permissions, YAML and history of a registry object the viewer may DESCRIBE."""
    project = obj if obj.resource_type == "project" else obj.project
    graph = graph if graph is not None else build_project_graph(project, user)
    visible = visible_names(graph)
    return {
        "obj": obj,
        "project": project,
        "lineage": lineage_panel(graph, focus) if focus else None,
        "permissions_panel": permissions_panel(user, obj),
        "definition_yaml": definition.definition_yaml(obj, visible),
        "history": definition.history(project.name, obj.resource_type, obj.name, visible),
        "admin_url": admin_change_url(obj) if user.is_staff else "",
        "visible": visible,
    }
