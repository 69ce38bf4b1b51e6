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
