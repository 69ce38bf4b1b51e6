"""`python manage.py setup_identity`: the built-in OIDC provider, idempotently.

- the RS256 signing key (LARDER_OIDC_SIGNING_KEY_FILE, 0600) unless
  LARDER_OIDC_SIGNING_KEY holds it;
- the portal's own client (client id LARDER_OIDC_CLIENT_ID): confidential,
  authorization code (+ PKCE, which the provider requires), RS256 ID tokens, redirect
  URI <LARDER_PUBLIC_URL>/oidc/callback/, no consent screen (first-party). Its secret
  is LARDER_OIDC_CLIENT_SECRET when set, else one generated and kept in
  LARDER_OIDC_CLIENT_SECRET_FILE (0600), where the settings read it;
- with --demo: the demo service account, a client-credentials client bound to the
  `model-server` demo user (its roles are that user's Groups), whose secret is kept in
  var/demo-credentials.txt beside the demo logins; then the demo's login table.

A second run changes nothing; a secret is replaced only when the stored one no longer
matches (a deleted file, a new database).
"""

import os
import secrets
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import check_password
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from oauth2_provider.models import get_application_model

from access.identity.signing_key import ensure_key_file
from access.models import ServiceAccount
from catalog.management.commands.demo_setup import (
    PASSWORD_ALPHABET,
    default_credentials_file,
    demo_passwords,
    login_table,
    read_credentials,
    write_credentials,
)

DEMO_SERVICE_ACCOUNT = "model-server"  # the demo user (demo_setup) and its client id
SECRET_LENGTH = 40


def new_secret() -> str:
    return "".join(secrets.choice(PASSWORD_ALPHABET) for _ in range(SECRET_LENGTH))


def write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.replace(tmp, path)


def with_loopback_twin(url: str) -> list[str]:
    """`url`, and the same on the other loopback name (127.0.0.1 <-> localhost): a demo
    opened as http://localhost:8000 signs in as well as one at 127.0.0.1."""
    parts = urlsplit(url)
    twins = {"127.0.0.1": "localhost", "localhost": "127.0.0.1"}
    if parts.hostname not in twins:
        return [url]
    netloc = twins[parts.hostname] + (f":{parts.port}" if parts.port else "")
    return [url, urlunsplit(parts._replace(netloc=netloc))]


def secret_matches(app: Any, secret: str) -> bool:
    return bool(app.pk and secret and check_password(secret, app.client_secret))


def set_fields(obj: Any, **values: Any) -> bool:
    changed = [name for name, value in values.items() if getattr(obj, name) != value]
    for name in changed:
        setattr(obj, name, values[name])
    return bool(changed)


def ensure_portal_client(public_url: str) -> tuple[Any, str]:
    """The portal's OIDC client; returns (application, what happened)."""
    application_model = get_application_model()
    client_id = settings.LARDER_OIDC_CLIENT_ID
    app = application_model.objects.filter(client_id=client_id).first()
    created = app is None
    if created:
        app = application_model(client_id=client_id)
    changed = set_fields(
        app,
        name="Larder portal",
        client_type=application_model.CLIENT_CONFIDENTIAL,
        authorization_grant_type=application_model.GRANT_AUTHORIZATION_CODE,
        algorithm=application_model.RS256_ALGORITHM,
        redirect_uris=" ".join(with_loopback_twin(f"{public_url}/oidc/callback/")),
        post_logout_redirect_uris=" ".join(with_loopback_twin(f"{public_url}{settings.LOGOUT_REDIRECT_URL}")),
        skip_authorization=True,
        hash_client_secret=True,
    )
    env_secret = settings.LARDER_OIDC_CLIENT_SECRET
    path = Path(settings.LARDER_OIDC_CLIENT_SECRET_FILE)
    stored = env_secret or (path.read_text(encoding="utf-8").strip() if path.is_file() else "")
    note = "secret unchanged"
    if not secret_matches(app, stored):
        if env_secret:
            app.client_secret, note = env_secret, "secret set from LARDER_OIDC_CLIENT_SECRET"
        else:
            secret = new_secret()
            write_private(path, secret + "\n")
            app.client_secret, note = secret, f"new secret written to {path}"
        changed = True
    if changed:
        app.save()
    what = "created" if created else ("updated" if changed else "up to date")
    return app, f"{what} ({note})"


