from django.apps import AppConfig


class MeadowConfig(AppConfig):
    name = "project.sites.meadow"
    label = "site_meadow"
    verbose_name = "Meadow site"
