"""serving.fast_path: the WSGI shortcut for /get-online-features.

Each request goes through the real WSGI stack (FastOnlinePath around Django's
WSGIHandler); a counter on the inner app tells whether Django answered. The fast path
must give byte-for-byte the view's 200s, and leave every other answer to the view:
a first use of a token, denials, bad input, other paths, and every kind of revocation
the moment it is saved.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.core import signals
from django.core.handlers.wsgi import WSGIHandler
from django.db import close_old_connections
from django.test import RequestFactory

from access.identity.personal_tokens import issue_token, revoke
from access.models import Permission
from serving import registry_cache
from serving.fast_path import FastOnlinePath
from tests.online_api_data import PROJECT, apply_repo, repo_files, seed_drivers

pytestmark = pytest.mark.django_db
URL = "/get-online-features"


class CountingApp:
    """Django's WSGI handler, counting the requests that reach it."""

    def __init__(self) -> None:
        self.handler = WSGIHandler()
        self.calls = 0

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        self.calls += 1
        return self.handler(environ, start_response)


@pytest.fixture
def stack():
    # As Django's test client does: the test's transaction must survive each request.
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    registry_cache.clear()
    django = CountingApp()
    yield FastOnlinePath(django), django
    registry_cache.clear()
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def repo(tmp_path):
    apply_repo(tmp_path / "repo")
    seed_drivers()
    return tmp_path / "repo"


@pytest.fixture
def token_of(make_user):
    def _token(*roles: str, username: str = "model-server") -> str:
        return issue_token(make_user(username, roles=roles), "bench", 30)[1]

    return _token


class Answer:
    def __init__(self, status: str, headers: list[tuple[str, str]], body: bytes, by_django: bool) -> None:
        self.status_code = int(status.split()[0])
        self.headers = dict(headers)
        self.body = body
        self.by_django = by_django

    def json(self) -> Any:
        return json.loads(self.body)


def call(
    stack: tuple[FastOnlinePath, CountingApp],
    body: Any,
    token: str | None = None,
    path: str = URL,
    method: str = "post",
    **extra: str,
) -> Answer:
    app, django = stack
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token else {}
    factory = RequestFactory()
    if method == "get":
        request = factory.get(path, **headers, **extra)
    else:
        request = factory.post(path, data=data, content_type="application/json", **headers, **extra)
    before = django.calls
    captured: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        captured.update(status=status, headers=headers)

    chunks = app(request.environ, start_response)
    content = b"".join(chunks)
    if hasattr(chunks, "close"):
        chunks.close()
    return Answer(captured["status"], captured["headers"], content, django.calls > before)


REQUESTS = {
    "features": {
        "features": ["driver_hourly_stats:conv_rate", "driver_hourly_stats:acc_rate"],
        "entities": {"driver_id": [1001, 1002, 1003, 9999, 1001]},
    },
    "full names": {
        "features": ["driver_hourly_stats:conv_rate", "driver_fresh:conv_rate"],
        "entities": {"driver_id": [1001, 9999]},
        "full_feature_names": True,
    },
    "service with an on-demand view": {
        "feature_service": "ranker",
        "entities": {"driver_id": [1001, 1002], "val_to_add": [1, 2]},
    },
    "aliases": {"feature_service": "aliased", "entities": {"driver_id": [1001]}, "full_feature_names": True},
    "python on-demand view": {
        "features": ["conv_py:conv_py_val"],
        "entities": {"driver_id": [1001], "val_to_add": [3]},
    },
    "project named": {
        "features": ["driver_hourly_stats:conv_rate"],
        "entities": {"driver_id": [1001]},
        "project": PROJECT,
    },
}


@pytest.mark.parametrize("name", list(REQUESTS))
def test_a_verified_caller_is_answered_ahead_of_django_with_the_views_bytes(stack, repo, token_of, name):
    token = token_of("reader", "service-reader")
    first = call(stack, REQUESTS[name], token)
    assert first.status_code == 200, first.body
    assert first.by_django  # the first use verifies the token through DRF
    second = call(stack, REQUESTS[name], token)
    assert second.status_code == 200
    assert not second.by_django
    assert second.body == first.body
    same = ("Content-Type", "Allow", "X-Content-Type-Options", "Referrer-Policy", "X-Frame-Options")
    assert {h: second.headers.get(h) for h in same} == {h: first.headers.get(h) for h in same}
    assert second.headers["Content-Length"] == str(len(second.body))


