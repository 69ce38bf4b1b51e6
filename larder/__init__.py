"""Larder's Django project package. The Celery app is loaded with Django so that
`shared_task` tasks bind to it and `transaction.on_commit(task.delay)` reaches its broker."""

from .celery import app as celery_app

__all__ = ("celery_app",)
