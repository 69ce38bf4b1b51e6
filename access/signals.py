"""What advances the access epoch (access.epoch): every change that can take a right
away from a caller whose token a process has already verified and cached.

Issuing a token or adding a user grants nothing to an existing cache entry, but bumping
on every save is simpler to reason about than telling grants from revocations; the one
frequent save, `last_login` on sign-in, is left out. Bulk `QuerySet.update()` calls
send no signals: code that revokes that way calls `epoch.bump()` itself
(personal_tokens.revoke).
"""

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db.models.signals import m2m_changed, post_delete, post_save
from oauth2_provider.models import get_access_token_model

from . import epoch
from .models import ApiToken, Permission, ServiceAccount


def _bump(**_: Any) -> None:
    epoch.bump()


def _user_saved(update_fields: frozenset[str] | None = None, **kwargs: Any) -> None:
    if update_fields is not None and set(update_fields) <= {"last_login"}:
        return
    epoch.bump()


def _membership_changed(action: str, **kwargs: Any) -> None:
    if action in ("post_add", "post_remove", "post_clear"):
        epoch.bump()


def connect() -> None:
    user_model = get_user_model()
    post_save.connect(_user_saved, sender=user_model, dispatch_uid="access-epoch-user-save")
    m2m_changed.connect(_membership_changed, sender=user_model.groups.through, dispatch_uid="access-epoch-groups")
    for model in (user_model, Group, ApiToken, ServiceAccount, Permission):
        post_delete.connect(_bump, sender=model, dispatch_uid=f"access-epoch-delete-{model._meta.label}")
    for model in (Group, ApiToken, ServiceAccount, Permission):
        post_save.connect(_bump, sender=model, dispatch_uid=f"access-epoch-save-{model._meta.label}")
    # The built-in provider revokes an opaque access token by deleting it.
    post_delete.connect(_bump, sender=get_access_token_model(), dispatch_uid="access-epoch-access-token")
