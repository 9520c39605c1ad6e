"""The URLconf of a site without an app of its own (its ROOT_URLCONF): the core pages and the
admin, as every site's own ``urls.py`` has them. Its templates are the shared ones, in its
brand (``project.core.context_processors.site_base``)."""

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("", include("project.core.urls")),
    path("admin/", admin.site.urls),
]

handler404 = "project.core.views.page_not_found"
handler500 = "project.core.views.server_error"
