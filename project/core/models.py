from django.conf import settings
from django.contrib.sites.managers import CurrentSiteManager
from django.contrib.sites.models import Site
from django.db import models
from django.utils import timezone

from .uploads import announcement_image_path, validate_image


class Announcement(models.Model):
    """A short news item shown on one site's home page."""

    site = models.ForeignKey(Site, on_delete=models.CASCADE)
    title = models.CharField(max_length=200)
    body = models.TextField(blank=True)
    published_at = models.DateTimeField(default=timezone.now)
    image = models.ImageField(
        upload_to=announcement_image_path,
        blank=True,
        max_length=200,
        validators=[validate_image],
        help_text="Optional: a PNG, JPEG, GIF or WebP image, shown with the announcement.",
    )
    image_alt = models.CharField(
        "image description", max_length=200, blank=True,
        help_text="What the image shows, for those who cannot see it.",
    )

    objects = models.Manager()
    on_site = CurrentSiteManager()

    class Meta:
        ordering = ("-published_at", "-id")

    def __str__(self):
        return self.title


class SiteEditor(models.Model):
    """A grant: ``user`` may edit ``site`` in its admin (project.core.editors).

    Closed by default: a staff user edits the sites granted here and no other; a superuser
    edits every site.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="site_grants"
    )
    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="editor_grants")

    class Meta:
        constraints = [  # noqa: RUF012
            models.UniqueConstraint(fields=("user", "site"), name="core_siteeditor_unique"),
        ]
        ordering = ("site_id", "user_id")
        verbose_name = "site editor"

    def __str__(self):
        return f"{self.user} edits {self.site}"
