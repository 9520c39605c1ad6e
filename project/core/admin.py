"""The models in the admin (project.core.admin_site): announcements per site for its editors;
users, grants and the (read-only) Sites table for superusers."""

from django.contrib import admin
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group, User
from django.contrib.sites.models import Site
from django.http import Http404

from .editors import request_site
from .models import Announcement, SiteEditor


class SuperusersOnly:
    """Only superusers see or change these (an editor's staff flag grants nothing here)."""

    def has_module_permission(self, request):
        return request.user.is_active and request.user.is_superuser

    def has_view_permission(self, request, obj=None):
        return self.has_module_permission(request)

    def has_add_permission(self, request, *args):
        return self.has_module_permission(request)

    def has_change_permission(self, request, obj=None):
        return self.has_module_permission(request)

    def has_delete_permission(self, request, obj=None):
        return self.has_module_permission(request)


@admin.register(Announcement)
class AnnouncementAdmin(admin.ModelAdmin):
    """The current site's announcements: an editor of the site manages them all (the admin
    site lets in only its editors); new ones belong to the current site; another site's are
    not found (404)."""

    list_display = ("title", "published_at")
    search_fields = ("title", "body")
    date_hierarchy = "published_at"
    readonly_fields = ("site",)
    fields = ("title", "body", "image", "image_alt", "published_at", "site")

    def _editor(self, request):
        return self.admin_site.has_permission(request)

    def has_module_permission(self, request):
        return self._editor(request)

    def has_view_permission(self, request, obj=None):
        return self._editor(request)

    def has_add_permission(self, request):
        return self._editor(request)

    def has_change_permission(self, request, obj=None):
        return self._editor(request)

    def has_delete_permission(self, request, obj=None):
        return self._editor(request)

    def get_queryset(self, request):
        return super().get_queryset(request).filter(site=request_site(request))

    def get_object(self, request, object_id, from_field=None):
        obj = super().get_object(request, object_id, from_field)
        if obj is None:
            raise Http404("This site has no announcement with that id.")
        return obj

    def save_model(self, request, obj, form, change):
        if not change:
            obj.site = request_site(request)
        super().save_model(request, obj, form, change)


class SiteEditorInline(SuperusersOnly, admin.TabularInline):
    model = SiteEditor
    extra = 1
    verbose_name = "site this user edits"
    verbose_name_plural = "sites this user edits (superusers edit every site)"


admin.site.unregister(User)
admin.site.unregister(Group)


@admin.register(User)
class SitekitUserAdmin(SuperusersOnly, UserAdmin):
    inlines = (*UserAdmin.inlines, SiteEditorInline)


@admin.register(Group)
class SitekitGroupAdmin(SuperusersOnly, GroupAdmin):
    pass


@admin.register(SiteEditor)
class SiteEditorAdmin(SuperusersOnly, admin.ModelAdmin):
    list_display = ("user", "site")
    list_filter = ("site",)
    search_fields = ("user__username", "site__domain", "site__name")
    autocomplete_fields = ("user",)


if admin.site.is_registered(Site):
    admin.site.unregister(Site)


@admin.register(Site)
class CatalogueSiteAdmin(admin.ModelAdmin):
    """The Sites table, read-only: the catalogue owns it (sync_sites at every deploy)."""

    list_display = ("domain", "name", "id")
    search_fields = ("domain", "name")
    catalogue_note = (
        "The site catalogue owns this table: it is synced from the inventory at every "
        "deployment, and any change made here would be overwritten at the next deployment."
    )

    def has_module_permission(self, request):
        return request.user.is_active and request.user.is_superuser

    def has_view_permission(self, request, obj=None):
        return self.has_module_permission(request)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def changelist_view(self, request, extra_context=None):
        return super().changelist_view(
            request, {**(extra_context or {}), "catalogue_note": self.catalogue_note})

    def change_view(self, request, object_id, form_url="", extra_context=None):
        return super().change_view(
            request, object_id, form_url,
            {**(extra_context or {}), "catalogue_note": self.catalogue_note})
