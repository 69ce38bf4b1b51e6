"""`manage.py plan REPO`: print what applying the feature repo would change."""

from catalog.repo import RepoValidationError, plan

from ._repo_command import RepoCommand


class Command(RepoCommand):
    help = "Show what applying a feature repo would change in the registry (nothing is written)."

    def handle(self, *args, **options) -> None:
        definition = self.load(options["repo"])
        try:
            result = plan(definition)
        except RepoValidationError as exc:
            self.fail(exc)
        self.stdout.write(str(result))
