"""`manage.py materialize-incremental END [--views V ...]`: Feast's `feast materialize-incremental`.

Each view continues from the end of its last materialized interval (else now - ttl,
else LARDER_MATERIALIZE_DEFAULT_LOOKBACK_DAYS) up to END (ISO 8601 or `now`).
"""

from typing import Any

from ._materialize_command import MaterializeCommand, parse_when


class Command(MaterializeCommand):
    help = "Materialize feature views from where each one stopped up to END (Feast's `feast materialize-incremental`)."
    incremental = True

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("end", help="ISO 8601 end of the window, or `now`")
        super().add_arguments(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        self.run(options, None, parse_when(options["end"], "end"))
