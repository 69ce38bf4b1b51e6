"""Windows, incremental starts and partition plans (materialization.planning), without a database
except where the rules read a view's intervals."""

import itertools
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from catalog.models import DataSource, FeatureView, MaterializationInterval, Project
from materialization.errors import InvalidWindow, NotMaterializable
from materialization.planning import (
    MICROSECOND,
    Slice,
    Window,
    as_utc,
    check_view,
    check_window,
    incremental_start,
    incremental_window,
    partition_count,
    plan_partitions,
    plan_slices,
)

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


# -- windows ---------------------------------------------------------------------------------


def test_naive_timestamps_are_utc_and_offsets_are_converted():
    assert as_utc("2026-03-01T00:00:00") == datetime(2026, 3, 1, tzinfo=UTC)
    assert as_utc("2026-03-01T00:00:00Z") == datetime(2026, 3, 1, tzinfo=UTC)
    assert as_utc("2026-03-01T02:00:00+02:00") == datetime(2026, 3, 1, tzinfo=UTC)
    assert as_utc(datetime(2026, 3, 1, 2, tzinfo=timezone(timedelta(hours=2)))).tzinfo == UTC


def test_unreadable_timestamp_names_the_field():
    with pytest.raises(InvalidWindow, match="start_ts 'yesterday' is not an ISO 8601 timestamp"):
        as_utc("yesterday", "start_ts")


def test_start_after_end_is_an_error_and_equal_ends_are_a_point():
    with pytest.raises(InvalidWindow, match="start 2026-03-02T00:00:00\\+00:00 is after end 2026-03-01"):
        check_window(datetime(2026, 3, 2, tzinfo=UTC), datetime(2026, 3, 1, tzinfo=UTC))
    point = check_window(NOW, NOW)
    assert point.start == point.end == NOW


# -- incremental start (Feast's rules) ------------------------------------------------------------


def test_incremental_starts_at_the_last_interval_end():
    last = datetime(2026, 3, 9, tzinfo=UTC)
    assert incremental_start(last, timedelta(hours=2), NOW) == last


def test_incremental_without_interval_starts_at_now_minus_ttl():
    assert incremental_start(None, timedelta(days=2), NOW) == NOW - timedelta(days=2)


def test_incremental_without_interval_or_ttl_uses_the_default_lookback(settings):
    assert incremental_start(None, timedelta(0), NOW) == NOW - timedelta(days=364)  # Feast's 52 weeks
    settings.LARDER_MATERIALIZE_DEFAULT_LOOKBACK_DAYS = 7
    assert incremental_start(None, timedelta(0), NOW) == NOW - timedelta(days=7)


@pytest.fixture
def views(db):
    project = Project.objects.create(name="p")
    batch = DataSource.objects.create(project=project, name="batch", kind="file", path="/x", timestamp_field="ts")
    push = DataSource.objects.create(project=project, name="push", kind="push", batch_source=batch)
    lonely_push = DataSource.objects.create(project=project, name="lonely", kind="push")

    def make(name, **extra):
        return FeatureView.objects.create(project=project, name=name, source=extra.pop("source", batch), **extra)

    return {
        "plain": make("plain", ttl=timedelta(hours=6)),
        "pushed": make("pushed", source=push),
        "offline_only": make("offline_only", online=False, offline=True),
        "no_batch": make("no_batch", source=lonely_push),
    }


def test_incremental_window_reads_the_view_intervals(views):
    view = views["plain"]
    assert incremental_window(view, NOW, now=NOW) == Window(NOW - timedelta(hours=6), NOW)
    MaterializationInterval.objects.create(
        feature_view=view, start=NOW - timedelta(days=3), end=NOW - timedelta(days=2)
    )
    MaterializationInterval.objects.create(
        feature_view=view, start=NOW - timedelta(days=2), end=NOW - timedelta(hours=1)
    )
    assert incremental_window(view, NOW, now=NOW) == Window(NOW - timedelta(hours=1), NOW)
    assert incremental_window(view, NOW - timedelta(hours=1), now=NOW) is None  # already up to date


def test_only_online_views_with_a_batch_source_can_be_materialized(views):
    check_view(views["plain"])
    check_view(views["pushed"])  # a push source's batch source is read
    with pytest.raises(NotMaterializable, match="'offline_only' is offline-only"):
        check_view(views["offline_only"])
    with pytest.raises(NotMaterializable, match="push source 'lonely' has no batch source"):
        check_view(views["no_batch"])


# -- partitions -----------------------------------------------------------------------------------


def test_partition_count_follows_the_window_length(settings):
    settings.LARDER_MATERIALIZE_PARTITION_DAYS = 7
    settings.LARDER_MATERIALIZE_MAX_PARTITIONS = 8
    day = timedelta(days=1)
    assert partition_count(Window(NOW, NOW)) == 1
    assert partition_count(Window(NOW - day, NOW)) == 1
    assert partition_count(Window(NOW - 30 * day, NOW)) == 5
    assert partition_count(Window(NOW - 364 * day, NOW)) == 8  # capped
    assert partition_count(Window(NOW - day, NOW), requested=3) == 3
    assert partition_count(Window(NOW, NOW + 2 * MICROSECOND), requested=8) == 3  # one microsecond each at least
    with pytest.raises(InvalidWindow, match="at most 8"):
        partition_count(Window(NOW - day, NOW), requested=9)
    with pytest.raises(InvalidWindow, match="at least 1"):
        partition_count(Window(NOW - day, NOW), requested=0)


def test_slices_are_contiguous_half_open_microsecond_ranges():
    window = Window(datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 3, 5, tzinfo=UTC))
    slices = plan_partitions(window, 4)
    assert [s.start.day for s in slices] == [1, 2, 3, 4]
    assert slices[0].end == datetime(2026, 3, 2, tzinfo=UTC) - MICROSECOND
    assert slices[-1].end == window.end  # the window's end stays inclusive


@settings(max_examples=200, deadline=None)
@given(
    start=st.integers(0, 10**12),
    length=st.integers(0, 10**11),
    count=st.integers(1, 12),
)
def test_slices_cover_the_window_exactly(start, length, count):
    base = datetime(2020, 1, 1, tzinfo=UTC)
    window = Window(base + timedelta(microseconds=start), base + timedelta(microseconds=start + length))
    slices = plan_partitions(window, count)
    assert 1 <= len(slices) <= count
    assert slices[0].start == window.start and slices[-1].end == window.end
    for a, b in itertools.pairwise(slices):
        assert b.start == a.end + MICROSECOND  # no gap, no overlap
    assert all(s.start <= s.end for s in slices)
    sizes = [(s.end - s.start) // MICROSECOND + 1 for s in slices]
    assert max(sizes) - min(sizes) <= 1  # as equal as the microsecond grid allows


def test_slices_by_time_or_by_entity(settings):
    window = Window(datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 3, 5, tzinfo=UTC))
    by_time = plan_slices(window, 2, "time")
    assert [(s.bucket, s.buckets) for s in by_time] == [(0, 1), (0, 1)]
    assert by_time[1].window.end == window.end
    assert plan_slices(window, 3, "entity") == [Slice(window, 0, 3), Slice(window, 1, 3), Slice(window, 2, 3)]
    settings.LARDER_MATERIALIZE_PARTITION_BY = "entity"
    assert plan_slices(window, 2) == [Slice(window, 0, 2), Slice(window, 1, 2)]
    with pytest.raises(InvalidWindow, match="partition_by must be one of time, entity"):
        plan_slices(window, 2, "random")
    with pytest.raises(InvalidWindow, match="between 1 and 8"):
        plan_slices(window, 9, "entity")
