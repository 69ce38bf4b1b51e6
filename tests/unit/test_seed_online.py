"""`manage.py seed_online_demo`: the latest row per entity of the example Parquet files,
through the /write-to-online-store path, then served to the demo's model-server role."""

import io
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client

from access.identity.personal_tokens import issue_token
from catalog.models import Project
from catalog.repo import apply, load_repo
from examples.driver_stats import generate as gen
from serving.seed import latest_per_entity
from tests.online_api_data import columns, post

pytestmark = pytest.mark.django_db
REPO = Path(__file__).resolve().parents[2] / "examples" / "driver_stats"
TS = pa.timestamp("us", tz="UTC")


def at(hour: int) -> datetime:
    return datetime(2026, 1, 1, hour, tzinfo=UTC)


def test_latest_per_entity_breaks_ties_by_created_then_file_order():
    table = pa.table(
        {
            "driver_id": [1, 1, 1, 2, 2, 3, 3],
            "event_timestamp": pa.array([at(5), at(9), at(9), at(1), None, at(2), at(2)], TS),
            "created": pa.array([at(5), at(10), at(11), at(1), at(3), at(3), at(3)], TS),
            "v": ["old", "first", "corrected", "only", "no time", "tie-a", "tie-b"],
        }
    )
    latest = latest_per_entity(table, ["driver_id"], "event_timestamp", "created")
    assert dict(zip(latest["driver_id"].to_pylist(), latest["v"].to_pylist(), strict=True)) == {
        1: "corrected",  # same event time, later created
        2: "only",  # a row without an event time never wins
        3: "tie-b",  # same event and created time: the later row in the file
    }


@pytest.fixture
def example(tmp_path):
    """The example repo with freshly generated data (now, to the hour), applied."""
    repo = tmp_path / "driver_stats"
    shutil.copytree(REPO, repo, ignore=shutil.ignore_patterns("data", "__pycache__"))
    gen.generate(repo / "data", datetime.now(UTC), seed=3)
    definition = load_repo(repo)
    assert not definition.errors
    apply(definition)
    return repo


def test_seeds_every_file_backed_view_and_the_demo_curl_works(example, make_user):
    out = io.StringIO()
    call_command("seed_online_demo", stdout=out)
    text = out.getvalue()
    for view in ("driver_hourly_stats", "driver_hourly_stats_fresh", "customer_profile", "driver_daily_aggregates"):
        assert f"driver_stats/{view}:" in text
    assert "driver_hourly_stats: 50 entities" in text

    table = pq.read_table(example / "data" / "driver_stats.parquet").to_pandas()
    latest = table.sort_values(["event_timestamp", "created"]).groupby("driver_id").tail(1).set_index("driver_id")

    model_server = make_user("model-server", roles=("model-server",))
    client = Client(HTTP_AUTHORIZATION=f"Bearer {issue_token(model_server, 'demo', 1)[1]}")
    response = post(
        client,
        "/get-online-features",
        {
            "features": ["driver_hourly_stats:conv_rate", "driver_hourly_stats:acc_rate"],
            "entities": {"driver_id": [1001, 1002]},
        },
    )
    assert response.status_code == 200, response.content
    cols = columns(response)
    for i, driver in enumerate((1001, 1002)):
        for feature in ("conv_rate", "acc_rate"):
            expected = latest.loc[driver, feature]
            got = cols[feature]["values"][i]
            assert (got is None and expected != expected) or got == pytest.approx(float(expected))
        assert cols["conv_rate"]["statuses"][i] in ("PRESENT", "NULL_VALUE")  # fresh: inside the 1d ttl
    newest = latest.loc[1001, "event_timestamp"].to_pydatetime()
    assert datetime.now(UTC) - newest < timedelta(hours=2)
    assert cols["conv_rate"]["event_timestamps"][0] == newest.strftime("%Y-%m-%dT%H:%M:%SZ")

    again = io.StringIO()
    call_command("seed_online_demo", stdout=again)  # idempotent: everything already as new
    assert "(0 written, 50 already up to date)" in again.getvalue()


def test_unknown_project_or_view_is_a_command_error():
    Project.objects.create(name="driver_stats")
    with pytest.raises(CommandError, match="nope does not exist"):
        call_command("seed_online_demo", "nope")
    with pytest.raises(CommandError, match="no feature view"):
        call_command("seed_online_demo", "--view", "nope")
