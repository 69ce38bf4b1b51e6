"""POST .../feature-views/<name>/statistics/: recompute a view's statistics now.

Needs DESCRIBE and READ_OFFLINE on the view (the numbers describe its data); a view the
user may not DESCRIBE answers 404, like its page. An htmx request gets the refreshed
panel back (the feature's statistics with `?feature=<name>`, else the view's
freshness); a plain form post is redirected back to the page it came from.
"""

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.loader import render_to_string
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from access.actions import Action
from access.policy import authorize, restrict
from catalog.models import FeatureView
from catalog.stats import recompute_view_statistics
from catalog.views.types import detail_url


@require_POST
def recompute_statistics(request: HttpRequest, project: str, name: str) -> HttpResponse:
    visible = restrict(FeatureView.objects.select_related("project"), request.user)
    view = get_object_or_404(visible, project__name=project, name=name)
    authorize(
        request.user, Action.READ_OFFLINE, view
    )  # DESCRIBE: restrict above; each may come from its own permission
    recompute_view_statistics(view)
    if getattr(request, "htmx", False):
        feature_name = request.GET.get("feature")
        if feature_name:
            feature = view.fields.filter(name=feature_name).first()
            if feature is None:
                raise Http404(f"feature view {name!r} has no feature {feature_name!r}")
            template = "catalog/partials/feature_stats.html"
            context = {"feature": feature, "project": view.project}
        else:
            template = "catalog/partials/view_freshness.html"
            context = {"feature_view": view}
        return HttpResponse(render_to_string(template, context, request=request))
    target = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        target = detail_url(view, view.project.name)
    return redirect(target)
