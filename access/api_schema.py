"""OpenAPI extensions for the access layer's DRF classes (imported by access.api_views,
so they are registered whenever a gated view exists)."""

from typing import Any

from drf_spectacular.authentication import SessionScheme
from drf_spectacular.extensions import OpenApiAuthenticationExtension


class LarderSessionScheme(SessionScheme):
    """Browser sessions (access.api.SessionAuthentication), documented like DRF's."""

    target_class = "access.api.SessionAuthentication"


class LarderBearerScheme(OpenApiAuthenticationExtension):
    """Bearer tokens (access.identity.authentication): personal `lrd_` tokens, OIDC JWTs,
    service-account tokens; see docs/api.md#bearer-tokens."""

    target_class = "access.identity.authentication.BearerAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {"type": "http", "scheme": "bearer"}
