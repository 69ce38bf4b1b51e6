"""Permissions with Feast's semantics, scoped to one project."""

import contextlib
import re

from django.core.exceptions import ValidationError
from django.db import models

from catalog.models.base import RegistryObject, unique_name_per_project

from .actions import expand_actions
from .resources import normalize_resource_type


def validate_patterns(patterns: list[str]) -> None:
    if not isinstance(patterns, list):
        raise ValidationError("name_patterns must be a list of regular expressions")
    for pattern in patterns:
        try:
            re.compile(str(pattern))
        except re.error as exc:
            raise ValidationError(f"bad regular expression {pattern!r}: {exc}") from exc


def validate_actions(actions: list[str]) -> None:
    if not isinstance(actions, list) or not actions:
        raise ValidationError("actions must be a non-empty list")
    try:
        expand_actions(actions)
    except ValueError as exc:
        raise ValidationError(str(exc)) from exc


def validate_types(types: list[str]) -> None:
    if not isinstance(types, list):
        raise ValidationError("types must be a list of resource types")
    for t in types:
        try:
            normalize_resource_type(t)
        except ValueError as exc:
            raise ValidationError(str(exc)) from exc


class Permission(RegistryObject):
    """Grants `actions` on the objects of this project that match `types`,
    `name_patterns` (any regex full-matching the name; empty means all) and
    `required_tags` (all key=value pairs present in the object's tags), to users
    holding any of `roles` or any of `groups`.

    Empty `types` means every type, as in Feast. Nothing matching means denied.
    """

    resource_type = "permission"

    types = models.JSONField(default=list, blank=True, validators=[validate_types])
    name_patterns = models.JSONField(default=list, blank=True, validators=[validate_patterns])
    required_tags = models.JSONField(default=dict, blank=True)
    actions = models.JSONField(default=list, validators=[validate_actions])
    roles = models.JSONField(default=list, blank=True)
    groups = models.JSONField(default=list, blank=True)

    class Meta(RegistryObject.Meta):
        constraints = [unique_name_per_project("permission")]

    def clean(self) -> None:
        super().clean()
        if not self.roles and not self.groups:
            raise ValidationError("a permission needs at least one role or group in its policy")
        if not isinstance(self.required_tags, dict):
            raise ValidationError({"required_tags": "required_tags must be a mapping of tag to value"})
        # full_clean() calls clean() even after a field validator failed; that validator
        # has already named the bad type or action, so don't turn it into a 500 here.
        with contextlib.suppress(TypeError, ValueError):
            self.normalize()

    def normalize(self) -> None:
        """Store Feast spellings and shorthands canonically (`FeatureView` -> `feature_view`,
        `READ` -> `READ_OFFLINE, READ_ONLINE`): the matcher compares these lists literally."""
        self.types = [normalize_resource_type(t) for t in self.types]
        self.actions = expand_actions(self.actions)

    def save(self, *args, **kwargs) -> None:
        # Rows saved without full_clean() (shell, scripts, tests) would otherwise keep
        # `READ` verbatim and silently never match a READ_ONLINE request.
        self.normalize()
        super().save(*args, **kwargs)
