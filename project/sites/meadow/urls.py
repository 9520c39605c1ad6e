from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("", include("project.core.urls")),
    path("admin/", admin.site.urls),
]

handler404 = "project.core.views.page_not_found"
handler500 = "project.core.views.server_error"
