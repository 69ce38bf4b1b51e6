"""Online stores by short type name (Feast's repo_config idea): settings name a type,
this module imports its class lazily, checks it is an OnlineStore, and keeps one
configured instance per process.

    LARDER_ONLINE_STORE=sql      the registry database (default)
    LARDER_ONLINE_STORE=redis    REDIS_URL, LARDER_REDIS_CLUSTER

A dotted path to another OnlineStore subclass also works.
"""

from __future__ import annotations

import threading

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.utils.module_loading import import_string

from .base import OnlineStore

ONLINE_STORES = {
    "sql": "serving.online.sql.SqlOnlineStore",
    "redis": "serving.online.redis.RedisOnlineStore",
}
# Settings whose change (override_settings in tests) must rebuild the store.
_SETTINGS = {"LARDER_ONLINE_STORE", "REDIS_URL", "LARDER_REDIS_CLUSTER", "DATABASES"}

_lock = threading.Lock()
_store: OnlineStore | None = None


def online_store_class(type_name: str) -> type[OnlineStore]:
    """The class a type name (or dotted path) names; ImproperlyConfigured names the choices."""
    path = ONLINE_STORES.get(type_name) or (type_name if "." in type_name else None)
    if path is None:
        choices = ", ".join(sorted(ONLINE_STORES))
        raise ImproperlyConfigured(
            f"LARDER_ONLINE_STORE={type_name!r} is not an online store: use one of {choices}, or a dotted path"
        )
    try:
        cls = import_string(path)
    except ImportError as exc:
        raise ImproperlyConfigured(f"LARDER_ONLINE_STORE={type_name!r}: cannot import {path}: {exc}") from exc
    if not (isinstance(cls, type) and issubclass(cls, OnlineStore)):
        raise ImproperlyConfigured(f"LARDER_ONLINE_STORE={type_name!r}: {path} is not an OnlineStore subclass")
    return cls


def get_online_store() -> OnlineStore:
    """The configured online store, built once per process (thread-safe)."""
    global _store
    store = _store
    if store is None:
        with _lock:
            if _store is None:
                _store = online_store_class(settings.LARDER_ONLINE_STORE).from_settings()
            store = _store
    return store


def reset_online_store() -> None:
    """Forget the cached store (settings changed, or a test wants a fresh one)."""
    global _store
    with _lock:
        _store = None


@receiver(setting_changed)
def _on_setting_changed(setting: str, **kwargs) -> None:
    if setting in _SETTINGS:
        reset_online_store()
