"""Concurrent applies of one project on PostgreSQL are serialized by the project row lock.

Each thread has its own database connection (Django connections are per thread), so
the two transactions really race: on the project's creation (unique name) and on
the plan, which each computes inside the lock.
"""

import threading

import pytest
from django.db import connection

from catalog.models import DataSource, Entity, FeatureService, FeatureView, Field, Project, RegistryChange
from catalog.repo import apply, apply_object, load_repo
from catalog.repo.canonical import load_state
from catalog.repo.testing import sample_repo, write_repo

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def _race(*definitions):
    """Apply each definition in its own thread, all released at once; return plans or errors."""
    barrier = threading.Barrier(len(definitions))
    results: list = [None] * len(definitions)

    def run(i, definition):
        try:
            barrier.wait(timeout=10)
            results[i] = apply(definition, actor=f"thread-{i}")
        except Exception as exc:  # reported by the assertion below
            results[i] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, d)) for i, d in enumerate(definitions)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads), "an apply hung"
    errors = [r for r in results if isinstance(r, Exception)]
    assert not errors, errors
    return results


def _repo(tmp_path, name, project, mutate=None):
    files = sample_repo()
    files["project.yaml"]["project"]["name"] = project
    if mutate:
        mutate(files)
    return load_repo(write_repo(tmp_path / name, files))


@pytest.mark.parametrize("project_exists", [False, True], ids=["new-project", "existing-project"])
@pytest.mark.parametrize("attempt", range(3))
def test_same_repo_applied_twice_at_once(tmp_path, attempt, project_exists):
    """Without the project lock both would plan against an empty project and collide
    (or, for a new project, race on its creation)."""
    assert connection.vendor == "postgresql"
    project = f"race_same_{attempt}_{int(project_exists)}"
    definition = _repo(tmp_path, "repo", project)
    if project_exists:
        apply_object(project, "project", definition.project.raw, None)
    first, second = _race(definition, definition)

    expected = 8 if project_exists else 9
    assert sorted([len(first), len(second)]) == [0, expected], "one apply creates everything, the other sees it done"
    assert Project.objects.filter(name=project).count() == 1
    assert Project.objects.get(name=project).version == (2 if project_exists else 1)
    assert Entity.objects.filter(project__name=project).count() == 1
    assert DataSource.objects.filter(project__name=project).count() == 3
    assert FeatureView.objects.filter(project__name=project).count() == 1
    assert Field.objects.filter(feature_view__project__name=project).count() == 3
    assert FeatureService.objects.filter(project__name=project).count() == 1
    creates = RegistryChange.objects.filter(project_name=project, action="create")
    keys = list(creates.values_list("object_type", "object_name"))
    assert len(keys) == 9 and len(set(keys)) == 9  # the project's own create included
    assert not RegistryChange.objects.filter(project_name=project).exclude(action="create").exists()


def _version_b(files):
    view = files["features.yaml"]["feature_views"][0]
    view["ttl"] = "3h"
    view["schema"] = [{"name": "conv_rate", "dtype": "Float64"}, {"name": "trips", "dtype": "Int64"}]
    files["entities.yaml"]["entities"].append({"name": "customer"})
    files["features.yaml"]["feature_services"][0]["features"] = [{"feature_view": "driver_hourly_stats"}]
    files["features.yaml"]["on_demand_feature_views"][0]["expressions"] = {
        "conv_rate_plus_val1": "conv_rate * val_to_add"
    }
    del files["permissions.yaml"]


@pytest.mark.parametrize("attempt", range(3))
def test_two_versions_at_once_end_in_one_of_them(tmp_path, attempt):
    project = f"race_versions_{attempt}"
    version_a = _repo(tmp_path, "a", project)
    version_b = _repo(tmp_path, "b", project, _version_b)
    first, second = _race(version_a, version_b) if attempt % 2 else _race(version_b, version_a)

    state = load_state(Project.objects.get(name=project)).dicts
    wanted_a, wanted_b = version_a.canonical_state(), version_b.canonical_state()
    assert state in (wanted_a, wanted_b), "the registry mixes the two versions"
    # The history replays to the same end state: the later apply's plan is the diff
    # from the earlier one's result.
    assert Project.objects.get(name=project).version == 2
    assert RegistryChange.objects.filter(project_name=project, action="create", object_type="project").count() == 1
    earlier, later = sorted([first, second], key=lambda plan: len(plan.created), reverse=True)
    assert len(earlier.created) == 9 and not earlier.updated and not earlier.deleted
    assert later.updated, "the later apply diffed against the earlier one's result"
