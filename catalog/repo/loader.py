"""Reading a feature repo folder into a RepoDefinition, with every problem collected."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from .errors import RepoValidationError, ValidationIssue
from .fields import suggest
from .normalize import Context, normalize, normalize_draft
from .references import check_references
from .spec import PROJECT, SECTIONS, ObjectSpec, RepoDefinition

SKIPPED_DIRS = {"data"}
# libyaml's loader when PyYAML was built with it: about 10x faster on large repos.
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def repo_files(root: Path) -> list[Path]:
    """Every *.yaml / *.yml under `root`, sorted, skipping hidden folders and `data/`."""
    found = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in SKIPPED_DIRS and d != "__pycache__")
        found += [Path(folder) / f for f in files if f.endswith((".yaml", ".yml")) and not f.startswith(".")]
    return sorted(found)


def load_repo(path: str | Path) -> RepoDefinition:
    """Load, normalise and cross-check the repo at `path`.

    Problems do not raise here: they are collected in `definition.errors` (all of
    them, each naming file, object and field) and `plan`/`apply` refuse to run while
    there are any. A missing folder raises RepoValidationError at once.
    """
    root = Path(path).expanduser().resolve()
    if not root.is_dir():
        raise RepoValidationError.single(f"feature repo {str(path)!r} is not a folder")
    documents: list[tuple[str, Any]] = []
    errors: list[ValidationIssue] = []
    for file in repo_files(root):
        rel = file.relative_to(root).as_posix()
        try:
            with file.open(encoding="utf-8") as fh:
                docs = [d for d in yaml.load_all(fh, Loader=_LOADER) if d is not None]
        except (yaml.YAMLError, UnicodeDecodeError) as exc:
            errors.append(ValidationIssue(rel, "", "", "", f"not valid YAML: {exc}".replace("\n", " ")))
            continue
        documents += [(rel, doc) for doc in docs]
    definition = build_definition(documents, base_dir=root)
    definition.errors[:0] = errors
    return definition


def build_definition(
    documents: list[tuple[str, Any]], base_dir: Path | None, check_functions: bool = True
) -> RepoDefinition:
    """Merge YAML documents (file name, parsed content) into one checked definition."""
    definition = RepoDefinition(path=base_dir)
    errors = definition.errors
    projects: list[ObjectSpec] = []
    for file, doc in documents:
        if not isinstance(doc, dict):
            errors.append(ValidationIssue(file, "", "", "", "a repo file must be a mapping of sections"))
            continue
        for section, content in doc.items():
            object_type = SECTIONS.get(section)
            if object_type is None:
                errors.append(
                    ValidationIssue(
                        file,
                        "",
                        "",
                        str(section),
                        f"unknown top-level section{suggest(section, SECTIONS)}; allowed: {', '.join(SECTIONS)}",
                    )
                )
                continue
            ctx = Context(base_dir, file, check_functions)
            if object_type == PROJECT:
                if not isinstance(content, dict):
                    errors.append(
                        ValidationIssue(file, PROJECT, "", "", "project must be a mapping (name, description...)")
                    )
                    continue
                spec = ObjectSpec(PROJECT, str(content.get("name") or ""), content, file)
                spec.canonical = normalize(PROJECT, content, ctx, errors)
                projects.append(spec)
                continue
            if content is None:
                continue
            if not isinstance(content, list):
                errors.append(ValidationIssue(file, object_type, "", section, f"{section} must be a list"))
                continue
            for i, raw in enumerate(content):
                _add_object(definition, object_type, i, raw, ctx)
    if len(projects) == 1:
        definition.project = projects[0]
    elif not projects:
        errors.append(ValidationIssue("", PROJECT, "", "", "no project: exactly one file must have a project: section"))
    else:
        files = ", ".join(p.file for p in projects)
        errors.append(ValidationIssue(projects[1].file, PROJECT, "", "", f"more than one project section ({files})"))
    errors.extend(check_references(definition.objects))
    return definition


def _add_object(definition: RepoDefinition, object_type: str, index: int, raw: Any, ctx: Context) -> None:
    errors = definition.errors
    if not isinstance(raw, dict):
        errors.append(ValidationIssue(ctx.file, object_type, "", f"[{index}]", f"must be a mapping, got {raw!r}"))
        return
    name = raw.get("name")
    spec = ObjectSpec(object_type, name if isinstance(name, str) else "", raw, ctx.file)
    spec.canonical, spec.draft = normalize_draft(object_type, raw, ctx, errors)
    if not spec.name:
        return  # reported by the normaliser
    existing = definition.objects[object_type].get(spec.name)
    if existing is not None:
        errors.append(
            ValidationIssue(
                ctx.file,
                object_type,
                spec.name,
                "name",
                f"duplicate {object_type} {spec.name!r} (also defined in {existing.file or 'this file'})",
            )
        )
        return
    definition.objects[object_type][spec.name] = spec
