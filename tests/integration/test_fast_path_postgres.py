"""serving.fast_path on PostgreSQL (the registry query on psycopg's own connection) and
the redis online store: the fast answer equals the view's, and a revocation is seen at
once."""

from urllib.parse import urlsplit, urlunsplit

import pytest
import redis
from django.db import connection

from access.identity.personal_tokens import revoke
from access.models import ApiToken
from serving import registry_cache
from serving.online import get_online_store
from serving.online.redis import RedisOnlineStore
from tests.online_api_data import apply_repo, seed_drivers
from tests.unit.test_fast_path import REQUESTS, call, stack, token_of  # noqa: F401 - fixtures

pytestmark = [pytest.mark.integration, pytest.mark.django_db]


@pytest.fixture
def repo(tmp_path, redis_url, settings):
    assert connection.vendor == "postgresql"
    url = urlunsplit(urlsplit(redis_url)._replace(path="/14"))
    client = redis.Redis.from_url(url)
    client.flushdb()
    settings.LARDER_ONLINE_STORE = "redis"
    settings.REDIS_URL = url
    assert isinstance(get_online_store(), RedisOnlineStore)
    registry_cache.clear()
    apply_repo(tmp_path / "repo")
    seed_drivers()
    yield
    registry_cache.clear()
    client.flushdb()
    client.close()


@pytest.mark.parametrize("name", ["features", "service with an on-demand view", "project named"])
def test_fast_answers_equal_the_views_on_postgres_and_redis(stack, repo, token_of, name):  # noqa: F811
    token = token_of("reader", "service-reader")
    first = call(stack, REQUESTS[name], token)
    assert (first.status_code, first.by_django) == (200, True), first.body
    second = call(stack, REQUESTS[name], token)
    assert (second.status_code, second.by_django) == (200, False)
    assert second.body == first.body


def test_a_revoked_token_is_refused_at_once_on_postgres(stack, repo, token_of):  # noqa: F811
    token = token_of("reader")
    body = REQUESTS["features"]
    call(stack, body, token)
    assert not call(stack, body, token).by_django
    revoke(ApiToken.objects.get())
    answer = call(stack, body, token)
    assert (answer.status_code, answer.by_django) == (401, True)
