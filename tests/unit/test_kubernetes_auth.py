"""Kubernetes service-account tokens (issue 3, item 6), against a local fake API server.

No real cluster: tests/fake_kube_api.py answers the TokenReview and RBAC calls over real
HTTP through the official `kubernetes` client. The test tokens are JWT-shaped but signed
by nobody: Larder never checks a Kubernetes token's signature, the TokenReview does."""

import base64
import json
import logging
import socket
import threading
import time
import uuid

import pytest
from django.contrib.auth.models import User

from access.identity import kubernetes as k8s
from access.models import Permission
from catalog.models import DataSource, Project
from tests.fake_kube_api import FakeKubeAPI
from tests.unit.registry_data import make_view

pytestmark = pytest.mark.django_db

NS = "larder"
VIEWS = "/api/v1/feature_views"
SA_GROUPS = {"system:serviceaccounts", "system:serviceaccounts:ml", "system:authenticated"}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jwt_shaped(payload: dict) -> str:
    header = {"alg": "RS256", "kid": "cluster-key"}
    signature = _b64(b"not-checked-by-larder-" + uuid.uuid4().bytes)
    return f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(payload).encode())}.{signature}"


def sa_token(ns: str = "ml", sa: str = "model-server", **extra) -> str:
    """A bound service-account token as the kubelet projects it (claims only)."""
    now = int(time.time())
    payload = {
        "aud": ["https://kubernetes.default.svc.cluster.local"],
        "exp": now + 3600,
        "iat": now,
        "nbf": now,
        "iss": "https://kubernetes.default.svc.cluster.local",
        "jti": str(uuid.uuid4()),
        "kubernetes.io": {
            "namespace": ns,
            "pod": {"name": f"{sa}-7d9f", "uid": str(uuid.uuid4())},
            "serviceaccount": {"name": sa, "uid": str(uuid.uuid4())},
        },
        "sub": f"system:serviceaccount:{ns}:{sa}",
        **extra,
    }
    return jwt_shaped(payload)


def sa_subject(sa: str = "model-server", ns: str = "ml") -> dict[str, str]:
    return {"kind": "ServiceAccount", "name": sa, "namespace": ns}


@pytest.fixture
def kube(settings, tmp_path):
    """The fake cluster, and Larder configured to call it with its own token."""
    api = FakeKubeAPI().start()
    token_file = tmp_path / "token"
    token_file.write_text(api.larder_token + "\n")
    settings.LARDER_AUTH_KUBERNETES = True
    settings.LARDER_KUBERNETES_API_URL = api.url
    settings.LARDER_KUBERNETES_TOKEN_FILE = str(token_file)
    settings.LARDER_KUBERNETES_NAMESPACE = NS
    settings.LARDER_KUBERNETES_CACHE_SECONDS = 60
    yield api
    api.stop()


@pytest.fixture
def registry():
    """Project p with views a_one and b_two; role `model-server` may DESCRIBE a_.* views,
    role `feature-reader` every view."""
    project = Project.objects.create(name="p")
    source = DataSource.objects.create(project=project, name="src", kind="file", path="x.parquet")
    for name in ("a_one", "b_two"):
        make_view(project, name, source)
    Permission.objects.create(
        project=project,
        name="model-server-reads-a",
        types=["feature_view"],
        name_patterns=["a_.*"],
        actions=["DESCRIBE"],
        roles=["model-server"],
    )
    Permission.objects.create(
        project=project, name="readers", types=["feature_view"], actions=["DESCRIBE"], roles=["feature-reader"]
    )
    return project


def bearer(token: str) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}


def view_names(response) -> list[str]:
    assert response.status_code == 200, response.content
    return sorted(item["spec"]["name"] for item in response.json()["featureViews"])


def assert_invalid(response) -> None:
    assert response.status_code == 401, response.content
    assert response.json()["detail"] == "Invalid or expired access token"
    assert response.json()["error_type"] == "AuthenticationError"


# -- service accounts ------------------------------------------------------------------


