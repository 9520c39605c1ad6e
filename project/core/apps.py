from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "project.core"
    label = "core"
    verbose_name = "sitekit core"
    default_auto_field = "django.db.models.BigAutoField"
