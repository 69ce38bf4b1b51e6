from django.apps import AppConfig


class CatalogConfig(AppConfig):
    name = "catalog"
    verbose_name = "Registry"

    def ready(self) -> None:
        from . import search_index  # noqa: F401 - connects the search index's post_save receiver
