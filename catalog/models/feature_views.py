"""Feature views, their fields, and the materialization intervals they keep."""

from datetime import timedelta

from django.db import models

from .base import RegistryObject, unique_name_per_project
from .types import DtypeChoices


class FeatureView(RegistryObject):
    """A group of features read from one source and keyed by entities.

    `ttl` of zero means unlimited lookback (Feast's `timedelta(0)`).
    """

    resource_type = "feature_view"

    entities = models.ManyToManyField("catalog.Entity", related_name="feature_views", blank=True)
    source = models.ForeignKey("catalog.DataSource", on_delete=models.RESTRICT, related_name="feature_views")
    ttl = models.DurationField(default=timedelta(0))
    online = models.BooleanField(default=True)
    offline = models.BooleanField(default=False)

    class Meta(RegistryObject.Meta):
        constraints = [unique_name_per_project("featureview")]

    @property
    def batch_source(self):
        """The source historical retrieval and materialization read (a push source's batch source)."""
        return self.source.batch_source if self.source.kind == "push" else self.source


class Field(models.Model):
    """One feature of a feature view (or one output of an on-demand view), a row of
    its own so single features can be searched and documented."""

    feature_view = models.ForeignKey(
        FeatureView, null=True, blank=True, on_delete=models.CASCADE, related_name="fields"
    )
    on_demand_feature_view = models.ForeignKey(
        "catalog.OnDemandFeatureView", null=True, blank=True, on_delete=models.CASCADE, related_name="fields"
    )
    name = models.CharField(max_length=255)
    dtype = models.CharField(max_length=32, choices=DtypeChoices.choices)
    description = models.TextField(blank=True, default="")
    tags = models.JSONField(default=dict, blank=True)
    position = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["position", "name"]
        constraints = [
            models.UniqueConstraint(fields=["feature_view", "name"], name="field_unique_per_view"),
            models.UniqueConstraint(fields=["on_demand_feature_view", "name"], name="field_unique_per_odfv"),
            models.CheckConstraint(
                condition=(
                    models.Q(feature_view__isnull=False, on_demand_feature_view__isnull=True)
                    | models.Q(feature_view__isnull=True, on_demand_feature_view__isnull=False)
                ),
                name="field_belongs_to_one_view",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.view_name}:{self.name}"

    @staticmethod
    def gate_through(queryset: models.QuerySet, user, actions) -> models.QuerySet:
        """A feature is visible when its view is: restrict() defers to the parent views."""
        from access.policy import restrict

        from .on_demand import OnDemandFeatureView

        return queryset.filter(
            models.Q(feature_view__in=restrict(FeatureView.objects.all(), user, actions))
            | models.Q(on_demand_feature_view__in=restrict(OnDemandFeatureView.objects.all(), user, actions))
        )

    @property
    def view(self):
        return self.feature_view or self.on_demand_feature_view

    @property
    def view_name(self) -> str:
        return self.view.name


class MaterializationInterval(models.Model):
    """A window [start, end] that was materialized into the online store.

    Lives beside the view, not inside its definition, so re-applying the view keeps
    it (Feast loses them on apply, feast#3228)."""

    feature_view = models.ForeignKey(FeatureView, on_delete=models.CASCADE, related_name="materialization_intervals")
    start = models.DateTimeField()
    end = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["feature_view", "end"]

    def __str__(self) -> str:
        return f"{self.feature_view.name}: {self.start.isoformat()} .. {self.end.isoformat()}"
