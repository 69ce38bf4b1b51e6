"""The built-in OIDC provider's claims (django-oauth-toolkit's validator, extended).

The ID token and userinfo carry what any provider in front of Larder is expected to
say (docs/identity.md): `preferred_username`, `email`, `roles` and `groups` (both the
user's Django Group names: the provider's user store keeps roles as Groups), and for
the portal's own client Keycloak's `resource_access.<client_id>.roles`, so the
portal reads the built-in provider with the same claim paths as Keycloak's.
"""

from typing import Any

from django.conf import settings
from oauth2_provider.oauth2_validators import OAuth2Validator

# Claims the portal needs at every login: given with the `openid` scope alone.
IDENTITY_CLAIMS = ("preferred_username", "roles", "groups", "resource_access")


class LarderOAuth2Validator(OAuth2Validator):
    oidc_claim_scope = {
        **OAuth2Validator.oidc_claim_scope,
        **dict.fromkeys(IDENTITY_CLAIMS, "openid"),
    }

    def get_additional_claims(self, request: Any) -> dict[str, Any]:
        user = request.user
        roles = sorted(user.groups.values_list("name", flat=True))
        claims: dict[str, Any] = {
            "preferred_username": user.get_username(),
            "roles": roles,
            "groups": roles,
        }
        if user.email:
            claims["email"] = user.email
        if user.get_full_name():
            claims["name"] = user.get_full_name()
        client = getattr(request, "client", None)
        if client is not None and client.client_id == settings.LARDER_OIDC_CLIENT_ID:
            claims["resource_access"] = {client.client_id: {"roles": roles}}
        return claims

    def get_discovery_claims(self, request: Any) -> list[str]:
        return ["sub", "name", "email", *IDENTITY_CLAIMS]
