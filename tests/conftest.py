"""Shared fixtures: users with roles, and a permission factory."""

import os

import pytest

os.environ.setdefault("LARDER_TESTING", "1")


@pytest.fixture
def make_user(db):
    """Create a user holding the given roles (Django Groups stand for roles)."""
    from django.contrib.auth.models import Group, User

    def _make(username: str = "alice", roles: tuple[str, ...] = (), **extra) -> User:
        user = User.objects.create_user(username=username, password="pw-" + username, **extra)
        for role in roles:
            group, _ = Group.objects.get_or_create(name=role)
            user.groups.add(group)
        return user

    return _make


@pytest.fixture(autouse=True)
def _no_process_cache_carries_over():
    """Tests reconfigure providers, reuse token texts and reuse project ids in fresh
    databases: no verified token and no registry snapshot carries over from one test to
    the next."""
    from access.identity import bearer_cache
    from serving import registry_cache

    bearer_cache.clear()
    registry_cache.clear()
    yield
    bearer_cache.clear()
    registry_cache.clear()
