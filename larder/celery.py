"""The Celery app: configured from Django settings (the CELERY_* block in
larder/settings.py), tasks discovered in every installed app's `tasks` module.

    celery -A larder worker          # a worker (historical jobs, materialization)
    celery -A larder beat            # the scheduler (materialization schedules)

Without REDIS_URL the broker is kombu's filesystem transport under var/celery/, so a
worker runs beside `make run` with no server; its folders are made here, once.
"""

import os
from pathlib import Path

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "larder.settings")

app = Celery("larder")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()  # <app>.tasks of every installed app
app.autodiscover_tasks(["serving.historical"])  # and the tasks of sub-packages


def _make_broker_folders() -> None:
    """The filesystem transport reads and writes message files but never creates its folders."""
    options = app.conf.broker_transport_options or {}
    if not str(app.conf.broker_url or "").startswith("filesystem://"):
        return
    for key in ("data_folder_in", "data_folder_out", "control_folder"):
        if options.get(key):
            Path(options[key]).mkdir(parents=True, exist_ok=True)


@app.on_after_configure.connect
def _on_configured(sender: Celery, **kwargs: object) -> None:
    _make_broker_folders()
