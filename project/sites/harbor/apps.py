from django.apps import AppConfig


class HarborConfig(AppConfig):
    name = "project.sites.harbor"
    label = "site_harbor"
    verbose_name = "Harbor site"
