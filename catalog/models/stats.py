"""Cached statistics of a feature view's offline data (catalog.stats computes them).

One row per view, holding every feature's numbers: one scan of the source computes
them all, and one row is what a change of the view invalidates. `fingerprint` is a
digest of what the numbers depend on (the view's and its source's definitions); a
row whose fingerprint no longer matches is stale and is not shown as current.
"""

from django.db import models


class ViewStatistics(models.Model):
    feature_view = models.OneToOneField(
        "catalog.FeatureView", on_delete=models.CASCADE, primary_key=True, related_name="statistics"
    )
    computed_at = models.DateTimeField()
    fingerprint = models.CharField(max_length=32)
    # {"rows", "sampled_rows", "sampled", "source", "newest_event", "oldest_event",
    #  "features": {name: {...}}, "error"}: see catalog.stats.compute_view_statistics.
    payload = models.JSONField(default=dict)
    duration_ms = models.PositiveIntegerField(default=0)

    class Meta:
        verbose_name_plural = "view statistics"

    def __str__(self) -> str:
        return f"statistics of view {self.feature_view_id} at {self.computed_at.isoformat()}"
