"""Verified bearer tokens, remembered in-process so that a client calling many times a
second is not re-verified (a token-table query, a JWT signature, a TokenReview call)
on every request.

An entry is keyed by the SHA-256 of the token (the text itself is not kept) and holds
who the token stands for and the caller's roles. It is used only while

- the access epoch (access.epoch) is the one read *before* the token was verified: a
  revocation, deactivation, role change or permission edit anywhere advances it, and
  the very next request of every process verifies again (no stale window);
- the credential has not expired, and at most LARDER_BEARER_CACHE_SECONDS have passed
  (a bound for revocations the database never hears of: an external IdP's), or the
  verifier's own period when it has one (`verify.cache_seconds`, Kubernetes').

Verifiers may also define `verify.on_cached_use(auth_info)`, called on each use
answered from here (personal tokens record their last use).

Callers get a copy of the user: per-request memos (access.policy's permission list)
must never outlive the request.
"""

from __future__ import annotations

import copy
import hashlib
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings

from access.principals import MEMOS, Principal, principal_for

MAX_ENTRIES = 10_000
_lock = threading.Lock()
_entries: dict[bytes, CachedIdentity] = {}


@dataclass(frozen=True, slots=True)
class CachedIdentity:
    user: Any
    auth_info: Any
    principal: Principal
    epoch: int
    deadline: float  # time.monotonic() after which the entry is not used
    verifier: Any

    def request_user(self) -> Any:
        """A copy of the user for one request, its principal already known."""
        user = _without_memos(self.user)
        user._larder_principal = self.principal
        return user


def _without_memos(user: Any) -> Any:
    """A copy of `user` without access.principals' per-request memos."""
    user = copy.copy(user)
    for attr in MEMOS:
        user.__dict__.pop(attr, None)
    return user


def _key(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def _expiry(auth_info: Any) -> float | None:
    """Seconds the credential itself stays valid, when the verifier tells (ApiToken's
    expires_at, an OAuth AccessToken's expires, a JWT's exp)."""
    now = time.time()
    for attr in ("expires_at", "expires"):
        value = getattr(auth_info, attr, None)
        if isinstance(value, datetime):
            return value.timestamp() - now
    if isinstance(auth_info, dict) and isinstance(auth_info.get("exp"), int | float):
        return float(auth_info["exp"]) - now
    return None


def lookup(token: str, epoch: int) -> CachedIdentity | None:
    entry = _entries.get(_key(token))
    if entry is None or entry.epoch != epoch or time.monotonic() >= entry.deadline:
        return None
    on_hit = getattr(entry.verifier, "on_cached_use", None)
    if on_hit is not None:
        on_hit(entry.auth_info)
    return entry


def remember(token: str, epoch: int, user: Any, auth_info: Any, verifier: Any) -> None:
    """Keep a token just verified under `epoch`, read before verifying it."""
    ttl = float(settings.LARDER_BEARER_CACHE_SECONDS)
    own_limit = getattr(verifier, "cache_seconds", None)  # a verifier with its own cache period
    if own_limit is not None:
        ttl = min(ttl, float(own_limit()))
    if ttl <= 0:
        return
    left = _expiry(auth_info)
    if left is not None:
        ttl = min(ttl, left)
    if ttl <= 0:
        return
    cached_user = _without_memos(user)
    entry = CachedIdentity(cached_user, auth_info, principal_for(cached_user), epoch, time.monotonic() + ttl, verifier)
    with _lock:
        if len(_entries) >= MAX_ENTRIES:
            _entries.clear()
        _entries[_key(token)] = entry


def clear() -> None:
    with _lock:
        _entries.clear()
