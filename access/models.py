"""Permissions with Feast's semantics, scoped to one project; API tokens and service accounts."""

import contextlib
import re
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models

from catalog.models.base import RegistryObject, unique_name_per_project

from .actions import expand_actions
from .pattern_safety import backtracking_risk
from .resources import normalize_resource_type


def validate_patterns(patterns: list[str]) -> None:
    if not isinstance(patterns, list):
        raise ValidationError("name_patterns must be a list of regular expressions")
    for pattern in patterns:
        try:
            re.compile(str(pattern))
        except re.error as exc:
            raise ValidationError(f"bad regular expression {pattern!r}: {exc}") from exc
        risk = backtracking_risk(str(pattern))
        if risk:
            raise ValidationError(f"regular expression {pattern!r} refused: {risk}")


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


# --- Identity objects (issue 3): not registry objects, so not behind the Permission gate;
# each is reachable only by its owner (the token page) or a superuser (the admin).


def api_token_default_expiry() -> datetime:
    return datetime.now(UTC) + timedelta(days=settings.LARDER_API_TOKEN_DEFAULT_DAYS)


class ApiToken(models.Model):
    """A personal API token: `lrd_<prefix>_<secret>`, shown once, stored as its SHA-256.

    It carries its owner's roles (their Django Groups) at the time of each call. The
    prefix finds the row cheaply and names the token in lists; the digest proves it."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, db_index=True, editable=False)
    digest = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(default=api_token_default_expiry)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "API token"

    def __str__(self) -> str:
        return f"{self.name} (lrd_{self.prefix}_…)"

    def status(self, now: datetime | None = None) -> str:
        """`revoked`, `expired` or `active`, in that order of precedence."""
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at <= (now or datetime.now(UTC)):
            return "expired"
        return "active"


class ServiceAccount(models.Model):
    """A non-human caller: its own Django user (whose Groups an admin sets as its roles)
    and the OAuth client (client-credentials) it gets tokens with."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="service_account")
    application = models.OneToOneField(
        settings.OAUTH2_PROVIDER_APPLICATION_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="service_account",
    )
    description = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["user__username"]

    def __str__(self) -> str:
        return self.user.get_username()


class AccessEpoch(models.Model):
    """One row whose `value` grows whenever who-may-do-what can have changed outside the
    registry: a token revoked or deleted, a user deactivated, a role (group) membership
    changed, a permission edited. Processes that cache verified bearer tokens and
    permissions (access.identity.bearer_cache, serving.fast_path) compare it on every
    request, so a revocation takes effect on the next request of every process, as the
    registry's own version does (serving.registry_cache)."""

    value = models.PositiveBigIntegerField(default=0)

    class Meta:
        verbose_name = "access epoch"

    def __str__(self) -> str:
        return f"access epoch {self.value}"
