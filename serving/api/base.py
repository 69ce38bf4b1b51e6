"""What the feature-server endpoints share: the gate guarantee, JSON in and out, the project.

Like access.api_views.GatedAPIView, a view that answers 2xx without having passed the
gate (`self.gate`) is a programming error and fails loudly (500), never silently
open. The gate is access.policy, asked about the cached registry metadata
(serving.registry_cache.GateTarget) instead of model instances, so no per-request
ORM work beyond the project's version and the caller's permissions.

Bodies are parsed as JSON whatever the Content-Type says: `curl -d` sends form
encoding, and the Feast remote client sends none.
"""

from collections.abc import Callable, Iterable
from typing import Any

import orjson
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpResponse
from django.http.request import RawPostDataException
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.views import APIView

from access.actions import Action
from access.policy import authorize, is_allowed
from serving import registry_cache
from serving.errors import InvalidRequest, ServingError
from serving.registry_cache import GateTarget, RegistrySnapshot

from .errors import exception_handler

NO_PROJECT = (
    'project: name the project ("project" in the body, ?project=, or the server\'s LARDER_SERVING_PROJECT); '
    "it can be left out only when the server holds exactly one project"
)


def json_response(data: Any, status: int = 200) -> HttpResponse:
    return HttpResponse(orjson.dumps(data), status=status, content_type="application/json")


class ServingAPIView(APIView):
    """Base of /get-online-features, /push and /write-to-online-store (POST only)."""

    http_method_names = ["post"]
    renderer_classes = [JSONRenderer]
    _gate_passed: bool = False

    def get_exception_handler(self) -> Callable[..., Any]:
        return exception_handler

    def json_body(self, request: Request) -> dict[str, Any]:
        try:
            raw = request.body  # the raw bytes (request.data would parse by Content-Type)
        except RawPostDataException:  # a multipart body was already consumed
            raise InvalidRequest("body: a JSON object is required") from None
        try:
            body = orjson.loads(raw or b"null")
        except orjson.JSONDecodeError as exc:
            raise InvalidRequest(f"body: not valid JSON ({exc})") from None
        if not isinstance(body, dict):
            raise InvalidRequest("body: a JSON object is required")
        return body

    def project_snapshot(self, body: dict[str, Any]) -> RegistrySnapshot:
        """The registry of the project the request names (body, query, setting), or of
        the only project. A project that does not exist is empty, as one the caller may
        not see: everything in it is "not found"."""
        name = body.get("project") or self.request.query_params.get("project") or settings.LARDER_SERVING_PROJECT
        if name:
            if not isinstance(name, str):
                raise InvalidRequest("project: a project name (string) is required")
            ref = registry_cache.project_ref(name)
            return registry_cache.snapshot(ref) if ref else registry_cache.empty_snapshot(name)
        ref = registry_cache.only_project()
        if ref is None:
            raise InvalidRequest(NO_PROJECT)
        return registry_cache.snapshot(ref)

    def gate(
        self,
        actions: Action | Iterable[Action],
        target: GateTarget,
        not_found: Callable[[], ServingError] | None = None,
    ) -> None:
        """Pass when the caller may do `actions` on `target`. Otherwise: 403 naming the
        object and the actions when the caller knows the object (may DESCRIBE it, or do
        one of `actions` on it) or no `not_found` is given; else `not_found()`, the same
        answer as for a missing object."""
        user = self.request.user
        wanted = (actions,) if isinstance(actions, str) else tuple(actions)
        if is_allowed(user, wanted, target):
            self._gate_passed = True
            return
        if not_found is None or any(is_allowed(user, a, target) for a in (Action.DESCRIBE, *wanted)):
            authorize(user, wanted, target)  # raises AccessDenied naming object and actions
        raise not_found()

    def finalize_response(self, request: Request, response: Any, *args: Any, **kwargs: Any) -> Any:
        response = super().finalize_response(request, response, *args, **kwargs)
        if 200 <= response.status_code < 300 and not self._gate_passed:
            raise ImproperlyConfigured(f"{type(self).__name__} answered {request.method} without passing the gate")
        return response
