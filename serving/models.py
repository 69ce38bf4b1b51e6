"""Tables of the serving app: the SQL online store's rows."""

from django.db import models

from serving.historical.models import HistoricalJob  # the historical API's jobs (serving/historical)

__all__ = ["HistoricalJob", "OnlineStoreRow"]


class OnlineStoreRow(models.Model):
    """The latest row of one entity for one feature view (serving.online.sql).

    All features of the row are one serialized blob (serving.online.codec); times are
    epoch microseconds. Written and read with raw SQL on the hot paths; the model exists
    for the migration and for inspection.

    The primary key is the index reads and upserts use, and it leads with entity_key on
    purpose: with (project, view_name, ...) first, PostgreSQL with stale statistics (a
    view just loaded, before autovacuum analyzes it, or never if the view is under 10%
    of the table) plans `entity_key IN (...)` as a filter over every row of the view.
    Entity-first leaves no such prefix. No other index, for the same reason: count and
    delete_view scan the table (admin operations).
    """

    pk = models.CompositePrimaryKey("entity_key", "project", "view_name")
    project = models.CharField(max_length=255)
    view_name = models.CharField(max_length=255)
    entity_key = models.TextField()
    feature_data = models.BinaryField()
    event_ts = models.BigIntegerField()
    created_ts = models.BigIntegerField(null=True, blank=True)

    class Meta:
        db_table = "serving_online_row"

    def __str__(self) -> str:
        return f"{self.project}/{self.view_name}/{self.entity_key}"
