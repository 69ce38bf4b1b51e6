"""GET /health: open to anyone, says whether the registry database and the online store
answer (Feast's feature server: 200 when its registry answers, else 503).

The body names each check and, for one that is down, the kind of failure and a
credential-free description of the store (`OnlineStore.describe()`), never a registry
object; 503 when any check fails, so load balancers take the process out.
"""

from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET


def _registry() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return "ok"
    except Exception as exc:  # any failure is a "down", reported by kind
        return f"down: {type(exc).__name__}"


def _online_store() -> str:
    from serving.online import get_online_store

    try:
        store = get_online_store()
    except Exception as exc:  # misconfiguration (ImproperlyConfigured) counts as down
        return f"down: {type(exc).__name__}: {exc}"
    try:
        store.ping()
        return "ok"
    except Exception as exc:
        return f"down: {store.describe()} does not answer ({type(exc).__name__})"


@require_GET
def health(request: HttpRequest) -> JsonResponse:
    checks = {"registry": _registry(), "online_store": _online_store()}
    healthy = all(v == "ok" for v in checks.values())
    return JsonResponse(
        {"status": "ok" if healthy else "unavailable", "checks": checks}, status=200 if healthy else 503
    )
