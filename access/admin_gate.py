"""The Django admin behind the one gate (access.policy): base classes every registry
ModelAdmin and inline uses.

Django's own model permissions (the auth Permission table) play no part: a staff user
sees, edits and deletes exactly what Larder permissions grant, and nothing else.

| admin hook                    | decision                                                   |
| ----------------------------- | ---------------------------------------------------------- |
| get_queryset                  | restrict(qs, user, DESCRIBE)                               |
| has_view_permission(obj)      | DESCRIBE on obj (no obj: some permission could grant it)   |
| has_change_permission(obj)    | DESCRIBE+UPDATE on obj, as Feast asks before an update     |
| has_delete_permission(obj)    | DELETE on obj                                              |
| has_add_permission            | CREATE on some object of the type                          |
| has_module_permission         | staff and DESCRIBE on some object of the type              |
| form validation, save_model   | CREATE on a new object; DESCRIBE+UPDATE on the stored state |
|                               | and on the edited one (renames, tag and project changes)   |
| delete_model, delete_queryset | DELETE on each object                                      |

An object the user may not DESCRIBE is absent from get_queryset, so its change page
answers like a missing object: nothing tells the two apart.
"""

import copy
from collections.abc import Iterable
from typing import Any, ClassVar

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Model, QuerySet
from django.http import HttpRequest

from catalog import admin_audit
from catalog.models import Project, RegistryChange

from .actions import Action
from .policy import AccessDenied, authorize, has_any, is_allowed, resource_type_of, restrict

DESCRIBE = (Action.DESCRIBE,)
CHANGE = (Action.DESCRIBE, Action.UPDATE)  # Feast's assert_permissions_to_update
CREATE = (Action.CREATE,)
DELETE = (Action.DELETE,)


def is_staff(user: Any) -> bool:
    return bool(user is not None and user.is_active and user.is_staff)


def may(user: Any, actions: tuple[Action, ...], rtype: str, obj: Model | None) -> bool:
    """Staff, and the gate allows `actions` on `obj` (no obj: on some `rtype` object)."""
    if not is_staff(user):
        return False
    return has_any(user, actions, rtype) if obj is None else is_allowed(user, actions, obj)


def authorize_save(user: Any, stored: Model | None, edited: Model) -> None:
    """CREATE for a new object; otherwise DESCRIBE+UPDATE on the stored state and on the
    edited one, so an edit cannot carry an object out of the user's reach (a rename past
    a name pattern, a tag change past required_tags, a move to another project)."""
    if stored is None:
        authorize(user, CREATE, edited)
        return
    authorize(user, CHANGE, stored)
    authorize(user, CHANGE, edited)


def stored_copy(obj: Model) -> Model | None:
    """The row as the database holds it now (None for a new or vanished object)."""
    if obj.pk is None:
        return None
    return type(obj)._default_manager.filter(pk=obj.pk).first()


def project_choices(user: Any, actions: tuple[Action, ...], rtype: str) -> QuerySet:
    """Projects in which some permission could grant `actions` on `rtype` objects."""
    projects = Project.objects.all()
    allowed = [pk for pk in projects.values_list("pk", flat=True) if has_any(user, actions, rtype, project_id=pk)]
    return projects.filter(pk__in=allowed)


def restricted_choices(db_field: Any, request: HttpRequest, kwargs: dict[str, Any]) -> dict[str, Any]:
    """Offer only related registry objects the user may DESCRIBE (a source, entities...)."""
    related = db_field.related_model
    if getattr(related, "resource_type", "") and related is not Project:
        kwargs["queryset"] = restrict(related._default_manager.select_related("project"), request.user, DESCRIBE)
    return kwargs


def keep_current_choices(fields: dict[str, forms.Field], current: dict[str, set[Any]]) -> None:
    """Add the objects already referenced to the restricted choices, so that an edit the
    user may make is not blocked by a reference (a view's source) they cannot open."""
    for name, pks in current.items():
        field = fields.get(name)
        if isinstance(field, forms.ModelChoiceField) and name != "project" and pks:
            field.queryset = field.queryset | field.queryset.model._default_manager.filter(pk__in=pks)


