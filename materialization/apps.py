from django.apps import AppConfig


class MaterializationConfig(AppConfig):
    name = "materialization"
