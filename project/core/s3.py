"""The S3 storage of uploads (``SITEKIT_MEDIA_STORAGE=s3``): django-storages' backend against the
environment's object store, linking files on the site's own domain."""

from django.conf import settings
from storages.backends.s3 import S3Storage

from .uploads import CONTENT_TYPES


class MediaS3Storage(S3Storage):
    """Files in the environment's bucket, linked at ``/media/<name>`` on the site's own domain
    (its nginx reads the store, which only the web hosts reach), never at the store's address."""

    def url(self, name, parameters=None, expire=None, http_method=None):
        return settings.MEDIA_URL + name.lstrip("/")

    def get_object_parameters(self, name):
        """The object's Content-Type (what nginx serves it with) from its stored name, whose
        extension is the format found: never what the uploading browser declared, which
        django-storages would keep otherwise."""
        params = super().get_object_parameters(name)
        extension = name.rsplit(".", 1)[-1].lower() if "." in name else ""
        params["ContentType"] = CONTENT_TYPES.get(extension, "application/octet-stream")
        return params
