"""POST /push: rows from a producer into every feature view a push source feeds.

Body (Feast's): `push_source_name`, `df` (columnar), `to` (`online`, the default;
`offline`; `online_and_offline`); `allow_registry_cache` and `transform_on_write` are
accepted and ignored (the registry cache is never stale here; there are no write-time
transformations). The gate: WRITE_ONLINE on every feature view the source feeds, plus
WRITE_OFFLINE for `offline` / `online_and_offline`. Offline rows are appended to the
push source's batch source (serving.historical.offline_push): offline first, so a
failure there writes nothing; an online failure after it is a 500 saying the offline
rows were written (docs/api.md).

Every view's rows are validated before the first is written (serving.ingest).
"""

from functools import partial
from typing import Any

from django.db import transaction
from rest_framework.request import Request

from access.actions import Action
from access.policy import is_allowed
from serving import ingest
from serving.errors import InvalidRequest, PushSourceNotFound
from serving.historical import offline_push

from .base import ServingAPIView, json_response
from .schema import push_schema

TARGETS = {
    "online": (Action.WRITE_ONLINE,),
    "offline": (Action.WRITE_OFFLINE,),
    "online_and_offline": (Action.WRITE_ONLINE, Action.WRITE_OFFLINE),
}


class PushView(ServingAPIView):
    """Push rows to the online store through a push source."""

    @push_schema
    def post(self, request: Request) -> Any:
        body = self.json_body(request)
        name = body.get("push_source_name")
        if not isinstance(name, str) or not name:
            raise InvalidRequest("push_source_name: a push source name (string) is required")
        to = body.get("to", "online")
        if to not in TARGETS:
            raise InvalidRequest(f"to: {to!r} is not one of {', '.join(TARGETS)}")
        columns, _ = ingest.frame_columns(body.get("df"))

        snap = self.project_snapshot(body)
        project = snap.project.name
        source = snap.push_sources.get(name)
        if source is None:
            raise PushSourceNotFound(name, project)
        visible = is_allowed(request.user, Action.DESCRIBE, source.gate)
        not_found = None if visible else partial(PushSourceNotFound, name, project)
        if not source.views:
            if visible:
                raise InvalidRequest(f"push_source_name: push source {name} feeds no feature view")
            raise PushSourceNotFound(name, project)
        views = [snap.feature_views[view] for view in source.views]
        for view in views:
            self.gate(TARGETS[to], view.gate, not_found)

        prepared = [(view, ingest.prepare(view, columns)) for view in views]
        response = json_response(None)
        response.content = b""  # Feast answers an empty 200
        batch = offline_push.batch_for(snap.project.id, name, prepared) if to != "online" else None
        if batch is not None:  # offline first, all or nothing (serving.historical.offline_push)
            offline_written = offline_push.write(batch)
            response["X-Larder-Offline-Rows-Written"] = str(offline_written)
        if to == "offline":
            return response
        written = skipped = 0
        try:
            with transaction.atomic():
                for view, rows in prepared:
                    result = ingest.write(view, rows)
                    written += result.written
                    skipped += result.skipped
        except Exception as exc:
            if batch is None:
                raise
            raise offline_push.partial(batch, offline_written, exc) from exc
        response["X-Larder-Rows-Written"] = str(written)
        response["X-Larder-Rows-Skipped"] = str(skipped)
        return response
