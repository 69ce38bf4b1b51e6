"""On-demand feature views: features computed at request time from other features."""

from django.db import models

from .base import RegistryObject, unique_name_per_project


class OnDemandFeatureView(RegistryObject):
    """Transformation code never travels over the network: `expression` mode holds
    whitelisted expressions per output field, `python` mode a dotted path to a
    function that must already be importable on the server."""

    resource_type = "on_demand_feature_view"

    class Mode(models.TextChoices):
        EXPRESSION = "expression"
        PYTHON = "python"

    sources = models.ManyToManyField("catalog.FeatureView", related_name="on_demand_views", blank=True)
    request_sources = models.ManyToManyField("catalog.DataSource", related_name="on_demand_views", blank=True)
    mode = models.CharField(max_length=16, choices=Mode.choices, default=Mode.EXPRESSION)
    expressions = models.JSONField(default=dict, blank=True)
    function = models.CharField(max_length=512, blank=True, default="")

    class Meta(RegistryObject.Meta):
        verbose_name = "on-demand feature view"
        constraints = [unique_name_per_project("ondemandfeatureview")]
