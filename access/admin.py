"""Permissions in the Django admin, behind the same gate as every registry object:
editing a Permission needs a Larder permission on type `permission`. API tokens and
service accounts, superuser-only."""

from datetime import UTC, datetime

from django.contrib import admin, messages
from django.db.models import Model, QuerySet
from django.http import HttpRequest

from .admin_gate import GatedModelAdmin
from .forms import PermissionForm
from .models import ApiToken, Permission, ServiceAccount


@admin.register(Permission)
class PermissionAdmin(GatedModelAdmin):
    form = PermissionForm
    list_display = ["name", "project", "types_shown", "actions_shown", "roles_shown", "groups_shown", "updated_at"]
    list_filter = [("project", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["name", "description"]
    readonly_fields = ["created_at", "updated_at"]
    fieldsets = [
        (None, {"fields": ["project", "name", "description", "owner", "tags"]}),
        ("Which objects", {"fields": ["types", "name_patterns", "required_tags"]}),
        ("What may be done", {"fields": ["actions"]}),
        ("Who", {"fields": ["roles", "groups"]}),
        ("History", {"fields": ["created_at", "updated_at"]}),
    ]

    @admin.display(description="types")
    def types_shown(self, obj: Permission) -> str:
        return ", ".join(obj.types) or "all"

    @admin.display(description="actions")
    def actions_shown(self, obj: Permission) -> str:
        return ", ".join(obj.actions)

    @admin.display(description="roles")
    def roles_shown(self, obj: Permission) -> str:
        return ", ".join(obj.roles)

    @admin.display(description="groups")
    def groups_shown(self, obj: Permission) -> str:
        return ", ".join(obj.groups)


# --- Identity objects: not registry objects, so not behind the Permission gate; only
# superusers see them here (a staff user's Django model permissions play no part).


class SuperuserOnlyAdmin(admin.ModelAdmin):
    def _superuser(self, request: HttpRequest) -> bool:
        return bool(request.user.is_active and request.user.is_superuser)

    def has_module_permission(self, request: HttpRequest) -> bool:
        return self._superuser(request)

    def has_view_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return self._superuser(request)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return self._superuser(request)

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return self._superuser(request)

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return self._superuser(request)


@admin.register(ApiToken)
class ApiTokenAdmin(SuperuserOnlyAdmin):
    """Read-only: tokens are issued on the owner's token page (the text is shown once,
    there); here a superuser lists them and revokes. The digest is never shown."""

    list_display = ["name", "user", "prefix_shown", "created_at", "expires_at", "last_used_at", "status_shown"]
    list_filter = ["revoked_at", "expires_at"]
    list_select_related = ["user"]
    search_fields = ["name", "prefix", "user__username"]
    fields = ["user", "name", "prefix_shown", "created_at", "expires_at", "last_used_at", "revoked_at"]
    readonly_fields = fields
    actions = ["revoke_tokens"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False  # revoke instead: the row keeps who had which token until when

    @admin.display(description="token")
    def prefix_shown(self, obj: ApiToken) -> str:
        return f"lrd_{obj.prefix}_…"

    @admin.display(description="status")
    def status_shown(self, obj: ApiToken) -> str:
        return obj.status()

    @admin.action(description="Revoke selected API tokens", permissions=["view"])
    def revoke_tokens(self, request: HttpRequest, queryset: QuerySet) -> None:
        count = queryset.filter(revoked_at__isnull=True).update(revoked_at=datetime.now(UTC))
        self.message_user(request, f"Revoked {count} token(s).", messages.SUCCESS)


@admin.register(ServiceAccount)
class ServiceAccountAdmin(SuperuserOnlyAdmin):
    """A service account's roles are its user's Django Groups (set on the user's page)."""

    list_display = ["user", "application", "description", "created_at"]
    list_select_related = ["user", "application"]
    search_fields = ["user__username", "description"]
    raw_id_fields = ["user", "application"]
    readonly_fields = ["created_at"]
