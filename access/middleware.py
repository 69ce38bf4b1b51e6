"""Anonymous users reach nothing but the public paths (login, /health, static).

HTML pages redirect to the login page; API paths answer 401 in Feast's words. This is
the outer wall; each view still goes through access.policy for the objects it shows.
"""

from collections.abc import Callable

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse, JsonResponse


def is_api_path(path: str) -> bool:
    return any(path == p or path.startswith(p.rstrip("/") + "/") for p in settings.LARDER_API_PREFIXES)


def is_public_path(path: str) -> bool:
    return any(path == p or (p.endswith("/") and path.startswith(p)) for p in settings.LARDER_PUBLIC_PATHS)


class LoginRequiredMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        path = request.path_info
        if request.user.is_authenticated or is_public_path(path):
            return self.get_response(request)
        if is_api_path(path):
            if request.headers.get("Authorization"):
                # A bearer token is checked by the API's own authentication classes.
                return self.get_response(request)
            body = {"status_code": 401, "detail": "Missing authentication token", "error_type": "AuthenticationError"}
            response = JsonResponse(body, status=401)
            response["WWW-Authenticate"] = 'Bearer realm="larder"'
            return response
        return redirect_to_login(request.get_full_path(), settings.LOGIN_URL)
