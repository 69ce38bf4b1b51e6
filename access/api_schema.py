"""OpenAPI extensions for the access layer's DRF classes (imported by access.api_views,
so they are registered whenever a gated view exists)."""

from drf_spectacular.authentication import SessionScheme


class LarderSessionScheme(SessionScheme):
    """Browser sessions (access.api.SessionAuthentication), documented like DRF's."""

    target_class = "access.api.SessionAuthentication"
