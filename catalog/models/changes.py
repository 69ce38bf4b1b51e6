"""The audit trail: one row per created, updated or deleted registry object."""

from django.conf import settings
from django.db import models


class RegistryChange(models.Model):
    class Action(models.TextChoices):
        CREATE = "create"
        UPDATE = "update"
        DELETE = "delete"

    project = models.ForeignKey("catalog.Project", null=True, on_delete=models.SET_NULL, related_name="changes")
    project_name = models.CharField(max_length=255)
    object_type = models.CharField(max_length=64)
    object_name = models.CharField(max_length=255)
    action = models.CharField(max_length=16, choices=Action.choices)
    diff = models.JSONField(default=dict, help_text="{field: [old, new]} for updates, the full definition otherwise.")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    actor = models.CharField(max_length=255, blank=True, default="", help_text="Who, when no user: 'cli', 'api'...")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["project_name", "object_type", "object_name"])]

    def __str__(self) -> str:
        return f"{self.action} {self.object_type} {self.project_name}/{self.object_name}"
