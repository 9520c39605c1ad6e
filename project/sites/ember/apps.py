from django.apps import AppConfig


class EmberConfig(AppConfig):
    name = "project.sites.ember"
    label = "site_ember"
    verbose_name = "Ember site"
