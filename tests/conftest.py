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
def _forget_verified_bearer_tokens():
    """Tests reconfigure providers and reuse token texts: no verified token carries over."""
    from access.identity import bearer_cache

    bearer_cache.clear()
    yield
    bearer_cache.clear()
