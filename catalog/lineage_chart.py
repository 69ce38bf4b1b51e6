"""The lineage drawing: a layered, left-to-right plotly figure built from plain data.

Input is `LineageGraph.as_plain()` (node dicts and index pairs), never a QuerySet, so
the layout can be tested on its own. Columns are fixed by type (sources and entities,
feature views, on-demand views, feature services, saved datasets; empty columns
collapse); inside a column, nodes are ordered by a few barycenter sweeps so edges
cross less. The result is a figure dict ({"data", "layout"}) that static/larder.js
hands to Plotly.newPlot; each node's `customdata` is its detail page URL, opened on
click.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

# type -> (column, legend label, colour, marker symbol)
STYLE: dict[str, tuple[int, str, str, str]] = {
    "dataSource": (0, "Data source", "#6b7f99", "square"),
    "entity": (0, "Entity", "#b07d2b", "diamond"),
    "featureView": (1, "Feature view", "#2f7d6d", "circle"),
    "onDemandFeatureView": (2, "On-demand view", "#7a4fa0", "hexagon"),
    "featureService": (3, "Feature service", "#1f5f99", "star"),
    "savedDataset": (4, "Saved dataset", "#a0523d", "triangle-up"),
}
COLUMN_TITLES = ["Sources & entities", "Feature views", "On-demand views", "Feature services", "Saved datasets"]
ROW_HEIGHT = 58  # px per node in the tallest column
MAX_ARROWS = 150  # beyond this many edges, plain lines (annotations are slow in the browser)


def _columns(nodes: list[dict[str, Any]]) -> dict[int, list[int]]:
    """Column number (collapsed, from 0) -> node indexes, in a first deterministic order."""
    raw: dict[int, list[int]] = defaultdict(list)
    for i, node in enumerate(nodes):
        raw[STYLE.get(node["type"], (0,))[0]].append(i)
    order = sorted(raw)
    return {
        col: sorted(raw[c], key=lambda i: (nodes[i]["type"] != "dataSource", nodes[i]["name"]))
        for col, c in enumerate(order)
    }, order


def _sweep(columns: dict[int, list[int]], neighbours: dict[int, list[int]], forward: bool) -> None:
    """Reorder each column by the mean position of its neighbours in the column before it."""
    cols = sorted(columns)
    if not forward:
        cols = cols[::-1]
    position = {i: p for col in columns.values() for p, i in enumerate(col)}
    for col in cols[1:]:

        def weight(i: int) -> tuple[float, int]:
            linked = [position[j] for j in neighbours.get(i, []) if j in position]
            return (sum(linked) / len(linked) if linked else float(position[i]), position[i])

        columns[col].sort(key=weight)
        position.update({i: p for p, i in enumerate(columns[col])})


def layout_positions(plain: dict[str, Any]) -> dict[int, tuple[float, float]]:
    """Node index -> (x, y): x is the collapsed column, y spreads a column around 0."""
    nodes, edges = plain["nodes"], plain["edges"]
    columns, _ = _columns(nodes)
    column_of = {i: col for col, members in columns.items() for i in members}
    upstream: dict[int, list[int]] = defaultdict(list)
    downstream: dict[int, list[int]] = defaultdict(list)
    for s, t in edges:
        upstream[t].append(s)
        downstream[s].append(t)
    for _ in range(2):
        _sweep(columns, upstream, forward=True)
        _sweep(columns, downstream, forward=False)
    positions = {}
    for col, members in columns.items():
        offset = (len(members) - 1) / 2
        for p, i in enumerate(members):
            positions[i] = (float(col), offset - p)
    assert set(positions) == set(column_of)
    return positions


def edge_path(
    start: tuple[float, float], end: tuple[float, float], occupied: dict[float, list[float]]
) -> list[tuple[float, float]]:
    """The points an edge is drawn through. An edge that skips columns bends around the
    nodes of each column it crosses (half a row off), so it never seems to enter them."""
    (x0, y0), (x1, y1) = start, end
    points = [start]
    for col in range(int(x0) + 1, int(x1)):
        y = y0 + (y1 - y0) * (col - x0) / (x1 - x0)
        column = occupied.get(float(col), [])
        near = min(column, key=lambda other: abs(y - other)) if column else None
        if near is not None and abs(y - near) < 0.3:  # rows are 1 apart: go between two of them
            y = near + (0.5 if y >= near else -0.5)
        points.append((float(col), y))
    points.append(end)
    return points


def lineage_figure(plain: dict[str, Any], focus: tuple[str, str] | None = None) -> dict[str, Any]:
    """A plotly figure dict for the graph; `focus` (type, name) is drawn larger."""
    nodes, edges = plain["nodes"], plain["edges"]
    if not nodes:
        return {"data": [], "layout": {}}
    positions = layout_positions(plain)
    _, used = _columns(nodes)
    tallest = max(sum(1 for i in positions if positions[i][0] == col) for col in range(len(used)))
    height = max(260, tallest * ROW_HEIGHT + 110)

    edge_x: list[float | None] = []
    edge_y: list[float | None] = []
    annotations: list[dict[str, Any]] = []
    occupied: dict[float, list[float]] = defaultdict(list)
    for x, y in positions.values():
        occupied[x].append(y)
    for s, t in edges:
        path = edge_path(positions[s], positions[t], occupied)
        edge_x += [x for x, _ in path] + [None]
        edge_y += [y for _, y in path] + [None]
        (x0, y0), (x1, y1) = path[-2], path[-1]
        if len(edges) <= MAX_ARROWS:
            annotations.append(
                {
                    # only the head: a short arrow on the end of the last segment
                    "x": x1 - 0.06 * (x1 - x0 or 1),
                    "y": y1 - 0.06 * (y1 - y0),
                    "ax": x1 - 0.3 * (x1 - x0 or 1),
                    "ay": y1 - 0.3 * (y1 - y0),
                    "xref": "x",
                    "yref": "y",
                    "axref": "x",
                    "ayref": "y",
                    "showarrow": True,
                    "arrowhead": 3,
                    "arrowsize": 1.1,
                    "arrowwidth": 1.2,
                    "arrowcolor": "#9aa7b3",
                    "text": "",
                }
            )
    data: list[dict[str, Any]] = [
        {
            "type": "scatter",
            "mode": "lines",
            "x": edge_x,
            "y": edge_y,
            "line": {"color": "#9aa7b3", "width": 1.2},
            "hoverinfo": "skip",
            "showlegend": False,
        }
    ]
    by_type: dict[str, list[int]] = defaultdict(list)
    for i, node in enumerate(nodes):
        by_type[node["type"]].append(i)
    for ltype, (_, label, colour, symbol) in STYLE.items():
        members = by_type.get(ltype, [])
        if not members:
            continue
        is_focus = [focus == (ltype, nodes[i]["name"]) for i in members]
        data.append(
            {
                "type": "scatter",
                "mode": "markers+text",
                "name": label,
                "x": [positions[i][0] for i in members],
                "y": [positions[i][1] for i in members],
                "text": [
                    f"<b>{nodes[i]['name']}</b>" if f else nodes[i]["name"]
                    for i, f in zip(members, is_focus, strict=True)
                ],
                "textposition": "top center",
                "textfont": {"size": 12, "color": "#1d232a"},
                "customdata": [nodes[i]["url"] for i in members],
                "hovertext": [
                    f"{label}{' (' + nodes[i]['kind'] + ')' if nodes[i].get('kind') else ''}: {nodes[i]['name']}"
                    for i in members
                ],
                "hovertemplate": "%{hovertext}<extra></extra>",
                "marker": {
                    "color": colour,
                    "symbol": symbol,
                    "size": [22 if f else 15 for f in is_focus],
                    "line": {"color": ["#1d232a" if f else "#ffffff" for f in is_focus], "width": 2},
                },
            }
        )
    for col, raw in enumerate(used):
        annotations.append(
            {
                "x": col,
                "y": 1.0,
                "xref": "x",
                "yref": "paper",
                "yanchor": "bottom",
                "showarrow": False,
                "text": COLUMN_TITLES[raw] if raw < len(COLUMN_TITLES) else "",
                "font": {"size": 12, "color": "#5f6b76"},
            }
        )
    span = max(1, len(used) - 1)
    layout = {
        "height": height,
        "margin": {"l": 20, "r": 20, "t": 60, "b": 20},
        "showlegend": True,
        "legend": {"orientation": "h", "x": 0, "y": -0.02, "yanchor": "top"},
        "xaxis": {"visible": False, "range": [-0.5, span + 0.5], "fixedrange": True},
        "yaxis": {"visible": False, "fixedrange": True, "range": [-(tallest / 2) - 0.2, tallest / 2 + 0.1]},
        "plot_bgcolor": "#ffffff",
        "paper_bgcolor": "#ffffff",
        "hovermode": "closest",
        "dragmode": False,
        "annotations": annotations,
        "font": {"family": "system-ui, -apple-system, Segoe UI, Roboto, sans-serif"},
    }
    return {"data": data, "layout": layout}
