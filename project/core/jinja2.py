"""The Jinja2 environment of every site (TEMPLATES OPTIONS["environment"])."""

from django.templatetags.static import static
from django.urls import reverse
from jinja2 import Environment


def url(viewname, *args, **kwargs):
    """``{{ url("core:home") }}``: reverse a URL name with positional or keyword args."""
    return reverse(viewname, args=args or None, kwargs=kwargs or None)


def environment(**options):
    options.setdefault("trim_blocks", True)
    options.setdefault("lstrip_blocks", True)
    # Django's Jinja2 backend turns autoescaping on; keep it on.
    env = Environment(autoescape=options.pop("autoescape", True), **options)
    env.globals.update({"static": static, "url": url})
    return env
