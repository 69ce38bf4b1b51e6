"""Loading a feature repo: discovery, merging of sections, canonical form."""

import pytest

from catalog.repo import RepoValidationError, load_repo
from catalog.repo.testing import sample_repo, write_repo


def test_sections_of_all_files_are_merged_with_their_file(tmp_path):
    files = sample_repo()
    files["more/extra.yml"] = {"entities": [{"name": "customer"}]}
    definition = load_repo(write_repo(tmp_path, files))
    assert definition.errors == []
    assert definition.project_name == "driver_stats"
    assert set(definition.objects["entity"]) == {"driver", "customer"}
    assert definition.objects["entity"]["customer"].file == "more/extra.yml"
    assert definition.objects["feature_view"]["driver_hourly_stats"].file == "features.yaml"
    assert definition.project.file == "project.yaml"


def test_hidden_folders_and_data_are_skipped(tmp_path):
    files = sample_repo()
    files[".hidden/x.yaml"] = {"entities": [{"name": "ghost"}]}
    files["data/y.yaml"] = {"bogus_section": 1}
    definition = load_repo(write_repo(tmp_path, files))
    assert definition.errors == []
    assert "ghost" not in definition.objects["entity"]


def test_canonical_defaults_and_normalisation(tmp_path):
    files = sample_repo()
    files["entities.yaml"]["entities"].append({"name": "customer"})
    files["permissions.yaml"]["permissions"][0]["actions"] = ["read", "DESCRIBE"]
    definition = load_repo(write_repo(tmp_path, files))
    assert definition.errors == []
    customer = definition.objects["entity"]["customer"].canonical
    assert customer == {
        "name": "customer",
        "join_keys": ["customer"],
        "value_type": "",
        "description": "",
        "owner": "",
        "tags": {},
    }
    view = definition.objects["feature_view"]["driver_hourly_stats"].canonical
    assert view["ttl"] == 7200
    assert view["online"] is True and view["offline"] is False
    assert view["schema"][1] == {"name": "acc_rate", "dtype": "Float32", "description": "", "tags": {}}
    source = definition.objects["data_source"]["driver_hourly"].canonical
    assert source["path"] == str((tmp_path / "data" / "driver_stats.parquet").resolve())
    permission = definition.objects["permission"]["scientists-read"].canonical
    assert permission["types"] == ["feature_view", "on_demand_feature_view"]
    assert permission["actions"] == ["DESCRIBE", "READ_ONLINE", "READ_OFFLINE"]


@pytest.mark.parametrize(
    ("ttl", "seconds"),
    [
        (0, 0),
        (86400, 86400),
        ("90s", 90),
        ("15m", 900),
        ("2h", 7200),
        ("1d", 86400),
        ("1w", 604800),
        ("86400s", 86400),
        ("1d12h", 129600),
        ("3600", 3600),
    ],
)
def test_ttl_spellings(tmp_path, ttl, seconds):
    files = sample_repo()
    files["features.yaml"]["feature_views"][0]["ttl"] = ttl
    definition = load_repo(write_repo(tmp_path, files))
    assert definition.errors == []
    assert definition.objects["feature_view"]["driver_hourly_stats"].canonical["ttl"] == seconds


def test_missing_folder_raises(tmp_path):
    with pytest.raises(RepoValidationError, match="not a folder"):
        load_repo(tmp_path / "nope")


def test_example_repo_loads_cleanly():
    """The demo repo `make run` applies must stay valid under this format."""
    from pathlib import Path

    example = Path(__file__).resolve().parents[2] / "examples" / "driver_stats"
    if not (example / "data").exists():
        pytest.skip("example data not generated (python examples/driver_stats/generate.py)")
    definition = load_repo(example)
    assert [str(e) for e in definition.errors] == []
