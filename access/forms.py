"""The Permission form of the admin: lists edited as checkboxes and lines, not JSON.

Types and actions are ticked from the known names (an unknown one cannot be sent);
shorthands such as READ or CRUD belong to the YAML feature repo, the form shows what
they expand to. The roles-or-groups rule is the model's (Permission.clean).
"""

import contextlib
import re
from typing import Any

from django import forms
from django.core.exceptions import ValidationError

from .actions import ALL_ACTIONS, expand_actions
from .models import Permission
from .resources import RESOURCE_TYPES, normalize_resource_type


class LinesField(forms.CharField):
    """A list of strings typed one per line (or also comma-separated), trimmed, empty
    lines and repeats dropped."""

    def __init__(self, *, commas: bool = False, rows: int = 3, **kwargs: Any):
        kwargs.setdefault("required", False)
        kwargs.setdefault("widget", forms.Textarea(attrs={"rows": rows, "cols": 60}))
        super().__init__(**kwargs)
        self.separator = r"[,\n]" if commas else r"\n"

    def prepare_value(self, value: Any) -> Any:
        return "\n".join(str(v) for v in value) if isinstance(value, list | tuple) else value

    def to_python(self, value: Any) -> list[str]:
        if isinstance(value, list | tuple):
            items = [str(v) for v in value]
        else:
            items = re.split(self.separator, super().to_python(value) or "")
        result: list[str] = []
        for item in (i.strip() for i in items):
            if item and item not in result:
                result.append(item)
        return result


class RegexLinesField(LinesField):
    """One regular expression per line; a bad one is named in the error."""

    def validate(self, value: list[str]) -> None:
        super().validate(value)
        errors = []
        for pattern in value:
            try:
                re.compile(pattern)
            except re.error as exc:
                errors.append(ValidationError(f"bad regular expression {pattern!r}: {exc}", code="bad_regex"))
        if errors:
            raise ValidationError(errors)


class TagsField(forms.CharField):
    """A mapping typed as `key=value`, one pair per line."""

    def __init__(self, **kwargs: Any):
        kwargs.setdefault("required", False)
        kwargs.setdefault("widget", forms.Textarea(attrs={"rows": 3, "cols": 60}))
        super().__init__(**kwargs)

    def prepare_value(self, value: Any) -> Any:
        return "\n".join(f"{k}={v}" for k, v in value.items()) if isinstance(value, dict) else value

    def to_python(self, value: Any) -> dict[str, str]:
        if isinstance(value, dict):
            return {str(k): str(v) for k, v in value.items()}
        tags: dict[str, str] = {}
        for line in (super().to_python(value) or "").splitlines():
            if not line.strip():
                continue
            key, sep, tag_value = line.partition("=")
            key, tag_value = key.strip(), tag_value.strip()
            if not sep or not key:
                raise ValidationError(f"expected key=value, got {line.strip()!r}", code="bad_tag")
            if key in tags:
                raise ValidationError(f"tag {key!r} is given twice", code="duplicate_tag")
            tags[key] = tag_value
        return tags


class PermissionForm(forms.ModelForm):
    types = forms.MultipleChoiceField(
        choices=[(t, t.replace("_", " ")) for t in RESOURCE_TYPES],
        widget=forms.CheckboxSelectMultiple,
        required=False,
        help_text="The kinds of registry object this permission covers. Tick none to cover every type, as Feast does.",
    )
    name_patterns = RegexLinesField(
        help_text=(
            "One regular expression per line. An object matches when one of them matches its <em>whole</em> name: "
            "<code>driver</code> does not match <code>driver_stats</code>, <code>driver.*</code> does. "
            "Empty: every name."
        ),
    )
    required_tags = TagsField(
        help_text="One <code>key=value</code> per line; the object's tags must hold every pair. Empty: no condition.",
    )
    actions = forms.MultipleChoiceField(
        choices=[(a, a) for a in ALL_ACTIONS],
        widget=forms.CheckboxSelectMultiple,
        help_text=(
            "What holders may do. A request must be covered by one permission: editing needs DESCRIBE and UPDATE "
            "together, reading features READ_ONLINE (serving) or READ_OFFLINE (training sets)."
        ),
    )
    roles = LinesField(
        commas=True,
        rows=2,
        help_text="Role names, separated by commas or new lines; case-sensitive. Holding any one of them grants.",
    )
    groups = LinesField(
        commas=True,
        rows=2,
        help_text="Group names, separated by commas or new lines. Belonging to any one of them grants. "
        "A permission needs at least one role or group.",
    )

    class Meta:
        model = Permission
        fields = [
            "project",
            "name",
            "description",
            "owner",
            "tags",
            "types",
            "name_patterns",
            "required_tags",
            "actions",
            "roles",
            "groups",
        ]

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        # Rows written without full_clean may hold Feast spellings or shorthands: show
        # them ticked as what they mean.
        with contextlib.suppress(TypeError, ValueError):
            self.initial["types"] = [normalize_resource_type(t) for t in self.initial.get("types") or []]
        with contextlib.suppress(TypeError, ValueError):
            self.initial["actions"] = expand_actions(self.initial.get("actions") or [])

    def clean_types(self) -> list[str]:
        chosen = set(self.cleaned_data["types"])
        return [t for t in RESOURCE_TYPES if t in chosen]

    def clean_actions(self) -> list[str]:
        return expand_actions(self.cleaned_data["actions"])
