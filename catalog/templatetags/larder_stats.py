"""The statistics panels (feature page, feature view page) as inclusion tags.

The pages include `catalog/partials/feature_stats.html` (context: `feature`, `project`)
and `catalog/partials/view_freshness.html` (context: `feature_view`); those call these
tags, which decide what the user may see, fetch or compute the cached statistics
(catalog.stats), and turn them into plotly figures (catalog.charts) as JSON for
static/stats-charts.js to draw.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from django import template

from access.actions import Action
from access.policy import is_allowed
from catalog import charts, stats

register = template.Library()

READ = (Action.DESCRIBE, Action.READ_OFFLINE)


def _parse(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _age(when: datetime | None, now: datetime) -> str:
    if when is None:
        return ""
    seconds = int((now - when).total_seconds())
    if seconds < 0:
        return "in the future"
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            n = seconds // size
            return f"{n} {unit}{'s' if n != 1 else ''} ago"
    return "just now"


def panel_context(user: Any, feature_view: Any) -> dict[str, Any]:
    """What both panels share: may the user read the data, and the current statistics."""
    # Each action on its own: two permissions may grant them (Feast's matching asks one
    # permission for every action of a single request).
    may_read = all(is_allowed(user, action, feature_view) for action in READ)
    row = stats.statistics_for(feature_view) if may_read else None
    return {"may_read": may_read, "statistics": row, "payload": row.payload if row else None}


@register.inclusion_tag("catalog/partials/feature_stats_body.html", takes_context=True)
def feature_stats_panel(context: dict, feature: Any = None) -> dict[str, Any]:
    feature = feature or context.get("feature")
    request = context.get("request")
    out: dict[str, Any] = {"feature": feature, "request": request, "csrf_token": context.get("csrf_token")}
    view = getattr(feature, "feature_view", None) if feature is not None else None
    if view is None:
        out["state"] = "on_demand"
        return out
    out["feature_view"] = view
    out.update(panel_context(request.user, view))
    if not out["may_read"]:
        out["state"] = "forbidden"
        return out
    payload = out["payload"]
    if payload is None:
        out["state"] = "not_computed"
        return out
    if payload.get("error"):
        out["state"] = "error"
        out["error"] = payload["error"]
        return out
    numbers = payload.get("features", {}).get(feature.name)
    if numbers is None or numbers.get("error"):
        out["state"] = "error"
        out["error"] = (numbers or {}).get("error") or f"no statistics for {feature.name} (recompute?)"
        return out
    out["state"] = "ok"
    out["numbers"] = numbers
    out["chart_id"] = f"stats-chart-{feature.pk}"
    out["chart_data_id"] = f"stats-chart-{feature.pk}-data"
    if numbers.get("histogram"):
        h = numbers["histogram"]
        out["chart"] = charts.as_json(charts.histogram(h["edges"], h["counts"]))
        out["chart_label"] = f"Histogram of {feature.name}: {len(h['counts'])} bins of the non-null values"
    elif numbers.get("top"):
        out["chart"] = charts.as_json(charts.top_values(numbers["top"]))
        out["chart_label"] = f"Most common values of {feature.name}"
    return out


@register.inclusion_tag("catalog/partials/view_freshness_body.html", takes_context=True)
def view_freshness_panel(context: dict, feature_view: Any = None) -> dict[str, Any]:
    view = feature_view or context.get("feature_view")
    request = context.get("request")
    now = datetime.now(UTC)
    out: dict[str, Any] = {"feature_view": view, "request": request, "csrf_token": context.get("csrf_token")}
    out.update(panel_context(request.user, view))
    payload = out["payload"] or {}
    newest = _parse(payload.get("newest_event"))
    out["newest_offline"] = newest
    out["newest_offline_age"] = _age(newest, now)
    out["error"] = payload.get("error", "")
    online = payload.get("online") or {}
    out["online"] = online
    out["newest_online"] = _parse(online.get("newest_event"))
    out["newest_online_age"] = _age(out["newest_online"], now)
    intervals = [(i.start, i.end) for i in view.materialization_intervals.all()]
    jobs = _jobs(view)
    out["intervals"] = intervals
    out["jobs"] = jobs
    if intervals or jobs:
        out["chart"] = charts.as_json(charts.freshness_timeline(intervals, jobs, newest, now))
        out["chart_id"] = f"freshness-chart-{view.pk}"
        out["chart_data_id"] = f"freshness-chart-{view.pk}-data"
    return out


def _jobs(view: Any) -> list[dict[str, Any]]:
    """Materialization jobs, when the materialization app records them (issue 6)."""
    manager = getattr(view, "materialization_jobs", None)
    if manager is None:
        return []
    try:
        jobs = list(manager.order_by("-pk")[:50])
    except Exception:  # the app is not migrated yet: no jobs to show
        return []
    out = []
    for job in jobs:
        when = getattr(job, "finished_at", None) or getattr(job, "started_at", None) or getattr(job, "created_at", None)
        if when is None:
            continue
        state = str(getattr(job, "state", "") or getattr(job, "status", ""))
        rows = getattr(job, "rows_written", None)
        label = f"{state or 'job'}{f' · {rows} rows written' if rows is not None else ''}"
        out.append({"at": when, "ok": state.upper() not in ("FAILED", "ERROR"), "label": label})
    return out