def ensure_service_account(client_id: str, username: str, credentials: Path) -> tuple[str, str]:
    """A client-credentials client bound to the ServiceAccount of user `username`;
    returns (secret, what happened). The secret is kept in the demo credentials file."""
    application_model = get_application_model()
    user = get_user_model()._default_manager.filter(username=username).first()
    if user is None:
        raise CommandError(f"no user {username!r}: run `manage.py demo_setup` first")
    app = application_model.objects.filter(client_id=client_id).first()
    created = app is None
    if created:
        app = application_model(client_id=client_id)
    changed = set_fields(
        app,
        name=f"{username} (service account)",
        client_type=application_model.CLIENT_CONFIDENTIAL,
        authorization_grant_type=application_model.GRANT_CLIENT_CREDENTIALS,
        algorithm=application_model.NO_ALGORITHM,
        redirect_uris="",
        hash_client_secret=True,
    )
    key = f"client:{client_id}"
    stored = read_credentials(credentials)
    secret = stored.get(key, "")
    if not secret_matches(app, secret):
        secret = new_secret()
        app.client_secret = secret
        write_credentials(credentials, {**read_credentials(credentials), key: secret})
        changed = True
    if changed:
        app.save()
    account, account_created = ServiceAccount.objects.get_or_create(
        user=user, defaults={"application": app, "description": "Demo model server: online reads."}
    )
    if account.application_id != app.pk:
        account.application = app
        account.save(update_fields=["application"])
        changed = True
    what = "created" if created or account_created else ("updated" if changed else "up to date")
    return secret, what


class Command(BaseCommand):
    help = "Set up the built-in OIDC provider (signing key, the portal's client; --demo: the service account)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--demo", action="store_true", help="also the demo service account, and the login table")
        parser.add_argument("--credentials-file", type=Path, default=None, help="default: var/demo-credentials.txt")
        parser.add_argument("--url", default="", help="the address in the login table (default LARDER_PUBLIC_URL)")

    def handle(self, *args: Any, demo: bool = False, credentials_file: Path | None = None, url: str = "", **options):
        if not settings.LARDER_BUILTIN_IDP:
            raise CommandError("LARDER_BUILTIN_IDP is off: the built-in provider is not in use (docs/identity.md)")
        public_url = settings.LARDER_PUBLIC_URL.rstrip("/")
        if settings.LARDER_OIDC_SIGNING_KEY:
            self.stdout.write("signing key: from LARDER_OIDC_SIGNING_KEY")
        else:
            path = Path(settings.LARDER_OIDC_SIGNING_KEY_FILE)
            _, created = ensure_key_file(path)
            self.stdout.write(f"signing key: {'created' if created else 'kept'} {path}")
        with transaction.atomic():
            app, what = ensure_portal_client(public_url)
        self.stdout.write(f"portal client {app.client_id}: {what}; redirect URIs {app.redirect_uris}")
        if not demo:
            return
        credentials = credentials_file or default_credentials_file()
        with transaction.atomic():
            secret, what = ensure_service_account(DEMO_SERVICE_ACCOUNT, DEMO_SERVICE_ACCOUNT, credentials)
        self.stdout.write(f"service account {DEMO_SERVICE_ACCOUNT}: {what} (secret kept in {credentials})")
        passwords = demo_passwords(credentials)
        self.stdout.write(login_table(passwords, credentials, url or public_url, {DEMO_SERVICE_ACCOUNT: secret}))
