"""Shared by the plan and apply commands: load a repo, print its errors one per line."""

from django.core.management.base import BaseCommand, CommandError

from catalog.repo import RepoDefinition, RepoValidationError, load_repo


class RepoCommand(BaseCommand):
    def add_arguments(self, parser) -> None:
        parser.add_argument("repo", help="folder of the feature repo (YAML files)")

    def load(self, path: str) -> RepoDefinition:
        try:
            definition = load_repo(path)
        except RepoValidationError as exc:
            self.fail(exc)
        if definition.errors:
            self.fail(RepoValidationError(definition.errors))
        return definition

    def fail(self, exc: RepoValidationError) -> None:
        for error in exc.errors:
            self.stderr.write(str(error))
        count = len(exc.errors)
        raise CommandError(f"{count} error{'s' if count != 1 else ''} in the feature repo; nothing was changed")
