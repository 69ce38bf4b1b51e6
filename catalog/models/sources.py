"""Data sources: where feature rows come from."""

from django.db import models

from .base import RegistryObject, unique_name_per_project


class DataSource(RegistryObject):
    """A batch, push or request source. Kind-specific settings live in plain columns
    (not a JSON blob) so they can be validated, filtered and shown.

    - file: `path` is a Parquet file or a folder of Parquet files.
    - postgres: `table` or `query`, and `dsn_setting`, the name of the environment
      variable/setting that holds the connection string (never the secret itself).
    - push: `batch_source` receives rows pushed offline.
    - request: `schema` lists request-time fields `[{name, dtype}]`.
    """

    resource_type = "data_source"

    class Kind(models.TextChoices):
        FILE = "file", "Parquet file or folder"
        POSTGRES = "postgres", "PostgreSQL table or query"
        PUSH = "push", "Push source"
        REQUEST = "request", "Request source"

    kind = models.CharField(max_length=16, choices=Kind.choices)
    timestamp_field = models.CharField(max_length=255, blank=True, default="")
    created_timestamp_column = models.CharField(max_length=255, blank=True, default="")
    field_mapping = models.JSONField(default=dict, blank=True)
    path = models.CharField(max_length=1024, blank=True, default="")
    table = models.CharField(max_length=255, blank=True, default="")
    query = models.TextField(blank=True, default="")
    dsn_setting = models.CharField(max_length=255, blank=True, default="")
    batch_source = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.RESTRICT, related_name="push_sources"
    )
    schema = models.JSONField(default=list, blank=True)

    class Meta(RegistryObject.Meta):
        constraints = [unique_name_per_project("datasource")]
