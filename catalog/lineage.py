"""Lineage: which registry objects feed which, as a graph the viewer is allowed to see.

data source -> feature view -> on-demand view -> feature service -> saved dataset,
plus entity -> feature view and request source -> on-demand view (Feast's
`registry_lineage.py` relationships, with Larder's on-demand views and saved datasets
as types of their own). Shared by the lineage pages and /api/v1/lineage.

Permission rule (issue 7): a node the viewer may not DESCRIBE is dropped together
with every edge touching it; no path is drawn "through" it, so no name of a hidden
object can be inferred from the graph. The whole project is read in a fixed number
of queries (one or two per type through `restrict`, one per relation table), so
pages stay flat as the registry grows.
"""

from __future__ import annotations

from collections import defaultdict, deque
from dataclasses import dataclass, field
from typing import Any

from access.actions import Action
from access.policy import restrict
from catalog.models import (
    DataSource,
    Entity,
    FeatureService,
    FeatureView,
    FeatureViewProjection,
    OnDemandFeatureView,
    Project,
    SavedDataset,
)

# Feast's object type names (REST JSON), in the left-to-right order of the drawing.
DATA_SOURCE = "dataSource"
ENTITY = "entity"
FEATURE_VIEW = "featureView"
ON_DEMAND_FEATURE_VIEW = "onDemandFeatureView"
FEATURE_SERVICE = "featureService"
SAVED_DATASET = "savedDataset"

# Lineage type -> (registry resource type, model).
TYPES: dict[str, tuple[str, Any]] = {
    ENTITY: ("entity", Entity),
    DATA_SOURCE: ("data_source", DataSource),
    FEATURE_VIEW: ("feature_view", FeatureView),
    ON_DEMAND_FEATURE_VIEW: ("on_demand_feature_view", OnDemandFeatureView),
    FEATURE_SERVICE: ("feature_service", FeatureService),
    SAVED_DATASET: ("saved_dataset", SavedDataset),
}
BY_RESOURCE_TYPE = {rtype: ltype for ltype, (rtype, _) in TYPES.items()}

NodeKey = tuple[str, str]  # (lineage type, name)


@dataclass(frozen=True)
class Node:
    type: str
    name: str
    resource_type: str
    kind: str = ""  # a data source's kind (file, push, request...), for labels

    @property
    def key(self) -> NodeKey:
        return (self.type, self.name)


@dataclass(frozen=True)
class Edge:
    source: NodeKey
    target: NodeKey

    def as_feast(self) -> dict[str, dict[str, str]]:
        """Feast's relationship JSON: {"source": {"type", "name"}, "target": {...}}."""
        return {
            "source": {"type": self.source[0], "name": self.source[1]},
            "target": {"type": self.target[0], "name": self.target[1]},
        }


@dataclass
class LineageGraph:
    project: str
    nodes: dict[NodeKey, Node] = field(default_factory=dict)
    edges: list[Edge] = field(default_factory=list)
    truncated: int = 0  # nodes left out of a neighbourhood by its size limit

    def add_edge(self, source: NodeKey | None, target: NodeKey | None) -> None:
        """Keep an edge only when both ends are visible nodes (hidden ones never appear)."""
        if source in self.nodes and target in self.nodes and source != target:
            edge = Edge(source, target)
            if edge not in self._edge_set:
                self._edge_set.add(edge)
                self.edges.append(edge)

    def __post_init__(self) -> None:
        self._edge_set: set[Edge] = set(self.edges)

    def indirect_edges(self) -> list[Edge]:
        """Feast's indirect relationships: whatever feeds a view directly also feeds
        the feature services that include the view (entity/data source/... -> service)."""
        feeds: dict[NodeKey, list[NodeKey]] = defaultdict(list)
        for edge in self.edges:
            feeds[edge.target].append(edge.source)
        found: list[Edge] = []
        seen = set(self.edges)
        for edge in self.edges:
            if edge.target[0] != FEATURE_SERVICE:
                continue
            for upstream in feeds.get(edge.source, []):
                indirect = Edge(upstream, edge.target)
                if indirect not in seen:
                    seen.add(indirect)
                    found.append(indirect)
        return found

    def relationships_of(self, key: NodeKey, include_indirect: bool = False) -> list[Edge]:
        edges = self.edges + (self.indirect_edges() if include_indirect else [])
        return [e for e in edges if key in (e.source, e.target)]

    def neighbourhood(self, key: NodeKey, limit: int = 60) -> LineageGraph:
        """What `key` comes from and what comes from it (ancestors and descendants
        along direct edges), nearest first, at most `limit` nodes."""
        sub = LineageGraph(self.project)
        if key not in self.nodes:
            return sub
        up: dict[NodeKey, list[NodeKey]] = defaultdict(list)
        down: dict[NodeKey, list[NodeKey]] = defaultdict(list)
        for edge in self.edges:
            down[edge.source].append(edge.target)
            up[edge.target].append(edge.source)
        keep: dict[NodeKey, int] = {key: 0}
        for adjacency in (up, down):
            queue = deque([(key, 0)])
            seen = {key}
            while queue:
                current, depth = queue.popleft()
                for nxt in adjacency.get(current, []):
                    if nxt not in seen:
                        seen.add(nxt)
                        keep[nxt] = min(keep.get(nxt, depth + 1), depth + 1)
                        queue.append((nxt, depth + 1))
        chosen = sorted(keep, key=lambda k: (keep[k], k))[:limit]
        sub.nodes = {k: self.nodes[k] for k in chosen}
        for edge in self.edges:
            sub.add_edge(edge.source, edge.target)
        sub.truncated = len(keep) - len(chosen)
        return sub

    def as_plain(self, url_for: Any = None) -> dict[str, Any]:
        """Plain data for the chart: nodes (type, name, kind, url) and edges (index pairs)."""
        keys = list(self.nodes)
        index = {k: i for i, k in enumerate(keys)}
        return {
            "nodes": [
                {
                    "type": n.type,
                    "name": n.name,
                    "kind": n.kind,
                    "url": url_for(n) if url_for else "",
                }
                for n in (self.nodes[k] for k in keys)
            ],
            "edges": [(index[e.source], index[e.target]) for e in self.edges],
        }


