"""Uploads: the images of announcements, where they are kept and what is accepted.

Every site keeps its files under its own prefix, ``<site>/announcements/<random>.<ext>``, in the
environment's storage (settings.base: a directory of the web host, or the S3 object store every
web host shares), and links them on its own domains, ``/media/<site>/...``, where nginx serves
that site's prefix only. Only PNG, JPEG, GIF and WebP images up to ``SITEKIT_MEDIA_MAX_BYTES``
are accepted, each read by Pillow, and each stored under a new name whose extension is the one
of the format found: what a file claims to be plays no part.
"""

import secrets

from django.conf import settings
from django.core.exceptions import ValidationError

from sitekit.runtime.rules import IMAGE_TYPES

#: Image formats accepted (as Pillow names them) and the extension each is stored with.
FORMATS = {"PNG": "png", "JPEG": "jpg", "GIF": "gif", "WEBP": "webp"}
#: The content type of each stored extension: what the file is served with.
CONTENT_TYPES = IMAGE_TYPES


def human_size(size):
    """``5242880`` -> ``"5 MB"`` (binary megabytes, as a person reads a limit)."""
    for unit, factor in (("MB", 1024 * 1024), ("KB", 1024)):
        if size >= factor:
            value = size / factor
            return f"{value:.0f} {unit}" if value == int(value) else f"{value:.1f} {unit}"
    return f"{size} bytes"


def _image_format(file):
    """The Pillow format of ``file`` (read from its content), or None when it is no image."""
    from PIL import Image  # only where an upload is checked: masters that never see one

    position = file.tell() if hasattr(file, "tell") else 0
    try:
        file.seek(0)
        with Image.open(file) as image:
            image.verify()
            return image.format
    except Exception:  # Pillow raises many kinds for what is not an image
        return None
    finally:
        file.seek(position)


def validate_image(value):
    """Refuse what is larger than the limit, or not an image of an accepted format."""
    limit = settings.SITEKIT_MEDIA_MAX_BYTES
    if value.size > limit:
        raise ValidationError(
            f"The image is {human_size(value.size)}; the limit is {human_size(limit)}.",
            code="too_large",
        )
    found = _image_format(value.file if hasattr(value, "file") else value)
    if found not in FORMATS:
        raise ValidationError(
            "Upload a PNG, JPEG, GIF or WebP image: this file is "
            + (f"a {found} image." if found else "not an image."),
            code="not_an_image",
        )


def site_prefix(site_id):
    """The catalogue name of the site with ``site_id`` (its files' prefix)."""
    from .editors import site_names  # which imports the models, which import this module

    for name, known in site_names().items():
        if known == site_id:
            return name
    raise ValueError(f"no site of this codebase has SITE_ID {site_id}")


def announcement_image_path(instance, filename):
    """``<site>/announcements/<random>.<ext>``: the site's prefix, a name nobody chose, and the
    extension of the format the image was found to be."""
    found = _image_format(instance.image.file)
    extension = FORMATS.get(found, "bin")
    return f"{site_prefix(instance.site_id)}/announcements/{secrets.token_hex(12)}.{extension}"
