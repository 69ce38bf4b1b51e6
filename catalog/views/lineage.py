"""The whole-project lineage page (each detail page shows its own neighbourhood)."""

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from access.actions import Action
from access.policy import is_allowed
from catalog.lineage import build_project_graph
from catalog.models import Project

from . import panels, types


def project_lineage(request: HttpRequest, project: str) -> HttpResponse:
    """Every object of the project the viewer may DESCRIBE, and how they feed each other.
    A project in which the viewer may see nothing answers 404, like a missing one."""
    obj = Project.objects.filter(name=project).first()
    if obj is None:
        raise Http404(f"No project {project!r} that you may see.")
    graph = build_project_graph(obj, request.user)
    if not graph.nodes and not is_allowed(request.user, Action.DESCRIBE, obj):
        raise Http404(f"No project {project!r} that you may see.")
    context = {
        "project": obj,
        "page_type": types.PROJECT,
        "lineage": panels.lineage_panel(graph, None, whole=True),
        "n_nodes": len(graph.nodes),
    }
    return render(request, "catalog/lineage.html", context)
