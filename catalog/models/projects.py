"""Projects: the namespace every other registry object lives in."""

from django.core.validators import RegexValidator
from django.db import models

# Feast's rule (repo_operations.is_valid_name): word characters and "-", not
# starting with "_" or "-".
project_name_validator = RegexValidator(
    r"^[A-Za-z0-9][\w-]*$",
    "Project names use letters, digits, '_' and '-', and start with a letter or digit.",
)


class Project(models.Model):
    """A Feast project. `version` grows on every applied change so that processes
    caching the registry know when to reload (DESIGN.md, scale-out)."""

    resource_type = "project"

    name = models.CharField(max_length=255, unique=True, validators=[project_name_validator])
    description = models.TextField(blank=True, default="")
    owner = models.CharField(max_length=255, blank=True, default="")
    tags = models.JSONField(default=dict, blank=True)
    version = models.PositiveBigIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def project(self) -> "Project":
        """A project guards itself: permissions of project P apply to P."""
        return self

    @property
    def project_id(self) -> int:
        return self.pk
