"""The S3 storage of uploads (``SITEKIT_MEDIA_STORAGE=s3``): django-storages' backend against the
environment's object store, linking files on the site's own domain."""

from django.conf import settings
from storages.backends.s3 import S3Storage


class MediaS3Storage(S3Storage):
    """Files in the environment's bucket, linked at ``/media/<name>`` on the site's own domain
    (its nginx reads the store, which only the web hosts reach), never at the store's address."""

    def url(self, name, parameters=None, expire=None, http_method=None):
        return settings.MEDIA_URL + name.lstrip("/")
