"""demo_setup: roles and users exist, are right, and a second run changes nothing."""

import io
import stat

import pytest
from django.contrib.auth.models import Group, User
from django.core.management import CommandError, call_command

from catalog.management.commands.demo_setup import DEMO_USERS, ROLES, read_credentials

pytestmark = pytest.mark.django_db


def run(credentials, monkeypatch, **kwargs) -> str:
    out = io.StringIO()
    call_command("demo_setup", credentials_file=credentials, force=True, stdout=out, **kwargs)
    return out.getvalue()


@pytest.fixture
def credentials(tmp_path, monkeypatch):
    monkeypatch.delenv("LARDER_DEMO_PASSWORD", raising=False)
    return tmp_path / "var" / "demo-credentials.txt"


def test_creates_roles_and_users_with_their_roles(credentials, monkeypatch):
    run(credentials, monkeypatch)
    assert set(Group.objects.values_list("name", flat=True)) >= {
        "data-scientist",
        "ml-engineer",
        "model-server",
        "producer",
    }
    roles = {u.username: set(u.groups.values_list("name", flat=True)) for u in User.objects.all()}
    assert roles == {
        "admin": set(),
        "scientist": {"data-scientist"},
        "engineer": {"ml-engineer"},
        "model-server": {"model-server"},
        "producer": {"producer"},
    }
    admin = User.objects.get(username="admin")
    assert admin.is_superuser and admin.is_staff
    engineer = User.objects.get(username="engineer")
    assert engineer.is_staff and not engineer.is_superuser
    scientist = User.objects.get(username="scientist")
    assert not scientist.is_staff and not scientist.is_superuser
    assert not User.objects.get(username="model-server").has_usable_password()


def test_stored_passwords_log_in_and_are_private(credentials, monkeypatch, client):
    output = run(credentials, monkeypatch)
    stored = read_credentials(credentials)
    assert set(stored) == {u.username for u in DEMO_USERS if not u.service_account}
    assert stat.S_IMODE(credentials.stat().st_mode) == 0o600
    for username, password in stored.items():
        assert password in output, "the login table shows each password"
        assert client.login(username=username, password=password), username
    assert "http://127.0.0.1:8000" in output
    assert not client.login(username="model-server", password="")


def test_second_run_is_a_no_op(credentials, monkeypatch):
    run(credentials, monkeypatch)
    first = read_credentials(credentials)
    users_before = list(User.objects.order_by("pk").values_list("pk", "username", "password", "is_staff"))
    output = run(credentials, monkeypatch)
    assert "up to date" in output
    assert read_credentials(credentials) == first
    assert list(User.objects.order_by("pk").values_list("pk", "username", "password", "is_staff")) == users_before
    assert Group.objects.filter(name__in=ROLES).count() == len(ROLES)


def test_repairs_drifted_users(credentials, monkeypatch, client):
    run(credentials, monkeypatch)
    scientist = User.objects.get(username="scientist")
    scientist.groups.clear()
    scientist.groups.add(Group.objects.get(name="ml-engineer"))
    scientist.set_password("changed-by-hand")
    scientist.is_active = False
    scientist.save()
    output = run(credentials, monkeypatch)
    assert "scientist" in output.splitlines()[0]
    scientist.refresh_from_db()
    assert set(scientist.groups.values_list("name", flat=True)) == {"data-scientist"}
    assert client.login(username="scientist", password=read_credentials(credentials)["scientist"])


def test_env_password_wins_and_is_not_stored(credentials, monkeypatch, client):
    monkeypatch.setenv("LARDER_DEMO_PASSWORD", "shared-demo-pw")
    output = run(credentials, monkeypatch)
    assert not credentials.exists()
    assert "LARDER_DEMO_PASSWORD" in output
    assert client.login(username="engineer", password="shared-demo-pw")


def test_refused_outside_demo_mode(credentials, monkeypatch, settings):
    monkeypatch.delenv("LARDER_DEMO", raising=False)
    settings.DEBUG = False
    with pytest.raises(CommandError, match="LARDER_DEMO"):
        call_command("demo_setup", credentials_file=credentials, stdout=io.StringIO())
    assert not User.objects.exists()
