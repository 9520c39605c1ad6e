from django.urls import path

from project.sites.meadow.urls import *  # noqa: F403 (the site's own pages and error handlers)
from project.sites.meadow.urls import urlpatterns as site_urlpatterns
from tests.django.poolsites import views

urlpatterns = [*site_urlpatterns, path("visit", views.visit, name="visit")]