def test_the_answer_follows_the_online_store(stack, repo, token_of):
    from tests.online_api_data import FRESH, write

    token = token_of("reader")
    body = {"features": ["driver_fresh:conv_rate"], "entities": {"driver_id": [1003]}}
    call(stack, body, token)
    assert call(stack, body, token).json()["results"][1]["statuses"] == ["NOT_FOUND"]
    write(
        "driver_fresh",
        {
            "driver_id": [1003],
            "event_timestamp": [FRESH.isoformat()],
            "conv_rate": [0.125],
            "acc_rate": [0.5],
            "avg_daily_trips": [1],
        },
    )
    fast = call(stack, body, token)
    assert not fast.by_django
    assert fast.json()["results"][1]["values"] == [0.125]


@pytest.mark.parametrize(
    "case",
    [
        "no token",
        "unknown token",
        "role without READ_ONLINE",
        "unknown view",
        "bad json",
        "missing join key",
        "other path",
        "GET",
        "host not allowed",
        "unknown project",
    ],
)
def test_everything_else_is_answered_by_django(stack, repo, token_of, case):
    reader = token_of("reader")
    good = {"features": ["driver_hourly_stats:conv_rate"], "entities": {"driver_id": [1001]}}
    assert call(stack, good, reader).by_django
    assert not call(stack, good, reader).by_django  # primed: the fast path would answer this one
    args: dict[str, Any] = {"body": good, "token": reader}
    expected = None
    if case == "no token":
        args["token"], expected = None, 401
    elif case == "unknown token":
        args["token"], expected = "lrd_AAAAAAAA_" + "x" * 32, 401
    elif case == "role without READ_ONLINE":
        describer = token_of("describer", username="describer")
        call(stack, good, describer)  # verified once, cached
        args["token"], expected = describer, 403
    elif case == "unknown view":
        args["body"], expected = {**good, "features": ["nope:conv_rate"]}, 404
    elif case == "bad json":
        args["body"], expected = b"{not json", 422
    elif case == "missing join key":
        args["body"], expected = {**good, "entities": {"customer_id": ["c1"]}}, 422
    elif case == "other path":
        args["path"], expected = "/push", 422
    elif case == "GET":
        args["method"], expected = "get", 405
    elif case == "host not allowed":
        args["HTTP_HOST"], expected = "evil.example", 400
    elif case == "unknown project":
        args["body"], expected = {**good, "project": "elsewhere"}, 404
    answer = call(stack, **args)
    assert answer.by_django
    assert answer.status_code == expected, answer.body


def test_a_revoked_token_is_refused_on_its_next_request(stack, repo, token_of, django_user_model):
    token = token_of("reader")
    body = {"features": ["driver_hourly_stats:conv_rate"], "entities": {"driver_id": [1001]}}
    call(stack, body, token)
    assert not call(stack, body, token).by_django
    from access.models import ApiToken

    revoke(ApiToken.objects.get())
    answer = call(stack, body, token)
    assert (answer.status_code, answer.by_django) == (401, True)


@pytest.mark.parametrize("change", ["role removed", "user deactivated", "permission edited", "repo applied"])
def test_losing_the_right_takes_effect_on_the_next_request(stack, repo, token_of, change):
    token = token_of("reader")
    body = {"features": ["driver_hourly_stats:conv_rate"], "entities": {"driver_id": [1001]}}
    call(stack, body, token)
    assert not call(stack, body, token).by_django
    user = Group.objects.get(name="reader").user_set.get()
    if change == "role removed":
        user.groups.remove(Group.objects.get(name="reader"))
    elif change == "user deactivated":
        user.is_active = False
        user.save()
    elif change == "permission edited":
        readers = Permission.objects.get(name="readers")
        readers.actions = ["DESCRIBE"]
        readers.save()
    elif change == "repo applied":
        files = repo_files()
        perms = files["permissions.yaml"]["permissions"]
        files["permissions.yaml"]["permissions"] = [p for p in perms if p["name"] != "readers"]
        apply_repo(repo, files)
    answer = call(stack, body, token)
    assert answer.by_django
    assert answer.status_code in (401, 403, 404)
    assert answer.status_code == (401 if change == "user deactivated" else answer.status_code)


def test_a_superuser_token_is_answered_fast_too(stack, repo, make_user):
    token = issue_token(make_user("root", is_superuser=True), "t", 1)[1]
    body = {"features": ["customer_profile:tier"], "entities": {"customer_id": ["c1"]}}
    assert call(stack, body, token).status_code == 200
    assert not call(stack, body, token).by_django


def test_it_can_be_turned_off(settings):
    from serving.fast_path import wrap

    inner = CountingApp()
    settings.LARDER_SERVING_FAST_PATH = False
    assert wrap(inner) is inner
    settings.LARDER_SERVING_FAST_PATH = True
    assert isinstance(wrap(inner), FastOnlinePath)
