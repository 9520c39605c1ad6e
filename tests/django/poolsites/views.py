from django.http import JsonResponse
from django.middleware.csrf import get_token
from django.urls import reverse


def visit(request):
    """Count this session's visits; hand out a CSRF token (both in the site's own cookies)."""
    request.session["visits"] = request.session.get("visits", 0) + 1
    get_token(request)
    return JsonResponse(
        {"visits": request.session["visits"], "visit_url": reverse("visit"),
         "site_domain": request.site.domain}
    )


def tides(request):
    return JsonResponse({"tides": "high at noon", "url": reverse("tides")})
