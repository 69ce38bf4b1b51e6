"""`manage.py apply REPO`: apply a feature repo to the registry in one transaction."""

from catalog.repo import RepoValidationError, apply

from ._repo_command import RepoCommand


class Command(RepoCommand):
    help = "Apply a feature repo to the registry: create, update in place and delete objects of its project."

    def handle(self, *args, **options) -> None:
        definition = self.load(options["repo"])
        try:
            result = apply(definition, user=None, actor="cli")
        except RepoValidationError as exc:
            self.fail(exc)
        self.stdout.write(str(result))
        count = len(result.changes)
        self.stdout.write(
            f"Applied {count} change{'s' if count != 1 else ''} to project {result.project} in {result.elapsed:.2f}s"
        )
