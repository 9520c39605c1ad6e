"""ROOT_URLCONF of a pooled master (settings.pool): every request that reaches a view has its
site's own URLconf (request.urlconf), so nothing is routed here."""

urlpatterns = []
