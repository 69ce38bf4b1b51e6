"""Permissions in the Django admin, behind the same gate as every registry object:
editing a Permission needs a Larder permission on type `permission`."""

from django.contrib import admin

from .admin_gate import GatedModelAdmin
from .forms import PermissionForm
from .models import Permission


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
