"""`python manage.py demo_setup`: the demo's roles and users, idempotently.

Roles are Django Groups (access.principals), named as the example repo's
permissions name them (examples/driver_stats/permissions.yaml). Passwords come from
LARDER_DEMO_PASSWORD, or are generated once and kept in var/demo-credentials.txt
(git-ignored, mode 0600) so every `make run` prints logins that still work.

Refused outside the demo (LARDER_DEMO or LARDER_DEBUG unset) unless --force: known
passwords on a production registry would be a hole.
"""

import os
import secrets
import string
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.contrib.auth.models import Group, User
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from larder.settings import env_bool

DEMO_URL = "http://127.0.0.1:8000"
PASSWORD_ALPHABET = string.ascii_letters + string.digits  # nothing that is awkward to copy from a terminal


@dataclass(frozen=True)
class DemoUser:
    username: str
    role: str  # a Group name; "" for none
    what: str  # one line for the login table
    superuser: bool = False
    staff: bool = False
    service_account: bool = False  # no usable password: it will authenticate with client credentials


DEMO_USERS = [
    DemoUser("admin", "", "everything, incl. the admin site", superuser=True, staff=True),
    DemoUser("scientist", "data-scientist", "browse everything, read features online/offline"),
    DemoUser("engineer", "ml-engineer", "all actions on the project, admin site", staff=True),
    DemoUser("producer", "producer", "push rows to driver_hourly_stats_fresh"),
    DemoUser("model-server", "model-server", "service account: online reads only", service_account=True),
]
ROLES = sorted({u.role for u in DEMO_USERS if u.role})


def default_credentials_file() -> Path:
    return Path(settings.BASE_DIR) / "var" / "demo-credentials.txt"


def read_credentials(path: Path) -> dict[str, str]:
    """`username password` lines; `#` starts a comment."""
    if not path.exists():
        return {}
    found: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        parts = line.split("#", 1)[0].split()
        if len(parts) == 2:
            found[parts[0]] = parts[1]
    return found


def write_credentials(path: Path, passwords: dict[str, str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["# Larder demo logins, written by `manage.py demo_setup`. Delete this file to get new passwords."]
    lines += [f"{name} {password}" for name, password in passwords.items()]
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write("\n".join(lines) + "\n")
    os.replace(tmp, path)


def new_password(length: int = 14) -> str:
    return "".join(secrets.choice(PASSWORD_ALPHABET) for _ in range(length))


def demo_passwords(path: Path) -> dict[str, str]:
    """One password per interactive demo user: the env's, else the stored one, else a new one."""
    shared = os.environ.get("LARDER_DEMO_PASSWORD", "")
    users = [u.username for u in DEMO_USERS if not u.service_account]
    if shared:
        return dict.fromkeys(users, shared)
    stored = read_credentials(path)
    passwords = {name: stored.get(name) or new_password() for name in users}
    if passwords != {name: stored.get(name) for name in users}:
        write_credentials(path, {**stored, **passwords})  # keeps what setup_identity stored there
    return passwords


def ensure_user(spec: DemoUser, password: str | None) -> tuple[User, bool]:
    """Create or correct one demo user; return (user, changed)."""
    user, created = User.objects.get_or_create(username=spec.username)
    changed = created
    for attr, value in (("is_superuser", spec.superuser), ("is_staff", spec.staff), ("is_active", True)):
        if getattr(user, attr) != value:
            setattr(user, attr, value)
            changed = True
    if spec.service_account:
        if user.has_usable_password():
            user.set_unusable_password()
            changed = True
    elif password is not None and not user.check_password(password):
        user.set_password(password)
        changed = True
    if changed:
        user.save()
    wanted = {spec.role} if spec.role else set()
    current = set(user.groups.filter(name__in=ROLES).values_list("name", flat=True))
    if current != wanted:
        user.groups.remove(*Group.objects.filter(name__in=current - wanted))
        user.groups.add(*Group.objects.filter(name__in=wanted - current))
        changed = True
    return user, changed


class Command(BaseCommand):
    help = "Create the demo roles (Groups) and users, and print their logins. Safe to run again."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--credentials-file", type=Path, default=None, help="default: var/demo-credentials.txt")
        parser.add_argument("--force", action="store_true", help="run even when LARDER_DEMO/LARDER_DEBUG are unset")
        parser.add_argument("--url", default=DEMO_URL, help="the address shown in the login table")
        parser.add_argument(
            "--no-table", action="store_true", help="print no login table (`setup_identity --demo` prints it)"
        )

    def handle(
        self,
        *args,
        credentials_file: Path | None = None,
        force: bool = False,
        url: str = DEMO_URL,
        no_table: bool = False,
        **options,
    ) -> None:
        if not (force or settings.DEBUG or env_bool("LARDER_DEMO", False)):
            raise CommandError("demo_setup creates users with known passwords: set LARDER_DEMO=1 (or pass --force)")
        path = credentials_file or default_credentials_file()
        passwords = demo_passwords(path)
        changed = []
        with transaction.atomic():
            for role in ROLES:
                Group.objects.get_or_create(name=role)
            for spec in DEMO_USERS:
                _, was_changed = ensure_user(spec, passwords.get(spec.username))
                if was_changed:
                    changed.append(spec.username)
        summary = f"demo users: {', '.join(changed)} created or updated" if changed else "demo users: up to date"
        self.stdout.write(summary)
        if not no_table:
            self.stdout.write(login_table(passwords, path, url))


def login_table(passwords: dict[str, str], path: Path, url: str, clients: dict[str, str] | None = None) -> str:
    """The one table `make run` ends with: the demo logins and, once `setup_identity
    --demo` has made them, the service accounts' client credentials (client id -> secret)."""
    source = "LARDER_DEMO_PASSWORD" if os.environ.get("LARDER_DEMO_PASSWORD") else str(path)
    clients = clients or {}
    rows = [("user", "password", "role", "may")]
    for spec in DEMO_USERS:
        password = "(none: service account)" if spec.service_account else passwords[spec.username]
        rows.append((spec.username, password, spec.role or "superuser", spec.what))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    how = 'click "Sign in with Larder ID"' if settings.LARDER_BUILTIN_IDP else "sign in"
    lines = ["", "=" * 78, f"  Larder demo: open {url}, {how} and sign in as", ""]
    for row in rows:
        lines.append("  " + "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row[:3])) + "  " + row[3])
    lines += ["", f"  (passwords from {source})"]
    for client_id, secret in clients.items():
        lines += [
            "",
            f"  REST client {client_id} (client credentials; its roles are the user {client_id}'s):",
            f"    client id {client_id}   client secret {secret}",
            f"    curl -u {client_id}:{secret} -d grant_type=client_credentials -d scope=api {url}/o/token/",
        ]
    lines += ["=" * 78, ""]
    return "\n".join(lines)
