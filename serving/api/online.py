"""POST /get-online-features (Feast's feature-server request and response; docs/api.md).

The gate: READ_ONLINE on the feature service when one is named (the service is the
grant, as in Feast); otherwise READ_ONLINE on every feature view and on-demand view
referenced, and on the source views of each on-demand view (Feast checks them too:
`utils._get_feature_views_to_use` adds them to the views it authorizes).
"""

from datetime import UTC, datetime
from typing import Any

from rest_framework.request import Request

from access.actions import Action
from serving import features
from serving.errors import InvalidRequest
from serving.online import get_online_store

from .base import ServingAPIView, json_response
from .schema import online_features_schema


def _feature_refs(value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(ref, str) for ref in value):
        raise InvalidRequest('features: a list of feature references ("view:feature") is required')
    for i, ref in enumerate(value):
        view, sep, feature = ref.partition(":")
        if not (sep and view and feature) or ":" in feature:
            raise InvalidRequest(f"features[{i}]: {ref!r} is not a feature reference of the form view:feature")
    return value


def parse_request(body: dict[str, Any]) -> tuple[list[str] | None, str | None, bool, Any]:
    """(features, feature_service, full_feature_names, entities) of a request body, or
    InvalidRequest naming the field (shared with serving.fast_path)."""
    refs, service = body.get("features"), body.get("feature_service")
    if (refs is None) == (service is None):
        raise InvalidRequest("features, feature_service: give exactly one of them")
    if service is not None and not isinstance(service, str):
        raise InvalidRequest("feature_service: a feature service name (string) is required")
    if refs is not None:
        refs = _feature_refs(refs)
    full_names = body.get("full_feature_names", False)
    if not isinstance(full_names, bool):
        raise InvalidRequest("full_feature_names: true or false is required")
    if "entities" not in body:
        raise InvalidRequest("entities: a non-empty object of column -> list of values is required")
    return refs, service, full_names, body["entities"]


class OnlineFeaturesView(ServingAPIView):
    """The latest feature values of a batch of entities."""

    @online_features_schema
    def post(self, request: Request) -> Any:
        body = self.json_body(request)
        refs, service, full_names, entities = parse_request(body)
        snap = self.project_snapshot(body)
        plan = features.plan(
            snap, refs, service, full_names, lambda target, not_found: self.gate(Action.READ_ONLINE, target, not_found)
        )
        result = features.retrieve(snap, plan, entities, get_online_store(), datetime.now(UTC))
        return json_response(result)