def test_service_account_gets_exactly_what_its_rolebinding_allows(client, kube, registry):
    kube.add_token(token := sa_token(), "system:serviceaccount:ml:model-server")
    kube.bind(NS, "model-server-binding", "model-server", [sa_subject()])
    # Neither a binding in another namespace nor one naming a same-named SA of another namespace counts.
    kube.bind("ml", "elsewhere", "feature-reader", [sa_subject()])
    kube.bind(NS, "staging-sa", "feature-reader", [sa_subject(ns="staging")])

    assert view_names(client.get(f"{VIEWS}?project=p", **bearer(token))) == ["a_one"]
    assert client.get(f"{VIEWS}/a_one?project=p", **bearer(token)).status_code == 200
    assert client.get(f"{VIEWS}/b_two?project=p", **bearer(token)).status_code == 404

    user = User.objects.get(username="k8s:ml:model-server")
    assert not user.has_usable_password() and not user.is_staff and not user.is_superuser
    assert set(user.groups.values_list("name", flat=True)) == {"model-server"} | SA_GROUPS

    [review] = kube.calls("tokenreviews")
    assert review.method == "POST"
    assert review.body == {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": token}}
    assert [r.path for r in kube.calls("rolebindings")] == [
        "/apis/rbac.authorization.k8s.io/v1/namespaces/larder/rolebindings"
    ]
    assert kube.calls("clusterrolebindings") == []  # service accounts: Larder's namespace only, as Feast
    assert {r.headers["authorization"] for r in kube.requests} == {"Bearer larder-own-sa-token"}


def test_unbound_service_account_has_no_roles_and_sees_nothing(client, kube, registry):
    kube.add_token(token := sa_token(sa="stranger"), "system:serviceaccount:ml:stranger")
    kube.bind(NS, "model-server-binding", "model-server", [sa_subject()])

    assert view_names(client.get(f"{VIEWS}?project=p", **bearer(token))) == []
    assert client.get(f"{VIEWS}/a_one?project=p", **bearer(token)).status_code == 404
    assert set(User.objects.get(username="k8s:ml:stranger").groups.values_list("name", flat=True)) == SA_GROUPS


def test_token_the_cluster_does_not_authenticate_is_401(client, kube, registry):
    assert_invalid(client.get(f"{VIEWS}?project=p", **bearer(sa_token())))
    assert len(kube.calls("tokenreviews")) == 1
    assert kube.calls("rolebindings") == []
    assert not User.objects.filter(username__startswith="k8s").exists()


def test_unreachable_cluster_fails_closed(client, kube, registry, settings, caplog):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        settings.LARDER_KUBERNETES_API_URL = f"http://127.0.0.1:{s.getsockname()[1]}"
    kube.add_token(token := sa_token(), "system:serviceaccount:ml:model-server")
    with caplog.at_level(logging.ERROR, logger="access.identity.kubernetes"):
        assert_invalid(client.get(f"{VIEWS}?project=p", **bearer(token)))
    assert "TokenReview failed" in caplog.text and "MaxRetryError" in caplog.text
    assert token not in caplog.text


def test_cluster_refusing_larders_credential_fails_closed(client, kube, registry, tmp_path, settings, caplog):
    (tmp_path / "wrong").write_text("not-larders-token")
    settings.LARDER_KUBERNETES_TOKEN_FILE = str(tmp_path / "wrong")
    kube.add_token(token := sa_token(), "system:serviceaccount:ml:model-server")
    assert_invalid(client.get(f"{VIEWS}?project=p", **bearer(token)))
    assert "Unauthorized" in caplog.text
    assert kube.requests[0].headers["authorization"] == "Bearer not-larders-token"


def test_disabled_verifier_does_not_claim_the_token(client, kube, registry, settings):
    kube.add_token(token := sa_token(), "system:serviceaccount:ml:model-server")
    kube.bind(NS, "model-server-binding", "model-server", [sa_subject()])
    settings.LARDER_AUTH_KUBERNETES = False
    assert k8s.verify(token, None) is None
    assert_invalid(client.get(f"{VIEWS}?project=p", **bearer(token)))  # no other verifier accepts it
    assert kube.requests == []


@pytest.mark.parametrize(
    "token",
    [
        jwt_shaped({"iss": "https://idp.example.com", "sub": "alice", "roles": ["model-server"]}),
        "lrd_abcdef",
        "opaque-provider-token",
        "a.b",
        "x.bm90LWpzb24.y",
    ],
)
def test_other_tokens_are_not_claimed(kube, token):
    assert k8s.verify(token, None) is None
    assert kube.requests == []


def test_legacy_secret_token_is_claimed_by_its_issuer(kube):
    token = jwt_shaped(
        {
            "iss": "kubernetes/serviceaccount",
            "kubernetes.io/serviceaccount/namespace": "ml",
            "kubernetes.io/serviceaccount/service-account.name": "model-server",
            "sub": "system:serviceaccount:ml:model-server",
        }
    )
    kube.add_token(token, "system:serviceaccount:ml:model-server")
    kube.bind(NS, "model-server-binding", "model-server", [sa_subject()])
    user, auth = k8s.verify(token, None)
    assert user.username == "k8s:ml:model-server"
    assert auth.username == "ml:model-server" and auth.namespace == "ml"
    assert auth.roles == {"model-server"}


def test_privileged_account_with_the_mapped_name_is_refused(client, kube, registry):
    User.objects.create_superuser("k8s:ml:model-server", password="pw")
    kube.add_token(token := sa_token(), "system:serviceaccount:ml:model-server")
    assert_invalid(client.get(f"{VIEWS}?project=p", **bearer(token)))


# -- cluster users ---------------------------------------------------------------------


def test_user_token_gets_roles_from_cluster_and_namespace_bindings(client, kube, registry):
    """What the TokenReview says wins over the token's own claims (here, a `sub` it ignores)."""
    token = sa_token(sub="system:serviceaccount:kube-system:admin")
    kube.add_token(token, "alice@example.com", groups=["ml-team", "system:authenticated"])
    kube.bind_cluster("ml-team-readers", "feature-reader", [{"kind": "Group", "name": "ml-team"}])
    kube.bind_cluster("ops-admins", "cluster-admin", [{"kind": "Group", "name": "ops"}])
    kube.bind(NS, "alice-datasets", "dataset-reader", [{"kind": "User", "name": "alice@example.com"}])
    kube.bind("other", "alice-elsewhere", "elsewhere-role", [{"kind": "User", "name": "alice@example.com"}])

    assert view_names(client.get(f"{VIEWS}?project=p", **bearer(token))) == ["a_one", "b_two"]
    user = User.objects.get(username="k8s-user:alice@example.com")
    assert set(user.groups.values_list("name", flat=True)) == {
        "feature-reader",
        "dataset-reader",
        "ml-team",
        "system:authenticated",
    }
    assert not User.objects.filter(username__contains="kube-system").exists()
    assert len(kube.calls("clusterrolebindings")) == 1


# -- caching ---------------------------------------------------------------------------


def test_positive_reviews_are_cached(client, kube, registry):
    kube.add_token(token := sa_token(), "system:serviceaccount:ml:model-server")
    kube.bind(NS, "model-server-binding", "model-server", [sa_subject()])
    for _ in range(2):
        assert view_names(client.get(f"{VIEWS}?project=p", **bearer(token))) == ["a_one"]
    assert len(kube.calls("tokenreviews")) == 1
    assert len(kube.calls("rolebindings")) == 1


def test_negative_reviews_are_not_cached(client, kube, registry):
    token = sa_token()
    assert_invalid(client.get(f"{VIEWS}?project=p", **bearer(token)))
    kube.add_token(token, "system:serviceaccount:ml:model-server")
    assert view_names(client.get(f"{VIEWS}?project=p", **bearer(token))) == []
    assert len(kube.calls("tokenreviews")) == 2


def test_rolebinding_change_is_seen_once_the_cache_expires(client, kube, registry, settings):
    settings.LARDER_KUBERNETES_CACHE_SECONDS = 0.3
    kube.add_token(token := sa_token(), "system:serviceaccount:ml:model-server")
    assert view_names(client.get(f"{VIEWS}?project=p", **bearer(token))) == []
    kube.bind(NS, "model-server-binding", "model-server", [sa_subject()])
    assert view_names(client.get(f"{VIEWS}?project=p", **bearer(token))) == []  # still cached
    time.sleep(0.35)
    assert view_names(client.get(f"{VIEWS}?project=p", **bearer(token))) == ["a_one"]
    assert len(kube.calls("tokenreviews")) == 2


def test_cache_is_keyed_by_hash_bounded_and_stops_at_token_expiry(kube):
    cache = k8s.ReviewCache(max_entries=2)
    tokens = [sa_token(sa=f"sa{i}") for i in range(3)]
    for i, token in enumerate(tokens):
        kube.add_token(token, f"system:serviceaccount:ml:sa{i}")
        assert cache.get_or_review(token, k8s.unverified_claims(token)).username == f"ml:sa{i}"
    assert len(cache._entries) == 2
    assert not any(t in key for key in cache._entries for t in tokens)
    expired = sa_token(exp=int(time.time()) - 1)
    kube.add_token(expired, "system:serviceaccount:ml:late")
    for _ in range(2):
        cache.get_or_review(expired, k8s.unverified_claims(expired))
    assert len(kube.calls("tokenreviews")) == 5


def test_a_burst_with_a_new_token_makes_one_review(kube):
    kube.add_token(token := sa_token(), "system:serviceaccount:ml:model-server")
    cache, claims, results = k8s.ReviewCache(), k8s.unverified_claims(token), []
    threads = [threading.Thread(target=lambda: results.append(cache.get_or_review(token, claims))) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 20 and {r.username for r in results} == {"ml:model-server"}
    assert len(kube.calls("tokenreviews")) == 1
