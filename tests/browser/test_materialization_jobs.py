"""The jobs page in real Chromium (issue 6): a materialization job's progress bar moves while
the job runs, without reloading the page (htmx polls the table), and ends at 100%
"succeeded". Screenshots (mid-run and done) are saved as test artifacts
($PYTEST_ARTIFACTS, default var/test-artifacts/materialization/).

The job runs in this test's thread through the real engine (DuckDB over Parquet into the
SQL online store), its partitions slowed by LARDER_MATERIALIZE_TEST_DELAY_SECONDS; the
progress callback, called between heartbeats, samples what the browser shows meanwhile.
"""

import time
from datetime import timedelta

import pytest

from catalog.models import FeatureView
from materialization import jobs
from materialization.models import JobState, Trigger
from tests.materialization_data import DAYS, REFERENCE, apply_repo

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def signed_in(sign_in, settings, tmp_path):
    settings.LARDER_MATERIALIZE_TEST_DELAY_SECONDS = 1.5
    settings.LARDER_MATERIALIZE_PROGRESS_SECONDS = 0.25
    apply_repo(tmp_path)
    return sign_in("op", ("operator",), start="/materialization/jobs/", width=1400)


def test_a_running_job_shows_live_progress(signed_in, live_server, artifacts):
    page = signed_in
    view = FeatureView.objects.select_related("project", "source").get(name="hourly")
    requests, _ = jobs.plan_requests([view], start=REFERENCE - timedelta(days=DAYS), end=REFERENCE)
    (job,) = jobs.create_jobs(requests, trigger=Trigger.UI, partitions=4)

    page.reload()
    bar = page.locator(f"#job-{job.pk} [role=progressbar]")
    assert bar.get_attribute("aria-valuenow") == "0"
    assert page.locator(f"#job-{job.pk}").get_attribute("data-state") == "PENDING"
    page.evaluate("window.__stillTheSamePage = true")  # a full reload would lose it

    seen: list[int] = []
    shot = {"taken": False, "last": 0.0}

    def observe(current, progress) -> None:
        now = time.monotonic()
        if now - shot["last"] < 0.3:
            return
        shot["last"] = now
        value = int(bar.get_attribute("aria-valuenow"))
        seen.append(value)
        if 0 < value < 100 and not shot["taken"]:
            assert page.locator(f"#job-{job.pk}").get_attribute("data-state") == "RUNNING"
            page.screenshot(path=str(artifacts / "jobs-running.png"), full_page=True)
            shot["taken"] = True

    done = jobs.run_job_inline(job, on_progress=observe)
    assert done.state == JobState.SUCCEEDED

    page.wait_for_selector(f'#job-{job.pk}[data-state="SUCCEEDED"]')
    assert bar.get_attribute("aria-valuenow") == "100"
    assert int(page.locator(f"#job-{job.pk} [data-rows-written]").inner_text()) == done.rows_written > 0
    page.screenshot(path=str(artifacts / "jobs-done.png"), full_page=True)

    moving = [v for v in seen if 0 < v < 100]
    assert len(set(moving)) >= 2, seen  # the bar moved at least twice while the job ran
    assert seen == sorted(seen)  # and only forward
    assert page.evaluate("window.__stillTheSamePage") is True  # live updates, not reloads
    assert shot["taken"] and (artifacts / "jobs-running.png").stat().st_size > 0
