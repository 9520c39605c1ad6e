from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps


class CoreConfig(AppConfig):
    name = "project.core"
    label = "core"
    verbose_name = "sitekit core"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from . import checks, editors  # noqa: F401  (the system checks, the login signal)


class SitekitAdminConfig(admin_apps.AdminConfig):
    """``django.contrib.admin`` with project.core.admin_site's AdminSite as ``admin.site``."""

    default = False  # project.core's own is CoreConfig
    default_site = "project.core.admin_site.SitekitAdminSite"
