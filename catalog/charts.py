"""Plotly figures for the portal's statistics, built from plain data (lists and dicts,
never QuerySets) so each can be tested and reused without a database.

`as_json` turns a figure into JSON the page draws with plotly.js, which is loaded once
per page from the installed package (`static/vendor/plotly.min.js`,
catalog.staticfinders), never from a CDN.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import plotly.graph_objects as go

ACCENT = "#2f6f4f"
MUTED = "#9aa5b1"
FONT = {"family": "system-ui, -apple-system, Segoe UI, sans-serif", "size": 12, "color": "#1d232a"}


def _layout(fig: go.Figure, height: int, **extra: Any) -> go.Figure:
    fig.update_layout(
        height=height,
        margin={"l": 48, "r": 16, "t": 28, "b": 40},
        paper_bgcolor="rgba(0,0,0,0)",
        plot_bgcolor="rgba(0,0,0,0)",
        font=FONT,
        showlegend=False,
        bargap=0.04,
        **extra,
    )
    fig.update_xaxes(showgrid=False, zeroline=False)
    fig.update_yaxes(gridcolor="#e6e9ee", zeroline=False)
    return fig


def histogram(edges: Sequence[float], counts: Sequence[int], title: str = "", unit: str = "rows") -> go.Figure:
    """Bars of precomputed bins: `edges` has one more item than `counts`."""
    if len(edges) != len(counts) + 1:
        raise ValueError(f"{len(edges)} edges for {len(counts)} bins: need one edge more than bins")
    centers = [(edges[i] + edges[i + 1]) / 2 for i in range(len(counts))]
    widths = [edges[i + 1] - edges[i] for i in range(len(counts))]
    ranges = [f"{_short(edges[i])} to {_short(edges[i + 1])}" for i in range(len(counts))]
    fig = go.Figure(
        go.Bar(
            x=centers,
            y=list(counts),
            width=widths,
            marker={"color": ACCENT},
            customdata=ranges,
            hovertemplate=f"%{{customdata}}<br>%{{y}} {unit}<extra></extra>",
        )
    )
    return _layout(fig, 240, title={"text": title, "font": {"size": 13}} if title else None)


def top_values(values: Sequence[dict[str, Any]], title: str = "") -> go.Figure:
    """Horizontal bars of the most common values, the most common on top."""
    ordered = list(values)[::-1]
    fig = go.Figure(
        go.Bar(
            x=[v["count"] for v in ordered],
            y=[str(v["value"]) for v in ordered],
            orientation="h",
            marker={"color": ACCENT},
            hovertemplate="%{y}: %{x} rows<extra></extra>",
        )
    )
    fig.update_yaxes(type="category", automargin=True)
    return _layout(
        fig, max(160, 28 * len(ordered) + 60), title={"text": title, "font": {"size": 13}} if title else None
    )


def freshness_timeline(
    intervals: Sequence[tuple[datetime, datetime]],
    jobs: Sequence[dict[str, Any]] = (),
    newest_offline: datetime | None = None,
    now: datetime | None = None,
) -> go.Figure:
    """Materialized windows as bars on a time axis (one row), jobs as points on a
    second row, and the newest offline event and "now" as vertical markers."""
    fig = go.Figure()
    for start, end in intervals:
        fig.add_trace(
            go.Scatter(
                x=[start, end],
                y=["materialized", "materialized"],
                mode="lines",
                line={"color": ACCENT, "width": 14},
                hovertemplate=f"{start:%Y-%m-%d %H:%M} → {end:%Y-%m-%d %H:%M} UTC<extra>interval</extra>",
            )
        )
    if jobs:
        fig.add_trace(
            go.Scatter(
                x=[j["at"] for j in jobs],
                y=["jobs"] * len(jobs),
                mode="markers",
                marker={"size": 10, "color": [ACCENT if j.get("ok", True) else "#b3261e" for j in jobs]},
                text=[j.get("label", "") for j in jobs],
                hovertemplate="%{text}<br>%{x|%Y-%m-%d %H:%M} UTC<extra>job</extra>",
            )
        )
    # Both labelled above the plot, the newest offline row to the left of its line and
    # "now" to the right of its own: the two are often close together.
    for when, label, color, side in (
        (newest_offline, "newest offline row", MUTED, "right"),
        (now, "now", "#1d232a", "left"),
    ):
        if when is not None:
            fig.add_vline(x=when, line={"color": color, "dash": "dot", "width": 1})
            fig.add_annotation(
                x=when,
                y=1,
                yref="paper",
                text=label,
                showarrow=False,
                yanchor="bottom",
                xanchor=side,
                font={"size": 11},
            )
    times = [t for pair in intervals for t in pair] + [j["at"] for j in jobs]
    times += [t for t in (newest_offline, now) if t is not None]
    if times:  # markers alone do not set the axis: span everything shown, with a margin
        low, high = min(times), max(times)
        pad = (high - low) * 0.05 or timedelta(hours=1)
        fig.update_xaxes(range=[low - pad, high + pad])
    fig.update_xaxes(type="date", tickangle=0, nticks=4, tickformat="%d %b %H:%M")
    return _layout(fig, 160 if not jobs else 200)


def as_json(fig: go.Figure) -> dict[str, Any]:
    """The figure as plain JSON data ({"data", "layout"}) for the page's script to draw
    with plotly.js (json_script in the template; static/stats-charts.js)."""
    return json.loads(fig.to_json())


def _short(value: float) -> str:
    return f"{value:.4g}"