def referenced(objs: Iterable[Model], names: Iterable[str]) -> dict[str, set[Any]]:
    """The primary keys each foreign-key or many-to-many field of `objs` points at."""
    current: dict[str, set[Any]] = {}
    objs, names = list(objs), list(names)
    for name in names:
        pks: set[Any] = set()
        for obj in objs:
            field = obj._meta.get_field(name)
            if field.many_to_many:
                pks.update(getattr(obj, name).values_list("pk", flat=True))
            elif field.many_to_one and getattr(obj, field.attname) is not None:
                pks.add(getattr(obj, field.attname))
        current[name] = pks
    return current


class GateFormMixin:
    """Mixed into the admin's form per request (GatedModelAdmin.get_form): refuses an
    edit the gate would refuse, as a form error instead of a 403 after the fact."""

    gate_user: Any = None
    instance: Model
    fields: dict[str, forms.Field]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        edited = self._edited(cleaned)
        if edited is None:
            return cleaned  # an invalid name/project/tags field already carries an error
        try:
            authorize_save(self.gate_user, stored_copy(self.instance), edited)
        except AccessDenied as exc:
            raise ValidationError(str(exc), code="permission_denied") from exc
        self._check_same_project(cleaned, edited.project_id)
        return cleaned

    def _edited(self, cleaned: dict[str, Any]) -> Model | None:
        """The object as it would be saved, judged on what the gate reads: project, name, tags."""
        edited = copy.copy(self.instance)
        for name in ("project", "name", "tags"):
            if name in self.fields:
                if name not in cleaned:
                    return None
                setattr(edited, name, cleaned[name])
        return edited

    def _check_same_project(self, cleaned: dict[str, Any], project_id: int | None) -> None:
        """A registry object references objects of its own project only."""
        for name, value in list(cleaned.items()):  # add_error() drops the key
            values = value if isinstance(value, QuerySet | list) else [value]
            for related in values:
                if isinstance(related, Model) and not isinstance(related, Project):
                    other = getattr(related, "project_id", None)
                    if getattr(related, "resource_type", "") and other != project_id:
                        self.add_error(name, f"{related.name!r} belongs to project {related.project.name!r}")
                        break


