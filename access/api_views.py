"""The gate, applied to API views in one hook (NetBox's `BaseViewSet.initial` idea).

`GatedAPIView.initial` maps the HTTP method to the actions it needs and, for reads,
narrows the view's queryset with `restrict` before any handler runs. Writes need the
object (or the object-to-be), so they go through `get_gated_object` (DELETE) and
`authorize_apply` (POST). A handler that answers 2xx without having passed the gate
is a programming error and fails loudly (500), not silently open.

Decision on existence (docs/api.md): an object the user may not DESCRIBE is
indistinguishable from a missing one (the same 404); an object the user may see but
not change answers 403 naming the object and the action.
"""

from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.db.models import Model, QuerySet
from django.http import Http404
from rest_framework.exceptions import MethodNotAllowed
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from . import api_schema  # noqa: F401 - registers the OpenAPI extensions
from .actions import Action
from .policy import authorize, is_allowed, restrict

# POST is "apply": CREATE for a new object, DESCRIBE+UPDATE on the old and the new
# state for an existing one (Feast's registry server rule); see authorize_apply.
HTTP_ACTIONS: dict[str, tuple[Action, ...]] = {
    "GET": (Action.DESCRIBE,),
    "HEAD": (Action.DESCRIBE,),
    "POST": (Action.CREATE, Action.UPDATE),
    "DELETE": (Action.DELETE,),
}
READ_METHODS = frozenset({"GET", "HEAD"})


def _allowed(user: Any, actions: tuple[Action, ...], obj: Model) -> bool:
    """is_allowed for registry objects; for models gated through their parents
    (a Field and its view), the same question asked through restrict."""
    if getattr(obj, "resource_type", ""):
        return is_allowed(user, actions, obj)
    return restrict(type(obj)._default_manager.filter(pk=obj.pk), user, actions).exists()


class GatedAPIView(APIView):
    """Base of every API view that reads or writes registry objects.

    Subclasses set `queryset` (or override `get_base_queryset`) to what they read. For
    GET/HEAD, `self.queryset` is replaced by the objects the user may DESCRIBE before
    the handler runs; a handler filters it further, never widens it. Methods missing
    from HTTP_ACTIONS answer 405.
    """

    queryset: QuerySet | None = None
    gate_actions: tuple[Action, ...] = ()
    _gate_passed: bool = False

    def get_base_queryset(self) -> QuerySet:
        if self.queryset is None:
            raise ImproperlyConfigured(f"{type(self).__name__} names no queryset: a gated view must say what it reads")
        return self.queryset.all()

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)  # authentication and IsAuthenticatedGate first
        actions = HTTP_ACTIONS.get(request.method or "")
        if actions is None:
            raise MethodNotAllowed(request.method)
        self.gate_actions = actions
        base = self.get_base_queryset()
        if request.method in READ_METHODS:
            self.queryset = restrict(base, request.user, actions)
            self._gate_passed = True
        else:
            self.queryset = base

    def get_gated_object(self, queryset: QuerySet, not_found: str, actions: tuple[Action, ...] | None = None) -> Model:
        """The one object of `queryset` on which the user may perform `actions`
        (default: this request's). Missing, or not visible to the user: Http404 with
        `not_found`. Visible but not allowed: AccessDenied naming object and actions."""
        self._gate_passed = True
        wanted = actions or self.gate_actions
        obj = queryset.first()
        user = self.request.user
        if obj is None:
            raise Http404(not_found)
        if _allowed(user, wanted, obj):
            return obj
        if not _allowed(user, (Action.DESCRIBE,), obj):
            raise Http404(not_found)
        authorize(user, wanted, obj)  # raises AccessDenied with the object and actions
        return obj

    def authorize_apply(self, existing: Model | None, new: Model) -> None:
        """Gate an apply: CREATE on the unsaved `new` object, or DESCRIBE+UPDATE on the
        `existing` object and on its `new` state, so a retag cannot move an object out
        of the permission that allowed the change."""
        self._gate_passed = True
        user = self.request.user
        if existing is None:
            authorize(user, Action.CREATE, new)
            return
        authorize(user, (Action.DESCRIBE, Action.UPDATE), existing)
        authorize(user, (Action.DESCRIBE, Action.UPDATE), new)

    def finalize_response(self, request: Request, response: Response, *args: Any, **kwargs: Any) -> Response:
        response = super().finalize_response(request, response, *args, **kwargs)
        if 200 <= response.status_code < 300 and not self._gate_passed:
            raise ImproperlyConfigured(
                f"{type(self).__name__} answered {request.method} without passing the gate "
                "(restrict in initial, get_gated_object or authorize_apply)"
            )
        return response
