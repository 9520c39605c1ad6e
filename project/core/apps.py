from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "project.core"
    label = "core"
    verbose_name = "sitekit core"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from . import checks  # noqa: F401  (registers the system checks)
