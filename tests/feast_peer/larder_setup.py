"""Prepares a scratch Larder for the Feast client test, in its own process.

    DATABASE_URL=sqlite:////tmp/x/larder.sqlite3 .venv/bin/python tests/feast_peer/larder_setup.py SPEC.json

Migrates the database named by the environment, applies the repo `spec["repo"]`, writes
`spec["rows"]` into the configured online store through its write path
(`serving.online`: the store Larder's endpoints read), makes the users `spec["users"]`
({username: [roles]}) and, with `spec["service_account"]` ({client_id, secret, roles}),
a service account with a client-credentials application. Prints JSON:
`{"tokens": {username: <a personal API token>}}`.

rows: {view name: {"entities": {join key: [values]}, "features": {name: [values]},
"event_timestamps": [ISO strings]}}.
"""

import io
import json
import os
import sys
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "larder.settings")


def main(spec_path: str) -> int:
    import django

    django.setup()
    from django.contrib.auth.models import Group, User
    from django.core.management import call_command

    from access.identity.personal_tokens import issue_token
    from catalog.models import FeatureView
    from serving.online import OnlineRows, ViewKey, get_online_store

    spec = json.loads(Path(spec_path).read_text())
    call_command("migrate", verbosity=0, interactive=False)
    call_command("apply", spec["repo"], stdout=io.StringIO())  # stdout is our JSON

    store = get_online_store()
    for view_name, rows in spec["rows"].items():
        view = FeatureView.objects.select_related("project").get(name=view_name, project__name=spec["project"])
        result = store.write_batch(
            ViewKey.for_feature_view(view),
            OnlineRows(
                entity_keys=rows["entities"],
                features=rows["features"],
                event_timestamps=[datetime.fromisoformat(ts) for ts in rows["event_timestamps"]],
            ),
        )
        assert result.written == len(rows["event_timestamps"]), result

    tokens = {}
    for username, roles in spec["users"].items():
        user = User.objects.create_user(username)
        for role in roles:
            user.groups.add(Group.objects.get_or_create(name=role)[0])
        tokens[username] = issue_token(user, "feast peer test", days=1)[1]

    account = spec.get("service_account")
    if account:
        make_service_account(account["client_id"], account["secret"], account["roles"])
    print(json.dumps({"tokens": tokens}))
    return 0


def make_service_account(client_id: str, secret: str, roles: list[str]) -> None:
    """A service account as docs/identity.md describes: a user with no password holding
    the roles, bound to a confidential client-credentials application."""
    from django.contrib.auth.models import Group, User
    from oauth2_provider.models import Application

    from access.models import ServiceAccount

    user = User.objects.create_user(client_id)
    user.set_unusable_password()
    user.save()
    for role in roles:
        user.groups.add(Group.objects.get_or_create(name=role)[0])
    application = Application.objects.create(
        client_id=client_id,
        client_secret=secret,
        name=client_id,
        client_type=Application.CLIENT_CONFIDENTIAL,
        authorization_grant_type=Application.GRANT_CLIENT_CREDENTIALS,
    )
    ServiceAccount.objects.create(user=user, application=application)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
