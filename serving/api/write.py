"""POST /write-to-online-store: rows for one feature view, straight into the online store.

Body (Feast's): `feature_view_name`, `df` (columnar); `allow_registry_cache` and
`transform_on_write` are accepted and ignored. The gate: WRITE_ONLINE on the view.
Validation and the write are serving.ingest's, shared with /push and the demo seeding.
"""

from functools import partial
from typing import Any

from rest_framework.request import Request

from access.actions import Action
from access.policy import is_allowed
from serving import ingest
from serving.errors import FeatureViewNotFound, InvalidRequest

from .base import ServingAPIView, json_response
from .schema import write_schema


class WriteToOnlineStoreView(ServingAPIView):
    """Write rows of one feature view to the online store."""

    @write_schema
    def post(self, request: Request) -> Any:
        body = self.json_body(request)
        name = body.get("feature_view_name")
        if not isinstance(name, str) or not name:
            raise InvalidRequest("feature_view_name: a feature view name (string) is required")
        columns, _ = ingest.frame_columns(body.get("df"))

        snap = self.project_snapshot(body)
        project = snap.project.name
        view = snap.feature_views.get(name)
        if view is None:
            odfv = snap.on_demand_views.get(name)
            if odfv is not None and is_allowed(request.user, Action.DESCRIBE, odfv.gate):
                raise InvalidRequest(
                    f"feature_view_name: {name} is an on-demand feature view, computed at request time: "
                    "there is nothing to write"
                )
            raise FeatureViewNotFound(name, project)
        self.gate(Action.WRITE_ONLINE, view.gate, partial(FeatureViewNotFound, name, project))
        result = ingest.write(view, ingest.prepare(view, columns))
        response = json_response(None)
        response["X-Larder-Rows-Written"] = str(result.written)
        response["X-Larder-Rows-Skipped"] = str(result.skipped)
        return response
