"""`python manage.py seed_online_demo [PROJECT]`: the demo's online data, until materialization exists."""

from django.core.management.base import BaseCommand, CommandError, CommandParser

from serving.errors import ServingError
from serving.seed import seed_project


class Command(BaseCommand):
    help = (
        "Write the latest row per entity of each feature view's Parquet batch source into the online "
        "store, through the same validated, latest-wins write path as /write-to-online-store. A stand-in "
        "until materialization (a later issue) exists; `make run` runs it for the example repo."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("project", nargs="?", default="driver_stats", help="default: driver_stats")
        parser.add_argument("--view", action="append", dest="views", help="only this feature view (repeatable)")

    def handle(self, *args, project: str, views: list[str] | None = None, **options) -> None:
        try:
            seeded = seed_project(project, views)
        except ServingError as exc:
            raise CommandError(exc.message) from exc
        for s in seeded:
            self.stdout.write(
                f"online store: {project}/{s.view}: {s.entities} entities from {s.rows_read} rows "
                f"({s.written} written, {s.entities - s.written} already up to date)"
            )
        if not seeded:
            self.stdout.write(f"online store: no feature view of {project} reads a Parquet file")
