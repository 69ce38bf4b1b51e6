"""`manage.py materialize START END [--views V ...]`: Feast's `feast materialize`.

Writes the latest row per entity with START <= event time <= END to the online store
and records the interval on each view. Timestamps are ISO 8601 (naive: UTC) or `now`.
"""

from typing import Any

from ._materialize_command import MaterializeCommand, parse_when


class Command(MaterializeCommand):
    help = "Materialize feature views over [START, END] into the online store (Feast's `feast materialize`)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("start", help="ISO 8601 start of the window (naive: UTC)")
        parser.add_argument("end", help="ISO 8601 end of the window, or `now`")
        super().add_arguments(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        self.run(options, parse_when(options["start"], "start"), parse_when(options["end"], "end"))
