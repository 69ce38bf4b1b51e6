"""The search index: one denormalised row per registry object and per feature.

Why a table of its own: one indexed query then serves every type (issue 7's p95 <
50 ms at 10,000 views and 100,000 features), instead of nine queries ranked in
Python. The rows are derived data, rebuilt from the registry by
`catalog.search_index` (on apply, on admin edits, on `save()`, and lazily when a
project's version moved), and only read on PostgreSQL, where `search_vector` and
the trigram indexes of migration 0002 exist. SQLite reads the registry directly
(catalog.search's fallback), so the table stays empty there.
"""

from django.contrib.postgres.search import SearchVectorField
from django.db import models


class SearchDocument(models.Model):
    """What search matches and shows for one object: `object_type` is a registry
    resource type or "feature" (then `parent_*` name the view holding it)."""

    object_type = models.CharField(max_length=32)
    object_id = models.BigIntegerField()
    project = models.ForeignKey("catalog.Project", on_delete=models.CASCADE, related_name="+")
    project_name = models.CharField(max_length=255)
    name = models.CharField(max_length=255)
    # lower(name): the column the trigram index and the name tiers use.
    key = models.TextField()
    parent_type = models.CharField(max_length=32, blank=True, default="")
    parent_id = models.BigIntegerField(null=True, blank=True)
    parent_name = models.CharField(max_length=255, blank=True, default="")
    description = models.TextField(blank=True, default="")
    owner = models.CharField(max_length=255, blank=True, default="")
    tags = models.JSONField(default=dict, blank=True)
    # Weighted: A name words, B description, C tag keys and values ('simple' config).
    search_vector = SearchVectorField(null=True, blank=True)
    # Hash of the indexed content, so a resync rewrites only the rows that changed.
    digest = models.CharField(max_length=32)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["object_type", "object_id"], name="searchdoc_unique_object")]
        indexes = [
            models.Index(fields=["project", "object_type"], name="searchdoc_project_type"),
            models.Index(fields=["parent_type", "parent_id"], name="searchdoc_parent"),
        ]

    def __str__(self) -> str:
        return f"{self.object_type} {self.project_name}/{self.name}"


class SearchIndexState(models.Model):
    """The project version the index last caught up with (Project.version grows on
    every apply and admin edit), so a stale project is found with one query."""

    project = models.OneToOneField(
        "catalog.Project", on_delete=models.CASCADE, primary_key=True, related_name="search_state"
    )
    version = models.PositiveBigIntegerField(default=0)
    synced_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"search index of project {self.project_id} at version {self.version}"


class SearchTerm(models.Model):
    """Every word the index holds (names, descriptions, tags): the lexicon a misspelt
    query word is corrected against (pg_trgm similarity on this small table), before
    the corrected words go through the full-text index. Never pruned: a word no
    document holds any more only makes a correction that matches nothing."""

    word = models.CharField(max_length=64, unique=True)

    def __str__(self) -> str:
        return self.word
