"""Online stores: the latest feature values per entity (interface in base, backends by type name)."""

from .base import (
    OnlineRow,
    OnlineRows,
    OnlineStore,
    OnlineStoreError,
    OnlineStoreUnavailable,
    ViewKey,
    WriteResult,
)
from .registry import get_online_store

__all__ = [
    "OnlineRow",
    "OnlineRows",
    "OnlineStore",
    "OnlineStoreError",
    "OnlineStoreUnavailable",
    "ViewKey",
    "WriteResult",
    "get_online_store",
]
