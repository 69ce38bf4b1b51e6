"""What every registry object shares: a project, a name unique per project and type,
documentation fields, and timestamps.

Feast keys every object by (type, project, name); so do we, with a database
constraint on each concrete model.
"""

from django.db import models


class RegistryObject(models.Model):
    """Abstract base of every project-scoped registry object.

    `resource_type` is the name the permission matcher and the REST API use for the
    concrete type (Feast's Permission `types`, lower snake case).
    """

    resource_type: str = ""

    project = models.ForeignKey("catalog.Project", on_delete=models.CASCADE, related_name="+")
    name = models.CharField(max_length=255)
    description = models.TextField(blank=True, default="")
    owner = models.CharField(max_length=255, blank=True, default="")
    tags = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True
        ordering = ["project__name", "name"]

    def __str__(self) -> str:
        return f"{self.project.name}/{self.name}" if self.project_id else self.name

    @property
    def project_name(self) -> str:
        return self.project.name


def unique_name_per_project(model_name: str) -> models.UniqueConstraint:
    """The (project, name) constraint every registry type carries."""
    return models.UniqueConstraint(fields=["project", "name"], name=f"{model_name}_unique_name_per_project")
