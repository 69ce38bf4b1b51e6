"""The landing page: projects and their counts, recent changes, stale online views."""

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from django.db.models import CharField, Max, Model, OuterRef, Subquery, Value
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from access.models import Permission
from access.policy import restrict
from catalog.models import DataSource, Entity, FeatureService, FeatureView, OnDemandFeatureView, Project, RegistryChange

from .freshness import RULE, Freshness, view_freshness
from .types import detail_url_for

# (resource type, model, label) in the order the home page shows them.
COUNTED: list[tuple[str, type[Model], str]] = [
    ("entity", Entity, "Entities"),
    ("data_source", DataSource, "Data sources"),
    ("feature_view", FeatureView, "Feature views"),
    ("on_demand_feature_view", OnDemandFeatureView, "On-demand views"),
    ("feature_service", FeatureService, "Feature services"),
    ("permission", Permission, "Permissions"),
]
RECENT_CHANGES = 10
STALE_SHOWN = 10
# How many recent changes are scanned for ones this user may see.
CHANGE_SCAN = 200


TYPE_LABELS = {
    "project": "project",
    "entity": "entity",
    "data_source": "data source",
    "feature_view": "feature view",
    "on_demand_feature_view": "on-demand view",
    "feature_service": "feature service",
    "permission": "permission",
}


@dataclass
class ProjectCard:
    """One project on the home page. Without DESCRIBE on the project itself the user
    sees only its name (implied by the objects they may see), not its documentation."""

    project: Project
    describable: bool
    counts: list[tuple[str, int]] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(n for _, n in self.counts)


def _visible_names(user) -> tuple[dict[int, dict[str, int]], set[tuple[int, str, str]]]:
    """Per project: count of each type the user may DESCRIBE; and the visible (project, type, name) keys."""
    counts: dict[int, dict[str, int]] = defaultdict(dict)
    visible: set[tuple[int, str, str]] = set()
    for rtype, model, _ in COUNTED:
        for project_id, name in restrict(model.objects.all(), user).values_list("project_id", "name"):
            counts[project_id][rtype] = counts[project_id].get(rtype, 0) + 1
            visible.add((project_id, rtype, name))
    return counts, visible


def _recent_changes(
    user, projects: dict[int, Project], describable: set[int], visible: set[tuple[int, str, str]]
) -> list[RegistryChange]:
    """The latest changes to objects the user may see now.

    Superusers see every change, deletions included. Others see a change only when
    the object still exists and passes DESCRIBE: a deleted object's history stays
    hidden, because nothing can be authorized against an object that is gone.
    """
    changes = RegistryChange.objects.select_related("user").order_by("-created_at", "-id")
    if user.is_superuser:
        shown = list(changes[:RECENT_CHANGES])
        for change in shown:
            _label(change)
        return shown
    shown = []
    for change in changes.filter(project_id__in=projects)[:CHANGE_SCAN]:
        if change.object_type == "project":
            ok = change.project_id in describable and projects[change.project_id].name == change.object_name
        else:
            ok = (change.project_id, change.object_type, change.object_name) in visible
        if ok:
            _label(change)
            shown.append(change)
            if len(shown) == RECENT_CHANGES:
                break
    return shown


def _label(change: RegistryChange) -> None:
    """Attach the words and the link the template shows (no link to what was deleted)."""
    change.type_label = TYPE_LABELS.get(change.object_type, change.object_type)
    change.url = ""
    if change.action != RegistryChange.Action.DELETE and change.object_type in TYPE_LABELS:
        change.url = detail_url_for(change.object_type, change.project_name, change.object_name)


@dataclass
class StaleView:
    project: str
    name: str
    url: str
    freshness: Freshness
    failed: bool = False  # its newest materialization job failed

    @property
    def reason(self) -> str:
        if self.failed:
            return "last materialization job failed" + (f"; {self.freshness.reason}" if self.freshness.stale else "")
        return self.freshness.reason


def _latest_job_state() -> Any:
    """A subquery: the state of a view's newest materialization job (None without jobs)."""
    try:
        from materialization.models import MaterializationJob
    except ImportError:  # pragma: no cover - the app ships with Larder
        return Value(None, output_field=CharField())
    newest = MaterializationJob.objects.filter(feature_view=OuterRef("pk")).order_by("-created_at", "-id")
    return Subquery(newest.values("state")[:1])


def _stale_views(user) -> tuple[list[StaleView], int]:
    """Views the user may see whose newest materialization job failed, or that are
    online and stale (catalog.views.freshness): the first few by project and name, and
    how many there are. One query, whatever the count."""
    views = (
        restrict(FeatureView.objects.all(), user)
        .order_by("project__name", "name")
        .annotate(last_end=Max("materialization_intervals__end"), last_job=_latest_job_state())
        .values_list("project__name", "name", "ttl", "online", "last_end", "last_job")
    )
    found = []
    for project, name, ttl, online, last_end, last_job in views:
        freshness = view_freshness(FeatureView(name=name, ttl=ttl, online=online), last_end)
        failed = last_job == "FAILED"
        if freshness.stale or failed:
            found.append(StaleView(project, name, detail_url_for("feature_view", project, name), freshness, failed))
    return found[:STALE_SHOWN], len(found)


def home(request: HttpRequest) -> HttpResponse:
    """Landing page: the projects the user may see, what each holds, and what changed lately.

    A project is listed when the user may DESCRIBE it or anything in it; every count
    goes through `restrict`, so nobody learns how many objects they cannot see.
    """
    user = request.user
    counts, visible = _visible_names(user)
    describable = set(restrict(Project.objects.all(), user).values_list("pk", flat=True))
    projects = {p.pk: p for p in Project.objects.filter(pk__in=describable | set(counts)).order_by("name")}
    cards = [
        ProjectCard(project, pk in describable, [(label, counts[pk].get(rtype, 0)) for rtype, _, label in COUNTED])
        for pk, project in projects.items()
    ]
    any_views = any(counts[pk].get("feature_view", 0) for pk in projects)
    stale, n_stale = _stale_views(user)
    context = {
        "cards": cards,
        "any_views": any_views,
        "changes": _recent_changes(user, projects, describable, visible),
        "stale": stale,
        "n_stale": n_stale,
        "stale_rule": RULE,
    }
    return render(request, "catalog/home.html", context)
