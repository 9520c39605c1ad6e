"""The admin of every site, dedicated or pooled, at ``/admin/``, in the site's brand.

One AdminSite for every site of a process: what differs per site (the brand, who may log in,
which announcements are shown) is read from the request (``request.site``, and a pooled
master's ``request.sitekit_site``), never kept on the instance.
"""

from django import forms
from django.conf import settings
from django.contrib import admin
from django.contrib.admin.forms import AdminAuthenticationForm

from .editors import can_edit, request_site
from .pool import current


def brand(request):
    pooled = current(request)
    return (pooled["brand"] if pooled else settings.SITEKIT_BRAND) or {}


class SiteLoginForm(AdminAuthenticationForm):
    """The admin's login form, refusing a staff account that may not edit this site."""

    error_messages = {  # noqa: RUF012
        **AdminAuthenticationForm.error_messages,
        "not_editor": "This account cannot edit this site.",
    }

    def confirm_login_allowed(self, user):
        super().confirm_login_allowed(user)  # active staff
        if not can_edit(user, request_site(self.request)):
            raise forms.ValidationError(self.error_messages["not_editor"], code="not_editor")


class SitekitAdminSite(admin.AdminSite):
    login_form = SiteLoginForm
    index_title = "Site administration"

    def has_permission(self, request):
        return super().has_permission(request) and can_edit(request.user, request_site(request))

    def each_context(self, request):
        context = super().each_context(request)
        name = brand(request).get("name") or "sitekit"
        context.update(
            site_header=f"{name} administration",
            site_title=f"{name} admin",
            sitekit_brand=brand(request),
        )
        return context
