"""A tiny stand-in for a Kubernetes API server: the three calls Larder's Kubernetes
verifier makes, answered with the JSON a real API server sends, over real HTTP.

No real cluster is used anywhere in the tests; this server is the cluster. It checks
the caller's bearer credential as a real one would (401 Status otherwise) and records
every request so tests can assert what Larder sent.
"""

import json
import threading
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

RBAC = "rbac.authorization.k8s.io"
CREATED = "2024-05-01T12:00:00Z"


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]  # lower-case names
    body: Any = None


@dataclass
class FakeKubeAPI:
    """Holds the cluster's state: which tokens authenticate as whom, and the bindings."""

    larder_token: str = "larder-own-sa-token"
    users: dict[str, dict[str, Any]] = field(default_factory=dict)  # token -> TokenReview status.user
    rolebindings: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # namespace -> items
    clusterrolebindings: list[dict[str, Any]] = field(default_factory=list)
    requests: list[Recorded] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._server: ThreadingHTTPServer | None = None
        self._version = 1000

    # -- state ----------------------------------------------------------------------

    def add_token(self, token: str, username: str, groups: list[str] | None = None) -> None:
        if groups is None and username.startswith("system:serviceaccount:"):
            ns = username.split(":")[2]
            groups = ["system:serviceaccounts", f"system:serviceaccounts:{ns}", "system:authenticated"]
        self.users[token] = {"username": username, "uid": str(uuid.uuid4()), "groups": groups or []}

    def _binding(self, kind: str, name: str, role: str, subjects: list[dict[str, str]], ns: str | None) -> dict:
        self._version += 1
        metadata = {
            "name": name,
            "uid": str(uuid.uuid4()),
            "resourceVersion": str(self._version),
            "creationTimestamp": CREATED,
        }
        if ns is not None:
            metadata["namespace"] = ns
        # As the API server returns them: User and Group subjects carry the RBAC apiGroup.
        subjects = [{**s, "apiGroup": RBAC} if s["kind"] in ("User", "Group") else dict(s) for s in subjects]
        return {"metadata": metadata, "subjects": subjects, "roleRef": {"apiGroup": RBAC, "kind": kind, "name": role}}

    def bind(self, namespace: str, name: str, role: str, subjects: list[dict[str, str]]) -> None:
        """A RoleBinding in `namespace` from `subjects` to the Role `role`."""
        self.rolebindings.setdefault(namespace, []).append(self._binding("Role", name, role, subjects, namespace))

    def bind_cluster(self, name: str, role: str, subjects: list[dict[str, str]]) -> None:
        """A ClusterRoleBinding from `subjects` to the ClusterRole `role`."""
        self.clusterrolebindings.append(self._binding("ClusterRole", name, role, subjects, None))

    def calls(self, path_part: str) -> list[Recorded]:
        return [r for r in self.requests if path_part in r.path]

    # -- server ---------------------------------------------------------------------

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> "FakeKubeAPI":
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _answer(self, code: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                body = json.loads(raw) if raw else None
                headers = {k.lower(): v for k, v in self.headers.items()}
                api.requests.append(Recorded(self.command, self.path, headers, body))
                if self.headers.get("Authorization") != f"Bearer {api.larder_token}":
                    self._answer(401, status_body(401, "Unauthorized", "Unauthorized"))
                    return
                code, answer = api.route(self.command, self.path.split("?")[0], body)
                self._answer(code, answer)

            do_GET = do_POST = _handle  # http.server dispatches on these names

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def route(self, method: str, path: str, body: Any) -> tuple[int, dict[str, Any]]:
        if method == "POST" and path == "/apis/authentication.k8s.io/v1/tokenreviews":
            return 201, self.token_review(body)
        if method == "GET" and path == f"/apis/{RBAC}/v1/clusterrolebindings":
            return 200, self.list_of("ClusterRoleBindingList", self.clusterrolebindings)
        prefix, suffix = f"/apis/{RBAC}/v1/namespaces/", "/rolebindings"
        if method == "GET" and path.startswith(prefix) and path.endswith(suffix):
            ns = path[len(prefix) : -len(suffix)]
            return 200, self.list_of("RoleBindingList", self.rolebindings.get(ns, []))
        return 404, status_body(404, "the server could not find the requested resource", "NotFound")

    def token_review(self, body: dict[str, Any]) -> dict[str, Any]:
        token = body.get("spec", {}).get("token", "")
        user = self.users.get(token)
        if user is None:
            status: dict[str, Any] = {"user": {}, "error": "[invalid bearer token, service account token is not valid]"}
        else:
            status = {
                "authenticated": True,
                "user": user,
                "audiences": ["https://kubernetes.default.svc.cluster.local"],
            }
        return {
            "kind": "TokenReview",
            "apiVersion": "authentication.k8s.io/v1",
            "metadata": {"creationTimestamp": None},
            "spec": body.get("spec", {}),
            "status": status,
        }

    def list_of(self, kind: str, items: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "kind": kind,
            "apiVersion": f"{RBAC}/v1",
            "metadata": {"resourceVersion": str(self._version)},
            "items": items,
        }


def status_body(code: int, message: str, reason: str) -> dict[str, Any]:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
