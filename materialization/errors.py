"""Errors of materialization, each with the HTTP status the API answers."""

from __future__ import annotations


class MaterializationError(Exception):
    """A request that cannot run as asked; the message names the view and the reason."""

    status_code = 422


class InvalidWindow(MaterializationError):
    """Start after end, or a timestamp that cannot be read."""


class NotMaterializable(MaterializationError):
    """A view that is offline-only, has no batch source, or is not a feature view."""


class AlreadyRunning(MaterializationError):
    """The view already has a PENDING or RUNNING job (the per-view lock)."""

    status_code = 409

    def __init__(self, message: str, views: list[str], job_ids: list[int]) -> None:
        super().__init__(message)
        self.views = views
        self.job_ids = job_ids


class JobCancelled(Exception):
    """Raised inside a running partition when its job was cancelled: stop writing."""


class TransientStoreError(Exception):
    """A store that cannot be reached right now; the task retries with backoff."""
