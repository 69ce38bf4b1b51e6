"""Feature services: named sets of features a model consumes."""

from django.db import models

from .base import RegistryObject, unique_name_per_project


class FeatureService(RegistryObject):
    resource_type = "feature_service"

    class Meta(RegistryObject.Meta):
        constraints = [unique_name_per_project("featureservice")]


class FeatureViewProjection(models.Model):
    """One view inside a service: all its features (empty `features`) or a subset,
    optionally under an alias (which `full_feature_names` then uses)."""

    feature_service = models.ForeignKey(FeatureService, on_delete=models.CASCADE, related_name="projections")
    feature_view = models.ForeignKey(
        "catalog.FeatureView", null=True, blank=True, on_delete=models.RESTRICT, related_name="projections"
    )
    on_demand_feature_view = models.ForeignKey(
        "catalog.OnDemandFeatureView", null=True, blank=True, on_delete=models.RESTRICT, related_name="projections"
    )
    features = models.JSONField(default=list, blank=True)
    alias = models.CharField(max_length=255, blank=True, default="")
    position = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["position"]
        constraints = [
            models.CheckConstraint(
                condition=(
                    models.Q(feature_view__isnull=False, on_demand_feature_view__isnull=True)
                    | models.Q(feature_view__isnull=True, on_demand_feature_view__isnull=False)
                ),
                name="projection_names_one_view",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.feature_service.name} <- {self.view_name}"

    @property
    def view(self):
        return self.feature_view or self.on_demand_feature_view

    @property
    def view_name(self) -> str:
        return self.alias or self.view.name
