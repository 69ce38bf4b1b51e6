"""Delete expired historical job results (the hourly Celery beat task does the same)."""

from typing import Any

from django.core.management.base import BaseCommand

from serving.historical.jobs import cleanup_expired


class Command(BaseCommand):
    help = "Delete historical job results past LARDER_HISTORICAL_RESULT_TTL_HOURS, and orphaned result files."

    def handle(self, *args: Any, **options: Any) -> None:
        removed = cleanup_expired()
        self.stdout.write(f"removed {removed} expired result file(s)")
