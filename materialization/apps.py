from django.apps import AppConfig


class MaterializationConfig(AppConfig):
    name = "materialization"
    verbose_name = "Materialization"

    def ready(self) -> None:
        from . import schedules  # noqa: F401 - connects the PeriodicTask sync signals