def _visible(model: Any, project: Project, user: Any, *columns: str) -> list[tuple]:
    queryset = model.objects.filter(project=project).order_by()
    return list(restrict(queryset, user, Action.DESCRIBE).values_list("pk", "name", *columns))


def build_project_graph(project: Project, user: Any) -> LineageGraph:
    """The lineage of `project` as `user` may see it."""
    graph = LineageGraph(project.name)
    names: dict[str, dict[int, str]] = {}
    for ltype, (rtype, model) in TYPES.items():
        columns = ("kind",) if model is DataSource else ()
        rows = _visible(model, project, user, *columns)
        names[ltype] = {row[0]: row[1] for row in rows}
        for row in rows:
            node = Node(ltype, row[1], rtype, kind=row[2] if columns else "")
            graph.nodes[node.key] = node

    def key(ltype: str, pk: int | None) -> NodeKey | None:
        name = names[ltype].get(pk) if pk is not None else None
        return (ltype, name) if name is not None else None

    # Sources (all of them, visible or not: edges are kept only between visible nodes).
    batch_of = dict(
        DataSource.objects.filter(project=project, kind="push").order_by().values_list("pk", "batch_source_id")
    )
    for fv_id, source_id in FeatureView.objects.filter(project=project).order_by().values_list("pk", "source_id"):
        graph.add_edge(key(DATA_SOURCE, source_id), key(FEATURE_VIEW, fv_id))
        if source_id in batch_of:  # a push source's batch source feeds the view too (Feast's batch_source)
            graph.add_edge(key(DATA_SOURCE, batch_of[source_id]), key(FEATURE_VIEW, fv_id))
    for fv_id, entity_id in FeatureView.entities.through.objects.filter(featureview__project=project).values_list(
        "featureview_id", "entity_id"
    ):
        graph.add_edge(key(ENTITY, entity_id), key(FEATURE_VIEW, fv_id))
    for odfv_id, fv_id in OnDemandFeatureView.sources.through.objects.filter(
        ondemandfeatureview__project=project
    ).values_list("ondemandfeatureview_id", "featureview_id"):
        graph.add_edge(key(FEATURE_VIEW, fv_id), key(ON_DEMAND_FEATURE_VIEW, odfv_id))
    for odfv_id, ds_id in OnDemandFeatureView.request_sources.through.objects.filter(
        ondemandfeatureview__project=project
    ).values_list("ondemandfeatureview_id", "datasource_id"):
        graph.add_edge(key(DATA_SOURCE, ds_id), key(ON_DEMAND_FEATURE_VIEW, odfv_id))
    for fs_id, fv_id, odfv_id in (
        FeatureViewProjection.objects.filter(feature_service__project=project)
        .order_by("feature_service_id", "position")
        .values_list("feature_service_id", "feature_view_id", "on_demand_feature_view_id")
    ):
        upstream = key(FEATURE_VIEW, fv_id) if fv_id else key(ON_DEMAND_FEATURE_VIEW, odfv_id)
        graph.add_edge(upstream, key(FEATURE_SERVICE, fs_id))
    view_keys = {name: (FEATURE_VIEW, name) for name in names[FEATURE_VIEW].values()}
    view_keys.update({name: (ON_DEMAND_FEATURE_VIEW, name) for name in names[ON_DEMAND_FEATURE_VIEW].values()})
    for sd_id, fs_id, features in (
        SavedDataset.objects.filter(project=project).order_by().values_list("pk", "feature_service_id", "features")
    ):
        target = key(SAVED_DATASET, sd_id)
        if fs_id is not None:
            graph.add_edge(key(FEATURE_SERVICE, fs_id), target)
            continue
        for ref in features or []:  # "view:feature" references when no service was used
            graph.add_edge(view_keys.get(str(ref).split(":", 1)[0]), target)
    return graph


def node_key_for(obj: Any) -> NodeKey | None:
    """The graph key of a registry object (None for types that are not in the lineage)."""
    ltype = BY_RESOURCE_TYPE.get(getattr(obj, "resource_type", ""))
    return (ltype, obj.name) if ltype else None
