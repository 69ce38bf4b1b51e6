"""Feast's feature-server paths, at the root (settings.LARDER_API_PREFIXES lists them)."""

from django.urls import path

from .online import OnlineFeaturesView
from .push import PushView
from .write import WriteToOnlineStoreView

app_name = "serving"
urlpatterns = [
    path("get-online-features", OnlineFeaturesView.as_view(), name="get-online-features"),
    path("push", PushView.as_view(), name="push"),
    path("write-to-online-store", WriteToOnlineStoreView.as_view(), name="write-to-online-store"),
]
