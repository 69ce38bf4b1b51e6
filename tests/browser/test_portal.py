"""The portal in real Chromium (issue 7): sign in, find a feature by a misspelt name
from the header's search box, open it, see its histogram drawn by plotly, follow the
lineage to its feature service and see the curl example there. Screenshots of the
pages walked are saved as test artifacts ($PYTEST_ARTIFACTS, default
var/test-artifacts/, git-ignored)."""

import re
from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from access.models import Permission
from catalog.models import DataSource, Entity, FeatureService, FeatureViewProjection, Project
from tests.unit.registry_data import make_view

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def catalog(tmp_path):
    """Project rides: view trip_stats over a Parquet file (feature avg_fare with a known
    spread), served by feature service pricing_model; role scientist may DESCRIBE and
    READ_OFFLINE everything in it (two permissions, as the demo has)."""
    t0 = datetime(2024, 1, 1, tzinfo=UTC)
    path = tmp_path / "trips.parquet"
    fares = [float(5 + (i * 7) % 40) for i in range(200)]
    pq.write_table(
        pa.table(
            {
                "rider_id": pa.array([i % 20 for i in range(200)], pa.int64()),
                "event_timestamp": pa.array(
                    [t0 + timedelta(hours=i) for i in range(200)], pa.timestamp("us", tz="UTC")
                ),
                "avg_fare": pa.array(fares, pa.float64()),
            }
        ),
        path,
    )
    project = Project.objects.create(name="rides", description="Ride-hailing features")
    rider = Entity.objects.create(project=project, name="rider", join_keys=["rider_id"], value_type="Int64")
    source = DataSource.objects.create(
        project=project, name="trips", kind="file", path=str(path), timestamp_field="event_timestamp"
    )
    view = make_view(project, "trip_stats", source, [rider], features=(("avg_fare", "Float64"),), owner="pricing@x.org")
    service = FeatureService.objects.create(project=project, name="pricing_model", description="Fares for pricing")
    FeatureViewProjection.objects.create(feature_service=service, feature_view=view, position=0)
    for name, actions in (("see", ["DESCRIBE"]), ("read", ["READ_OFFLINE", "READ_ONLINE"])):
        Permission.objects.create(project=project, name=f"scientists-{name}", actions=actions, roles=["scientist"])
    return project


@pytest.fixture
def signed_in(sign_in, catalog):
    return sign_in("sci", ("scientist",))


def test_find_a_feature_by_a_typo_see_its_histogram_follow_lineage_to_its_service(signed_in, live_server, artifacts):
    page = signed_in
    page.screenshot(path=str(artifacts / "home.png"))

    # The "/" shortcut focuses the header's box; typing shows live results (htmx, debounced).
    page.keyboard.press("/")
    box = page.locator("[data-search-box]")
    assert box.evaluate("el => el === document.activeElement")
    box.type("avg_frae", delay=40)
    dropdown = page.locator("#header-search-results")
    dropdown.locator("text=No exact match").wait_for()
    page.screenshot(path=str(artifacts / "search-dropdown.png"))
    box.press("Enter")  # the full search page
    page.wait_for_url(re.compile(r"/search/\?q=avg_frae"))
    hit = page.locator(".search-hits .hit").first
    assert "avg_fare" in hit.inner_text() and "trip_stats" in hit.inner_text()
    page.screenshot(path=str(artifacts / "search.png"))

    hit.locator("a").first.click()
    page.wait_for_url(f"{live_server.url}/projects/rides/feature-views/trip_stats/features/avg_fare/")
    chart = page.locator("#feature-stats .stats-chart")
    chart.locator(".main-svg").first.wait_for()  # plotly drew an SVG
    bars = chart.locator(".bars .point path")
    assert bars.count() == 20  # one bar per histogram bin
    # Each bar is "M x0,y0 V y1 H x1 V y0 Z": its height is |y0 - y1|, and every bin has fares.
    heights = []
    for i in range(bars.count()):
        numbers = [float(n) for n in re.findall(r"-?\d+(?:\.\d+)?", bars.nth(i).get_attribute("d"))]
        heights.append(abs(numbers[1] - numbers[2]))
    assert all(h > 0 for h in heights), heights
    stats_text = page.locator("#feature-stats").inner_text()
    assert "200" in stats_text and "Mean" in stats_text
    page.screenshot(path=str(artifacts / "feature.png"), full_page=True)

    # Lineage: the feature's view feeds the service; follow it from the relationships table.
    page.locator("details.relationships summary").click()
    page.locator("details.relationships a", has_text="pricing_model").first.click()
    page.wait_for_url(f"{live_server.url}/projects/rides/feature-services/pricing_model/")
    curl = page.locator("#curl-cmd").inner_text()
    assert "curl" in curl and "/get-online-features" in curl and '"feature_service": "pricing_model"' in curl
    page.screenshot(path=str(artifacts / "feature-service.png"), full_page=True)

    page.goto(f"{live_server.url}/projects/rides/feature-views/trip_stats/")
    page.locator("#view-freshness").wait_for()
    assert "Newest row offline" in page.locator("#view-freshness").inner_text()
    page.screenshot(path=str(artifacts / "feature-view.png"), full_page=True)
