"""Account pages under /account/: the personal API tokens."""

from django.urls import path

from . import views

app_name = "access"
urlpatterns = [
    path("tokens/", views.tokens, name="tokens"),
    path("tokens/<int:token_id>/revoke/", views.revoke_token, name="revoke-token"),
]
