"""Saved datasets: training sets kept with the request that made them."""

from django.conf import settings
from django.db import models

from .base import RegistryObject, unique_name_per_project


class SavedDataset(RegistryObject):
    resource_type = "saved_dataset"

    features = models.JSONField(default=list)
    join_keys = models.JSONField(default=list)
    full_feature_names = models.BooleanField(default=False)
    feature_service = models.ForeignKey(
        "catalog.FeatureService", null=True, blank=True, on_delete=models.SET_NULL, related_name="saved_datasets"
    )
    storage = models.CharField(max_length=1024, help_text="Where the rows are kept (a Parquet path or a table).")
    request = models.JSONField(default=dict, blank=True, help_text="The exact request, for reproducibility.")
    min_event_timestamp = models.DateTimeField(null=True, blank=True)
    max_event_timestamp = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)

    class Meta(RegistryObject.Meta):
        constraints = [unique_name_per_project("saveddataset")]
