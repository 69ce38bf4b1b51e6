"""A URLconf for tests/unit/test_url_gate.py: the real one plus views that forget the
gate, to prove the URL walk reports them. Never included by larder.urls."""

from django.http import HttpRequest, HttpResponse
from django.urls import path, register_converter
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from catalog.models import FeatureView
from larder.urls import urlpatterns as real_urlpatterns


def leaky_page(request: HttpRequest) -> HttpResponse:
    """Lists every feature view: no restrict()."""
    return HttpResponse(", ".join(FeatureView.objects.values_list("name", flat=True)))


class LeakyAPIView(APIView):
    """The same over the API, opened with AllowAny."""

    permission_classes = [AllowAny]

    def get(self, request: Request) -> Response:
        return Response({"names": list(FeatureView.objects.values_list("name", flat=True))})


class HexConverter:
    """A converter the walker has never heard of."""

    regex = "[0-9a-f]+"

    def to_python(self, value: str) -> int:
        return int(value, 16)

    def to_url(self, value: int) -> str:
        return f"{value:x}"


register_converter(HexConverter, "testhex")

urlpatterns = [
    path("leaky-page", leaky_page),
    path("leaky-public", leaky_page),
    path("api/v1/leaky", LeakyAPIView.as_view()),
    path("hex/<testhex:key>", leaky_page),
    *real_urlpatterns,
]
