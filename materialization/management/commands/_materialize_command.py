"""Shared by `materialize` and `materialize-incremental`: choosing views, running the jobs
here (default) or on the Celery workers (`--async`, `--wait`), and a progress bar.

The command line runs as the operator (like `apply`): no permission gate, trigger `cli`.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any, TextIO

from django.core.management.base import BaseCommand, CommandError
from django.db.models import Sum
from django.utils import timezone

from catalog.models import Project
from materialization import jobs
from materialization.engine import Progress
from materialization.errors import MaterializationError
from materialization.models import ACTIVE_STATES, JobState, MaterializationJob, Trigger
from materialization.planning import as_utc

BAR_WIDTH = 30


def parse_when(value: str, what: str) -> datetime:
    """An ISO 8601 timestamp (naive: UTC), or `now`."""
    if value.strip().lower() == "now":
        return timezone.now()
    try:
        return as_utc(value, what)
    except MaterializationError as exc:
        raise CommandError(str(exc)) from None


class ProgressBar:
    """`[#####.....]  45%  view  1,234 rows written` redrawn in place on a terminal; one
    line per finished partition (and at the end) when the output is not a terminal."""

    def __init__(self, out: TextIO, enabled: bool = True) -> None:
        self.out = out
        self.enabled = enabled
        self.tty = bool(getattr(out, "isatty", lambda: False)())
        self.last_draw = 0.0
        self.last_line = ""

    def due(self) -> bool:
        """Whether a redraw is worth its queries now (a terminal: 10 per second at most)."""
        return self.enabled and (not self.tty or time.monotonic() - self.last_draw >= 0.1)

    def draw(self, job: MaterializationJob, rows_written: int, force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if not force and self.tty and now - self.last_draw < 0.1:
            return
        self.last_draw = now
        filled = int(BAR_WIDTH * job.progress)
        line = (
            f"[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {job.percent:3d}%  {job.view_name}  "
            f"{job.partitions_done}/{job.partitions_total} partitions  {rows_written:,} rows written"
        )
        if self.tty:
            self.out.write(f"\r{line}")
            self.out.flush()
        elif line != self.last_line and (force or job.partitions_done != getattr(self, "_done", -1)):
            self.out.write(line + "\n")
            self._done = job.partitions_done
        self.last_line = line

    def finish(self) -> None:
        if self.enabled and self.tty:
            self.out.write("\n")


class MaterializeCommand(BaseCommand):
    incremental = False

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--views", nargs="+", metavar="VIEW", help="feature views (default: every online view)")
        parser.add_argument("--project", help="the project (default: the only one)")
        parser.add_argument("--partitions", type=int, help="partitions per view (default: one per 30 days of window)")
        parser.add_argument(
            "--partition-by", choices=["time", "entity"], help="time slices or entity hash buckets (default: time)"
        )
        parser.add_argument("--async", dest="run_async", action="store_true", help="queue on the Celery workers")
        parser.add_argument("--wait", action="store_true", help="with --async: wait, showing progress, until done")
        parser.add_argument("--no-progress", action="store_true", help="no progress bar")

    def project(self, name: str | None) -> Project:
        if name:
            project = Project.objects.filter(name=name).first()
            if project is None:
                raise CommandError(f"no project named {name!r}")
            return project
        projects = list(Project.objects.all()[:2])
        if len(projects) != 1:
            raise CommandError("name the project with --project (there is not exactly one)")
        return projects[0]

    def run(self, options: dict[str, Any], start: datetime | None, end: datetime) -> None:
        project = self.project(options.get("project"))
        try:
            views = jobs.resolve_views(project, options.get("views"))
            if not views:
                raise CommandError(f"project {project.name} has no online feature view")
            requests, up_to_date = jobs.plan_requests(views, start=start, end=end, incremental=self.incremental)
            created = jobs.create_jobs(
                requests,
                trigger=Trigger.CLI,
                partitions=options.get("partitions"),
                partition_by=options.get("partition_by"),
            )
        except MaterializationError as exc:
            raise CommandError(str(exc)) from None
        for view in up_to_date:
            self.stdout.write(f"{view.name}: already materialized up to {end.isoformat()}")
        if not created:
            return
        bar = ProgressBar(self.stdout, enabled=not options.get("no_progress"))
        if options.get("run_async"):
            from materialization.tasks import dispatch

            for job in created:
                dispatch(job)
                window = f"[{job.start.isoformat()} .. {job.end.isoformat()}]"
                self.stdout.write(f"{job.view_name}: job {job.pk} queued {window}")
            if options.get("wait"):
                self.wait(created, bar)
            return
        failed = []
        for job in created:
            self.stdout.write(
                f"Materializing {job.project_name}/{job.view_name} [{job.start.isoformat()} .. {job.end.isoformat()}]"
                f" in {job.partitions_total} partition(s)"
            )

            def show(current: MaterializationJob, progress: Progress) -> None:
                if not bar.due():
                    return
                current.refresh_from_db(fields=["partitions_done", "partitions_total", "state"])
                finished = current.partitions.filter(state=JobState.SUCCEEDED).aggregate(rows=Sum("rows_written"))
                bar.draw(current, (finished["rows"] or 0) + progress.rows_written)

            started = time.perf_counter()
            result = jobs.run_job_inline(job, on_progress=show)
            bar.draw(result, result.rows_written, force=True)
            bar.finish()
            self.report(result, time.perf_counter() - started)
            if result.state != JobState.SUCCEEDED:
                failed.append(result)
        if failed:
            raise CommandError("; ".join(f"{j.view_name} (job {j.pk}) {j.state.lower()}: {j.error}" for j in failed))

    def wait(self, created: list[MaterializationJob], bar: ProgressBar) -> None:
        pending = {j.pk for j in created}
        while pending:
            for job in MaterializationJob.objects.filter(pk__in=pending):
                bar.draw(job, job.rows_written)
                if job.state not in ACTIVE_STATES:
                    bar.draw(job, job.rows_written, force=True)
                    bar.finish()
                    self.report(job, job.duration_seconds or 0.0)
                    pending.discard(job.pk)
            time.sleep(0.5)

    def report(self, job: MaterializationJob, seconds: float) -> None:
        line = (
            f"{job.view_name}: {job.state.lower()}, {job.rows_read:,} rows read, {job.rows_written:,} written "
            f"({job.rows_skipped:,} skipped: newer online) in {seconds:.1f}s (job {job.pk})"
        )
        if job.state == JobState.SUCCEEDED:
            self.stdout.write(self.style.SUCCESS(line))
        else:
            self.stderr.write(f"{line}: {job.error}")
