"""The registry on real PostgreSQL: migrations apply, and so does the example repo."""

import io
import shutil
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from catalog.models import FeatureView, Project, RegistryChange
from examples.driver_stats import generate

pytestmark = [pytest.mark.integration, pytest.mark.django_db]

REPO = Path(__file__).resolve().parents[2] / "examples" / "driver_stats"


def test_runs_on_postgresql_with_every_migration_applied():
    assert connection.vendor == "postgresql"
    executor = MigrationExecutor(connection)
    assert executor.migration_plan(executor.loader.graph.leaf_nodes()) == [], "unapplied migrations"
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass('catalog_featureview') IS NOT NULL")
        assert cursor.fetchone()[0]


def test_models_have_no_pending_migrations():
    call_command("makemigrations", "--check", "--dry-run", verbosity=0)


def test_example_repo_applies_on_postgresql(tmp_path):
    """The demo repo, end to end through the CLI, against PostgreSQL's constraints and locks."""
    for yaml_file in REPO.glob("*.yaml"):
        shutil.copy(yaml_file, tmp_path / yaml_file.name)
    generate.generate(tmp_path / "data")

    out = io.StringIO()
    call_command("apply", str(tmp_path), stdout=out)
    assert "Applied 21 changes to project driver_stats" in out.getvalue()
    project = Project.objects.get(name="driver_stats")
    assert FeatureView.objects.filter(project=project).count() == 4
    changes = RegistryChange.objects.count()

    out = io.StringIO()
    call_command("apply", str(tmp_path), stdout=out)
    assert "No changes to registry" in out.getvalue()
    assert RegistryChange.objects.count() == changes


def test_the_registry_connection_runs_without_jit():
    """PostgreSQL's JIT compile time dominated the search's tail (docs/benchmarks.md)."""
    with connection.cursor() as cursor:
        cursor.execute("SHOW jit")
        assert cursor.fetchone()[0] == "off"
