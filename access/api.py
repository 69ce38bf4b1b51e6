"""The API side of the gate: authentication that answers 401 (not 403) to anonymous
clients and a permission class requiring identification.

Kept free of rest_framework.views imports: DRF loads these classes while importing
its views module."""

from typing import Any

from rest_framework.authentication import SessionAuthentication as DRFSessionAuthentication
from rest_framework.permissions import BasePermission
from rest_framework.request import Request


class SessionAuthentication(DRFSessionAuthentication):
    """Browser sessions; declares a Bearer challenge so DRF answers 401 to anonymous calls."""

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="larder"'


class IsAuthenticatedGate(BasePermission):
    """Every API call must be identified; per-object decisions are access.policy's."""

    message = "Missing authentication token"

    def has_permission(self, request: Request, view: Any) -> bool:
        return bool(request.user and request.user.is_authenticated)
