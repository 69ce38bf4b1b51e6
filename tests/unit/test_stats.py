"""Feature statistics (catalog.stats) from a small Parquet file: every number checked
against a plain-Python computation; the cache and its invalidation; the recompute
button's permission; missing data; the charts' figures; the panels on the pages."""

import math
from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from django.test import Client

from access.models import Permission
from catalog import charts, stats
from catalog.models import DataSource, Entity, FeatureView, MaterializationInterval, Project, ViewStatistics
from tests.unit.registry_data import make_view

pytestmark = pytest.mark.django_db

T0 = datetime(2024, 1, 1, tzinfo=UTC)
X = [1.5, None, 3.0, 4.5, None, 10.0, 2.0, 7.25, 0.5, 6.0]
N = [3, 1, 4, 1, 5, 9, 2, 6, 5, 3]
S = ["a", "b", "a", None, "c", "a", "b", "a", None, "d"]
B = [True, False, True, True, None, True, False, True, True, False]


def percentile(values, q):
    """numpy.percentile's default (linear interpolation between closest ranks)."""
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q
    low, high = math.floor(pos), math.ceil(pos)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def rounded(value):
    """Floats to 9 significant digits, recursively (sums in another row order differ in the last bits)."""
    if isinstance(value, float):
        return float(f"{value:.9g}")
    if isinstance(value, dict):
        return {k: rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [rounded(v) for v in value]
    return value


@pytest.fixture
def parquet(tmp_path):
    path = tmp_path / "rows.parquet"
    table = pa.table(
        {
            "driver_id": pa.array(range(10), pa.int64()),
            "event_timestamp": pa.array([T0 + timedelta(hours=i) for i in range(10)], pa.timestamp("us", tz="UTC")),
            "x_col": pa.array(X, pa.float64()),
            "n": pa.array(N, pa.int64()),
            "s": pa.array(S, pa.string()),
            "b": pa.array(B, pa.bool_()),
        }
    )
    pq.write_table(table, path)
    return path


@pytest.fixture
def view(parquet):
    project = Project.objects.create(name="p")
    driver = Entity.objects.create(project=project, name="driver", join_keys=["driver_id"], value_type="Int64")
    source = DataSource.objects.create(
        project=project,
        name="rows",
        kind="file",
        path=str(parquet),
        timestamp_field="event_timestamp",
        field_mapping={"x_col": "x"},
    )
    return make_view(
        project,
        "v",
        source,
        [driver],
        features=(("x", "Float64"), ("n", "Int64"), ("s", "String"), ("b", "Bool")),
    )


def test_numbers_are_exactly_right(view):
    payload = stats.recompute_view_statistics(view).payload
    assert "error" not in payload
    assert payload["rows"] == 10 and payload["sample_rows"] == 10 and payload["sampled"] is False
    assert payload["oldest_event"] == T0.isoformat()
    assert payload["newest_event"] == (T0 + timedelta(hours=9)).isoformat()

    x = payload["features"]["x"]  # read through the field mapping x_col -> x
    present = [v for v in X if v is not None]
    assert (x["rows"], x["count"], x["nulls"]) == (10, 8, 2)
    assert x["null_rate"] == pytest.approx(0.2)
    assert (x["min"], x["max"]) == (0.5, 10.0)
    assert x["mean"] == pytest.approx(sum(present) / 8)
    mean = sum(present) / 8
    assert x["std"] == pytest.approx(math.sqrt(sum((v - mean) ** 2 for v in present) / 7))
    for name, q in (("p5", 0.05), ("p25", 0.25), ("p50", 0.5), ("p75", 0.75), ("p95", 0.95)):
        assert x["percentiles"][name] == pytest.approx(percentile(present, q)), name
    edges, counts = x["histogram"]["edges"], x["histogram"]["counts"]
    assert len(edges) == stats.HISTOGRAM_BINS + 1 and edges[0] == 0.5 and edges[-1] == 10.0
    width = (10.0 - 0.5) / stats.HISTOGRAM_BINS
    expected = [0] * stats.HISTOGRAM_BINS
    for v in present:
        expected[min(int((v - 0.5) // width), stats.HISTOGRAM_BINS - 1)] += 1
    assert counts == expected and sum(counts) == 8

    n = payload["features"]["n"]
    assert (n["min"], n["max"], n["nulls"]) == (1, 9, 0)
    assert n["mean"] == pytest.approx(3.9)
    assert n["percentiles"]["p50"] == pytest.approx(percentile(N, 0.5))
    assert sum(n["histogram"]["counts"]) == 10

    s = payload["features"]["s"]
    assert (s["kind"], s["count"], s["nulls"], s["distinct"]) == ("categorical", 8, 2, 4)
    assert s["top"] == [
        {"value": "a", "count": 4},
        {"value": "b", "count": 2},
        {"value": "c", "count": 1},
        {"value": "d", "count": 1},
    ]
    assert "histogram" not in s
    b = payload["features"]["b"]
    assert b["top"] == [{"value": "true", "count": 6}, {"value": "false", "count": 3}]
    assert b["nulls"] == 1


def test_large_sources_are_sampled_but_counted_in_full(view, settings):
    settings.LARDER_STATS_SAMPLE_ROWS = 4
    payload = stats.recompute_view_statistics(view).payload
    assert payload["rows"] == 10 and payload["sample_rows"] == 4 and payload["sampled"] is True
    assert payload["features"]["n"]["rows"] == 4


def test_any_engine_stream_gives_the_same_numbers(view):
    """The pull_all path (used for engines other than DuckDB) agrees with the DuckDB scan."""
    from serving.offline.registry import engine_for
    from serving.offline.specs import view_spec

    spec = view_spec(view)
    engine = engine_for(spec.source)
    direct = stats._scan_parquet(engine, spec, 1000)
    streamed = stats._scan_stream(engine, spec, 1000)
    assert (streamed.rows, streamed.oldest, streamed.newest) == (direct.rows, direct.oldest, direct.newest)
    features = list(spec.features)
    assert rounded(stats.describe(streamed.sample, features)) == rounded(stats.describe(direct.sample, features))
    sampled = stats._scan_stream(engine, spec, 3)
    assert sampled.rows == 10 and sampled.sample.num_rows == 3


def test_statistics_are_cached_until_the_view_changes(view, django_assert_max_num_queries):
    first = stats.statistics_for(view)
    assert first is not None
    again = stats.statistics_for(view)
    assert again.computed_at == first.computed_at  # served from the cache, not recomputed
    FeatureView.objects.filter(pk=view.pk).update(description="changed", updated_at=datetime.now(UTC))
    view.refresh_from_db()
    assert stats.current_statistics(view) is None  # the definition moved on: stale
    assert stats.statistics_for(view, compute=False) is None
    recomputed = stats.statistics_for(view)
    assert recomputed.computed_at > first.computed_at
    assert ViewStatistics.objects.count() == 1


def test_big_sources_are_not_computed_by_a_page(view, settings):
    settings.LARDER_STATS_AUTO_ROWS = 5
    assert not stats.small_enough(view)
    assert stats.statistics_for(view) is None
    assert ViewStatistics.objects.count() == 0


def test_missing_data_is_a_message_not_an_error(view, tmp_path):
    missing = tmp_path / "gone.parquet"
    DataSource.objects.filter(pk=view.source_id).update(path=str(missing), updated_at=datetime.now(UTC))
    view.refresh_from_db()
    payload = stats.recompute_view_statistics(view).payload
    assert payload["error"] == f"no offline data found at {missing}"
    assert payload["features"] == {}


def test_charts_take_plain_data():
    figure = charts.as_json(charts.histogram([0, 1, 2, 4], [3, 0, 5]))
    bar = figure["data"][0]
    assert bar["type"] == "bar" and list(bar["y"]) == [3, 0, 5] and list(bar["x"]) == [0.5, 1.5, 3.0]
    with pytest.raises(ValueError, match="one edge more"):
        charts.histogram([0, 1], [1, 2])
    top = charts.as_json(charts.top_values([{"value": "a", "count": 4}, {"value": "b", "count": 2}]))
    assert list(top["data"][0]["y"]) == ["b", "a"]  # the most common on top
    timeline = charts.freshness_timeline(
        [(T0, T0 + timedelta(days=1))], [{"at": T0, "ok": False, "label": "failed"}], T0, T0 + timedelta(days=2)
    )
    data = charts.as_json(timeline)["data"]
    assert [trace["type"] for trace in data] == ["scatter", "scatter"]


# -- the pages ----------------------------------------------------------------------------


def grant(project, role, actions, types=("feature_view",)):
    Permission.objects.create(
        project=project, name=f"{role}-{'-'.join(actions)}", types=list(types), actions=actions, roles=[role]
    )


@pytest.fixture
def reader(view, make_user):
    grant(view.project, "reader", ["DESCRIBE"])
    grant(view.project, "reader", ["READ_OFFLINE"])
    return make_user("reader", roles=("reader",))


@pytest.fixture
def looker(view, make_user):
    grant(view.project, "looker", ["DESCRIBE"])
    return make_user("looker", roles=("looker",))


URL = "/projects/p/feature-views/v/statistics/"


def test_recompute_needs_describe_and_read_offline(view, reader, looker, make_user):
    assert Client().post(URL).status_code == 302  # anonymous: to the login page
    nobody = Client()
    nobody.force_login(make_user("nobody"))
    assert nobody.post(URL).status_code == 404  # cannot see the view: as if missing
    client = Client()
    client.force_login(looker)
    assert client.post(URL).status_code == 403
    assert ViewStatistics.objects.count() == 0
    client.force_login(reader)
    assert client.get(URL).status_code == 405
    response = client.post(URL, {"next": "/projects/p/feature-views/v/"})
    assert response.status_code == 302 and response["Location"] == "/projects/p/feature-views/v/"
    assert ViewStatistics.objects.get().payload["rows"] == 10
    response = client.post(URL, {"next": "https://evil.example/"})
    assert response["Location"] == "/projects/p/feature-views/v/"


def test_recompute_over_htmx_returns_the_panel(view, reader):
    client = Client()
    client.force_login(reader)
    response = client.post(f"{URL}?feature=s", HTTP_HX_REQUEST="true")
    body = response.content.decode()
    assert response.status_code == 200 and "<html" not in body
    assert 'id="feature-stats"' in body and "Distinct" in body
    response = client.post(URL, HTTP_HX_REQUEST="true")
    assert 'id="view-freshness"' in response.content.decode()


def test_feature_page_shows_the_numbers_and_histogram_data(view, reader):
    client = Client()
    client.force_login(reader)
    body = client.get("/projects/p/feature-views/v/features/x/").content.decode()
    assert 'id="feature-stats"' in body
    assert "stats-chart-" in body and '"type": "bar"' in body
    assert "Recompute statistics" in body


def test_feature_page_without_read_offline_shows_no_numbers(view, looker):
    client = Client()
    client.force_login(looker)
    response = client.get("/projects/p/feature-views/v/features/x/")
    body = response.content.decode()
    assert response.status_code == 200
    assert "you need READ_OFFLINE" in body and '"type": "bar"' not in body
    assert ViewStatistics.objects.count() == 0  # nothing computed for someone who may not read it


def test_pages_never_fail_when_the_data_is_missing(view, reader, tmp_path):
    DataSource.objects.filter(pk=view.source_id).update(path=str(tmp_path / "nope"), updated_at=datetime.now(UTC))
    client = Client()
    client.force_login(reader)
    feature = client.get("/projects/p/feature-views/v/features/x/")
    assert feature.status_code == 200
    assert f"no offline data found at {tmp_path / 'nope'}" in feature.content.decode()
    page = client.get("/projects/p/feature-views/v/")
    assert page.status_code == 200 and "no offline data found" in page.content.decode()


def test_view_page_shows_freshness_and_the_interval_timeline(view, reader):
    MaterializationInterval.objects.create(feature_view=view, start=T0, end=T0 + timedelta(days=1))
    client = Client()
    client.force_login(reader)
    body = client.get("/projects/p/feature-views/v/").content.decode()
    assert 'id="view-freshness"' in body
    assert "2024-01-01 09:00 UTC" in body  # the newest offline row
    assert "freshness-chart-" in body and "No materialization jobs yet" in body
