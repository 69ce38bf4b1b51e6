"""The personal API token page: a signed-in user lists, creates and revokes their own
tokens. Tokens are not registry objects, so the Permission gate does not apply; the
gate here is ownership: every query is filtered by `user=request.user`, and another
user's token answers 404 like a missing one."""

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from access.identity.personal_tokens import issue_token, revoke
from access.models import ApiToken


class ApiTokenForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="What the token is for, e.g. “training notebook”.")
    days = forms.IntegerField(label="Expires in (days)", min_value=1)

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        maximum = settings.LARDER_API_TOKEN_MAX_DAYS
        days = self.fields["days"]
        days.initial = min(settings.LARDER_API_TOKEN_DEFAULT_DAYS, maximum)
        days.max_value = maximum
        days.widget.attrs.update({"min": 1, "max": maximum})
        days.help_text = f"1 to {maximum} days."

    def clean_days(self) -> int:
        days = self.cleaned_data["days"]
        maximum = settings.LARDER_API_TOKEN_MAX_DAYS
        if days > maximum:
            raise forms.ValidationError(f"A token can live at most {maximum} days.", code="max_days")
        return days


def _page(request: HttpRequest, form: ApiTokenForm, new_token: str = "", status: int = 200) -> HttpResponse:
    tokens = list(ApiToken.objects.filter(user=request.user))
    context = {
        "form": form,
        "tokens": tokens,
        "new_token": new_token,
        "api_url": request.build_absolute_uri("/api/v1/projects"),
        "max_days": settings.LARDER_API_TOKEN_MAX_DAYS,
    }
    return render(request, "access/tokens.html", context, status=status)


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def tokens(request: HttpRequest) -> HttpResponse:
    """GET: the list and the form. POST: create, and show the token text once, in this
    response only (never stored, never in a redirect or a message)."""
    if request.method == "GET":
        return _page(request, ApiTokenForm())
    form = ApiTokenForm(request.POST)
    if not form.is_valid():
        return _page(request, form, status=400)
    _, text = issue_token(request.user, form.cleaned_data["name"], form.cleaned_data["days"])
    return _page(request, ApiTokenForm(), new_token=text)


@login_required
@require_POST
def revoke_token(request: HttpRequest, token_id: int) -> HttpResponse:
    token = get_object_or_404(ApiToken, pk=token_id, user=request.user)
    revoke(token)
    messages.success(request, f"Token “{token.name}” (lrd_{token.prefix}_…) revoked.")
    return redirect("access:tokens")
