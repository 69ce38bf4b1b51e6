"""Entities: the keys features are looked up by."""

from django.db import models

from .base import RegistryObject, unique_name_per_project
from .types import DtypeChoices


class Entity(RegistryObject):
    """A Feast entity. Feast allows a single join key; we keep a list so that
    compound keys can be expressed, and the REST JSON shows the first as `joinKey`."""

    resource_type = "entity"

    join_keys = models.JSONField(default=list)
    value_type = models.CharField(max_length=32, choices=DtypeChoices.choices, blank=True, default="")

    class Meta(RegistryObject.Meta):
        verbose_name_plural = "entities"
        constraints = [unique_name_per_project("entity")]