class GatedModelAdmin(admin.ModelAdmin):
    """Base of every registry ModelAdmin: the table at the top of this module."""

    list_select_related: ClassVar[Any] = ("project",)

    @property
    def resource_type(self) -> str:
        return resource_type_of(self.model)

    # -- what the user may see and do -------------------------------------------------
    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return restrict(super().get_queryset(request), request.user, DESCRIBE)

    def has_module_permission(self, request: HttpRequest) -> bool:
        return may(request.user, DESCRIBE, self.resource_type, None)

    def has_view_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return may(request.user, DESCRIBE, self.resource_type, obj)

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return may(request.user, CHANGE, self.resource_type, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return may(request.user, DELETE, self.resource_type, obj)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return may(request.user, CREATE, self.resource_type, None)

    # -- forms ------------------------------------------------------------------------
    def get_form(self, request: HttpRequest, obj: Model | None = None, change: bool = False, **kwargs: Any):
        base = super().get_form(request, obj, change=change, **kwargs)
        form = type(base.__name__, (GateFormMixin, base), {"gate_user": request.user, "__module__": base.__module__})
        project_field = form.base_fields.get("project")
        if project_field is not None:
            actions = CREATE if obj is None else CHANGE
            project_field.queryset = project_choices(request.user, actions, self.resource_type)
        if obj is not None:
            keep_current_choices(form.base_fields, referenced([obj], self._relation_fields(form)))
        return form

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any):
        return super().formfield_for_foreignkey(db_field, request, **restricted_choices(db_field, request, kwargs))

    def formfield_for_manytomany(self, db_field: Any, request: HttpRequest, **kwargs: Any):
        return super().formfield_for_manytomany(db_field, request, **restricted_choices(db_field, request, kwargs))

    # -- writes: gate again (the form is a courtesy), then audit and bump the version ---
    def save_model(self, request: HttpRequest, obj: Model, form: forms.ModelForm, change: bool) -> None:
        stored = stored_copy(obj) if change else None
        authorize_save(request.user, stored, obj)
        form.audit_diff = self._diff(form, stored)  # before the write: old many-to-many values
        form.audit_projects = {obj.project_id, getattr(stored, "project_id", None)}
        if stored is None:
            obj.save()
        else:
            # Only what the form changed: never write back a stale Project.version or a
            # column a concurrent apply has just changed.
            obj.save(update_fields=self._update_fields(form, obj))

    def save_related(self, request: HttpRequest, form: forms.ModelForm, formsets: list, change: bool) -> None:
        before = {fs.get_default_prefix(): self._inline_rows(fs) for fs in formsets} if change else {}
        super().save_related(request, form, formsets, change)
        diff = dict(getattr(form, "audit_diff", {}))
        for fs in formsets:
            prefix = fs.get_default_prefix()
            after, old = self._inline_rows(fs), before.get(prefix, [])
            if after != old:
                diff[prefix] = [old, after] if change else after
        if change and not diff:
            return
        action = RegistryChange.Action.UPDATE if change else RegistryChange.Action.CREATE
        admin_audit.record(request.user, form.instance, action, diff)
        admin_audit.bump_versions(getattr(form, "audit_projects", set()) | {form.instance.project_id})

    def delete_model(self, request: HttpRequest, obj: Model) -> None:
        authorize(request.user, DELETE, obj)
        with transaction.atomic():
            admin_audit.record(request.user, obj, RegistryChange.Action.DELETE, admin_audit.definition(obj))
            project_id = obj.project_id
            super().delete_model(request, obj)
            admin_audit.bump_versions([project_id])

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        objs = list(queryset)
        for obj in objs:
            authorize(request.user, DELETE, obj)
        with transaction.atomic():
            for obj in objs:
                admin_audit.record(request.user, obj, RegistryChange.Action.DELETE, admin_audit.definition(obj))
            super().delete_queryset(request, queryset)
            admin_audit.bump_versions(obj.project_id for obj in objs)

    # -- helpers ----------------------------------------------------------------------
    @staticmethod
    def _diff(form: forms.ModelForm, stored: Model | None) -> dict[str, Any]:
        """{field: [old, new]} for an update; the submitted definition for a create."""
        model_fields = {f.name for f in form._meta.model._meta.get_fields()}
        if stored is None:
            return {n: admin_audit.jsonable(v) for n, v in form.cleaned_data.items() if n in model_fields}
        diff = {}
        for name in form.changed_data:
            if name in model_fields:
                old, new = admin_audit.field_value(stored, name), admin_audit.jsonable(form.cleaned_data.get(name))
                if old != new:
                    diff[name] = [old, new]
        return diff

    @staticmethod
    def _relation_fields(form: type[forms.ModelForm]) -> list[str]:
        return [n for n, f in form.base_fields.items() if isinstance(f, forms.ModelChoiceField) and n != "project"]

    @staticmethod
    def _update_fields(form: forms.ModelForm, obj: Model) -> list[str]:
        concrete = {f.name for f in obj._meta.concrete_fields}
        fields = [name for name in form.changed_data if name in concrete]
        return [*fields, "updated_at"] if "updated_at" in concrete else fields

    @staticmethod
    def _inline_rows(formset: Any) -> list[dict[str, Any]]:
        fk = formset.fk.name
        return admin_audit.rows(formset.model._default_manager.filter(**{fk: formset.instance}), fk)


class GatedInlineMixin:
    """Inline rows (fields, projections) have no permissions of their own: they follow
    the parent's DESCRIBE to be seen and its UPDATE (CREATE on the add page) to be edited."""

    parent_model: type[Model]

    def _parent_may(self, request: HttpRequest, obj: Model | None, edit: bool) -> bool:
        actions = DESCRIBE if not edit else (CHANGE if obj is not None else CREATE)
        return may(request.user, actions, resource_type_of(self.parent_model), obj)

    def has_view_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return self._parent_may(request, obj, edit=False)

    def has_add_permission(self, request: HttpRequest, obj: Model | None) -> bool:
        return self._parent_may(request, obj, edit=True)

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return self._parent_may(request, obj, edit=True)

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return self._parent_may(request, obj, edit=True)

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any):
        return super().formfield_for_foreignkey(db_field, request, **restricted_choices(db_field, request, kwargs))

    def get_formset(self, request: HttpRequest, obj: Model | None = None, **kwargs: Any):
        formset = super().get_formset(request, obj, **kwargs)
        if obj is not None:
            fields = formset.form.base_fields
            names = [n for n, f in fields.items() if isinstance(f, forms.ModelChoiceField) and n != formset.fk.name]
            rows = formset.model._default_manager.filter(**{formset.fk.name: obj})
            keep_current_choices(fields, referenced(rows, names))
        return formset


class ReadOnlyInlineMixin(GatedInlineMixin):
    """Rows written by the system (materialization intervals): shown, never edited."""

    def has_add_permission(self, request: HttpRequest, obj: Model | None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False
