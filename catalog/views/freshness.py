"""Is an online feature view stale? One rule, shown on the home page and the view page.

Stale (issue 7): the view is served online (`online=True`) and either was never
materialized (no MaterializationInterval) or its newest interval ended longer ago
than its ttl — or than one day when ttl is 0 (unlimited lookback gives no natural
bound, so a day stands for "the daily job did not run").
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

DEFAULT_MAX_AGE = timedelta(days=1)
RULE = (
    "An online view is stale when it was never materialized, or its newest materialized "
    "interval ended longer ago than its ttl (one day when the ttl is 0)."
)


@dataclass(frozen=True)
class Freshness:
    online: bool
    last_end: datetime | None
    max_age: timedelta
    stale: bool
    reason: str


def max_age_of(view: Any) -> timedelta:
    return view.ttl if view.ttl and view.ttl.total_seconds() > 0 else DEFAULT_MAX_AGE


def view_freshness(view: Any, last_end: datetime | None, now: datetime | None = None) -> Freshness:
    """Freshness of `view` given the end of its newest materialization interval."""
    now = now or datetime.now(UTC)
    max_age = max_age_of(view)
    if not view.online:
        return Freshness(False, last_end, max_age, False, "offline only: not served online")
    if last_end is None:
        return Freshness(True, None, max_age, True, "never materialized")
    age = now - last_end
    if age > max_age:
        return Freshness(
            True, last_end, max_age, True, f"last materialized {_human(age)} ago (limit {_human(max_age)})"
        )
    return Freshness(True, last_end, max_age, False, f"materialized {_human(age)} ago")


def _human(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
