from django.contrib.sites.managers import CurrentSiteManager
from django.contrib.sites.models import Site
from django.db import models
from django.utils import timezone


class Announcement(models.Model):
    """A short news item shown on one site's home page."""

    site = models.ForeignKey(Site, on_delete=models.CASCADE)
    title = models.CharField(max_length=200)
    body = models.TextField(blank=True)
    published_at = models.DateTimeField(default=timezone.now)

    objects = models.Manager()
    on_site = CurrentSiteManager()

    class Meta:
        ordering = ("-published_at", "-id")

    def __str__(self):
        return self.title
