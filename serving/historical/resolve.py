"""From a request's feature references (or feature service) to what the offline engines
need, through the gate.

The registry side is serving.features.plan, shared with /get-online-features, so both
APIs agree on references, feature services (aliases, all-features projections),
on-demand views and name clashes; only the action differs: READ_OFFLINE here. The
feature service is the grant when one is named (Feast's rule); otherwise every feature
view and on-demand view referenced, and each on-demand view's source views.

Missing, or invisible to the caller: 404 (serving.errors.*NotFound); visible but not
allowed: 403 naming the object and READ_OFFLINE (access.policy.AccessDenied).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from access.actions import Action
from access.policy import authorize, is_allowed
from catalog.models import FeatureView
from serving import features as online_plan
from serving import registry_cache
from serving.errors import FeatureServiceNotFound, FeatureViewNotFound, ServingError
from serving.offline.specs import ViewSpec, view_spec
from serving.registry_cache import GateTarget, RegistrySnapshot

NotFound = Callable[[], ServingError]


@dataclass(frozen=True, eq=False)
class HistoricalPlan:
    """A gated request: the views to join (each once, all its needed features), the
    on-demand views to compute after the join, and the output columns."""

    snapshot: RegistrySnapshot
    plan: online_plan.Plan
    views: tuple[tuple[ViewSpec, tuple[str, ...]], ...]
    full_feature_names: bool
    feature_service: str | None

    @property
    def project(self) -> str:
        return self.snapshot.project.name

    @property
    def project_id(self) -> int:
        return self.snapshot.project.id

    @property
    def join_keys(self) -> list[str]:
        """Join keys of every view read, in view order (the saved dataset's `join_keys`)."""
        keys: list[str] = []
        for spec, _ in self.views:
            keys += [k for k in spec.join_keys if k not in keys]
        return keys

    @property
    def feature_refs(self) -> list[str]:
        """The requested features as `view:feature` (a service's projections by alias or name)."""
        if self.feature_service is None:
            return [f"{o.view}:{o.feature}" for o in self.plan.outputs]
        service = self.snapshot.services[self.feature_service]
        return [f"{p.name_to_use}:{f}" for p in service.projections for f in p.features]

    def entity_dtypes(self) -> dict[str, str]:
        """Declared dtypes of entity columns: join keys of single-key entities, request fields."""
        dtypes: dict[str, str] = {}
        for name in self.plan.reads:
            dtypes.update({k: v for k, v in self.snapshot.feature_views[name].join_key_dtypes.items() if v})
        dtypes.update({k: v for k, v in self.plan.request_fields.items() if v})
        return dtypes


def gate_for(user: Any, on_pass: Callable[[], None] | None = None) -> online_plan.Gate:
    """A gate asking READ_OFFLINE: pass; else 403 when the caller may see the object (or no
    `not_found` is given), else `not_found()`, the answer for a missing object."""

    def gate(target: GateTarget, not_found: NotFound | None) -> None:
        if is_allowed(user, Action.READ_OFFLINE, target):
            if on_pass is not None:
                on_pass()
            return
        if not_found is None or is_allowed(user, Action.DESCRIBE, target):
            authorize(user, Action.READ_OFFLINE, target)  # raises AccessDenied naming object and action
        raise not_found()

    return gate


def snapshot_of(project: str) -> RegistrySnapshot:
    """The project's registry; a missing project is empty (everything in it "not found")."""
    ref = registry_cache.project_ref(project)
    return registry_cache.snapshot(ref) if ref else registry_cache.empty_snapshot(project)


def plan_request(
    user: Any,
    project: str,
    features: list[str] | None,
    feature_service: str | None,
    full_feature_names: bool,
    on_pass: Callable[[], None] | None = None,
) -> HistoricalPlan:
    """Resolve and gate a request. Raises ServingError subclasses (404, 422) and AccessDenied (403);
    OfflineInputError when a view's source keeps no offline rows."""
    snap = snapshot_of(project)
    if feature_service is not None and feature_service not in snap.services:
        raise FeatureServiceNotFound(feature_service, project)
    plan = online_plan.plan(snap, features, feature_service, full_feature_names, gate_for(user, on_pass))
    rows = {
        fv.name: fv
        for fv in FeatureView.objects.filter(project_id=snap.project.id, name__in=list(plan.reads))
        .select_related("project", "source__batch_source")
        .prefetch_related("fields", "entities")
    }
    views = []
    for name, wanted in plan.reads.items():
        if name not in rows:  # deleted since the snapshot was read
            raise FeatureViewNotFound(name, project)
        views.append((view_spec(rows[name], features=wanted), tuple(wanted)))
    return HistoricalPlan(snap, plan, tuple(views), full_feature_names, feature_service)
