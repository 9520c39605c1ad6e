"""Settings shared by every sitekit site.

Each site has its own module (``settings.harbor``, ``settings.meadow``, ...) that
star-imports this one and sets only what differs between sites: ``SITE_ID``,
``SITEKIT_SITE``, ``ROOT_URLCONF``, ``SITEKIT_BRAND`` and the names of its cookies.

Everything that depends on the environment a site runs in comes from environment
variables, never from code. The deploy writes them to a per-site env file and points
``SITEKIT_ENV_FILE`` at it; variables already present in the process environment
win over the file.

    SITEKIT_ENV_FILE              optional KEY=VALUE file loaded at import
    SITEKIT_SECRET_KEY            required unless SITEKIT_DEBUG=1 (or under pytest)
    SITEKIT_DEBUG                 "1" or "0" (default "0")
    SITEKIT_ALLOWED_HOSTS         comma-separated (default: localhost variants)
    SITEKIT_DOMAINS               comma-separated: the site's catalogue domains (``name``,
                                  ``*.name`` for its subdomains only); any Host they do not
                                  serve as nginx routes it gets 400 (default: none, unchecked)
    SITEKIT_CSRF_TRUSTED_ORIGINS  comma-separated (default: none)
    SITEKIT_PUBLIC_SCHEME         "http" (default) or "https": the scheme browsers use; "https"
                                  turns on the HTTPS redirect, secure cookies and HSTS
    SITEKIT_HSTS                  "subdomains" (default), "preload" or "host" (with https)
    SITEKIT_HSTS_SECONDS          HSTS max-age (default 31536000, one year; with https)
    SITEKIT_DB_ENGINE             "sqlite" (default) or "postgresql"
    SITEKIT_DB_NAME               sqlite file path (default <BASE_DIR>/db.sqlite3)
                                  or postgresql database name (default "sitekit")
    SITEKIT_DB_HOST, SITEKIT_DB_PORT, SITEKIT_DB_USER, SITEKIT_DB_PASSWORD
    SITEKIT_DB_CONN_MAX_AGE       seconds (default 60 for postgresql, 0 for sqlite)
    SITEKIT_STATIC_ROOT           collectstatic target (default <BASE_DIR>/static)
    SITEKIT_MEDIA_STORAGE         where uploads live: "local" (default) or "s3"
    SITEKIT_MEDIA_ROOT            local: the directory of the uploads (default <BASE_DIR>/media)
    SITEKIT_MEDIA_MAX_BYTES       the largest upload accepted (default 5242880, 5 MB)
    SITEKIT_S3_ENDPOINT_URL, SITEKIT_S3_BUCKET, SITEKIT_S3_ACCESS_KEY, SITEKIT_S3_SECRET_KEY
                                  s3: the object store, its bucket and credentials
    SITEKIT_S3_REGION             s3: the region signed for (default us-east-1)
    SITEKIT_RELEASE_ID            used when <BASE_DIR>/RELEASE does not exist
    SITEKIT_LOG_LEVEL             default INFO
"""

import os
import re
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured
from environ import Env

from sitekit.runtime.rules import HSTS_POLICIES, hsts_settings, valid_name
from sitekit.runtime.rules import MEDIA_URL as _MEDIA_URL
from sitekit.runtime.rules import STATIC_URL as _STATIC_URL

# The release root: the directory holding manage.py, project/ and settings/.
BASE_DIR = Path(__file__).resolve().parent.parent


def load_env_file(path, environ=None):
    """Load ``KEY=VALUE`` lines from *path* into *environ* (default ``os.environ``).

    Blank lines and lines starting with ``#`` are ignored. The value is everything
    after the first ``=`` with surrounding whitespace stripped; quotes are kept as
    they are. Variables already present in *environ* are not overridden.
    Returns the keys that were set.

    Not django-environ's ``Env.read_env``, which reads the same files differently: it strips
    the quotes of ``KEY='quoted'`` and ``KEY="quoted"`` (and unescapes backslashes inside
    double quotes); it skips ``  KEY = value`` (spaces around the key or the ``=``) and any
    malformed line with only a logged warning; and it returns quietly when the file is
    missing. A site must not start on a half-read env file: here a malformed line or a
    missing file stops it, naming the file (and the line).
    """
    environ = os.environ if environ is None else environ
    loaded = []
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ImproperlyConfigured(f"SITEKIT_ENV_FILE {path!s} cannot be read: {exc}") from exc
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ImproperlyConfigured(f"{path!s}:{lineno}: expected KEY=VALUE, got {raw!r}")
        if key not in environ:
            environ[key] = value.strip()
            loaded.append(key)
    return loaded


def read_release_id(base_dir, environ=None):
    """The release id: ``<base_dir>/RELEASE`` if present, else ``$SITEKIT_RELEASE_ID``,
    else ``"dev"``. It is sent in a response header, so it must be printable ASCII
    without spaces."""
    environ = os.environ if environ is None else environ
    release_file = Path(base_dir) / "RELEASE"
    release = release_file.read_text(encoding="utf-8").strip() if release_file.is_file() else ""
    release = release or environ.get("SITEKIT_RELEASE_ID", "").strip() or "dev"
    if not re.fullmatch(r"[!-~]{1,200}", release):
        raise ImproperlyConfigured(
            f"Invalid release id {release!r}: use printable ASCII without spaces"
        )
    return release


def _env(name, default=""):
    """The variable, stripped (*default* when unset): every reader below reads through it.

    django-environ's ``Env.parse_value`` casts the typed values; its readers (``env.bool``,
    ``env.int``, ``env.list``, ``env.str``) are not used because they read these variables
    otherwise: a value starting with ``$`` is taken for the name of another variable (a
    database password ``$ecret`` would become the value of ``ecret``); a blank value is cast
    instead of giving the default (``""`` is False or [], and ``int("")`` fails); every word
    but 1/true/yes/on/ok/y is False (``SITEKIT_DEBUG=maybe`` too); list items keep their
    spaces (``a, b``); and a bad value fails with a bare ValueError, not naming the variable.
    """
    return os.environ.get(name, default).strip()


def _env_bool(name, default=False):
    """1/true/yes/on or 0/false/no/off, in any case; *default* when blank. Anything else stops
    the site (SITEKIT_DEBUG=maybe is a mistake, not False)."""
    value = _env(name).lower()
    if not value:
        return default
    if value not in ("1", "true", "yes", "on", "0", "false", "no", "off"):
        raise ImproperlyConfigured(f"{name} must be 1 or 0, got {value!r}")
    return Env.parse_value(value, bool)


def _env_int(name, default):
    """An integer; *default* when blank."""
    value = _env(name)
    try:
        return Env.parse_value(value, int) if value else default
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, got {value!r}") from None


def _env_list(name, default):
    """The comma-separated items, each stripped, empty ones dropped; *default* when blank."""
    value = _env(name)
    if not value:
        return list(default)
    return [item for item in Env.parse_value(value, [str.strip]) if item]


def _env_choice(name, choices, default):
    """One of *choices*, in any case; *default* when blank. (django-environ's
    ``env.str(choices=...)`` is case-sensitive and its message, ``Invalid value: ftp not in
    ('http', 'https')``, does not name the variable.)"""
    value = _env(name).lower() or default
    if value not in choices:
        raise ImproperlyConfigured(f"{name} must be one of {', '.join(choices)}, got {value!r}")
    return value


def pool_sites_file(path):
    """The sites of a pooled master from its sites file (``SITEKIT_POOL_SITES_FILE``, written
    by the deploy next to the master's env file): :func:`pool_sites` of its content, every
    problem naming the file (and the entry)."""
    if not path:
        raise ImproperlyConfigured("SITEKIT_POOL_SITES_FILE must name the pool's sites file")
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ImproperlyConfigured(f"SITEKIT_POOL_SITES_FILE {path!s} cannot be read: {exc}") \
            from None
    return pool_sites(text, source=str(path))


def pool_sites(spec, source="SITEKIT_POOL_SITES_FILE"):
    """The sites of a pooled master, from the JSON list the deploy writes into its sites file
    (see ``settings/pool.py``; *source* names it in every message)::

        [{"name": "harbor", "domains": ["harbor.example", "*.harbor.example"],
          "csrf_trusted_origins": ["https://harbor.example"], "hsts": "subdomains"}, ...]

    ``settings_module`` defaults to ``settings.<name>``: each site's own module stays the one
    place of its SITE_ID, SITEKIT_SITE, ROOT_URLCONF, SITEKIT_BRAND and cookie names; it is
    imported here only to read them. ``csrf_trusted_origins`` defaults to ``http://<domain>``
    for each domain and ``hsts`` to ``subdomains``. Returns a tuple of read-only mappings.
    """
    import importlib
    import json
    from types import MappingProxyType

    try:
        entries = json.loads(spec) if isinstance(spec, str) else spec
    except ValueError as exc:
        raise ImproperlyConfigured(f"{source} is not valid JSON: {exc}") from None
    if not isinstance(entries, list) or not entries:
        raise ImproperlyConfigured(f"{source} must be a non-empty JSON list of sites")
    sites, names, hosts = [], set(), {}
    for index, entry in enumerate(entries):
        name = entry.get("name") if isinstance(entry, dict) else None
        where = f"{source}[{index}]"
        if not valid_name(name):
            raise ImproperlyConfigured(f"{where}: invalid site name {name!r}")
        if name in names:
            raise ImproperlyConfigured(f"{where}: site {name!r} is listed twice")
        names.add(name)
        domains = entry.get("domains")
        if not isinstance(domains, list) or not domains or not all(
            isinstance(d, str) and d for d in domains
        ):
            raise ImproperlyConfigured(f"{where} ({name}): 'domains' must be a list of names")
        for domain in domains:
            if domain in hosts:
                raise ImproperlyConfigured(
                    f"{where} ({name}): domain {domain!r} already belongs to {hosts[domain]!r}"
                )
            hosts[domain] = name
        module_name = entry.get("settings_module") or f"settings.{name}"
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise ImproperlyConfigured(
                f"{where} ({name}): cannot import {module_name}: {exc}"
            ) from None
        values = {}
        for key in ("SITE_ID", "SITEKIT_SITE", "ROOT_URLCONF", "SITEKIT_BRAND",
                    "SESSION_COOKIE_NAME", "CSRF_COOKIE_NAME"):
            if not hasattr(module, key):
                raise ImproperlyConfigured(f"{where} ({name}): {module_name} does not set {key}")
            values[key] = getattr(module, key)
        if values["SITEKIT_SITE"] != name:
            raise ImproperlyConfigured(
                f"{where} ({name}): {module_name} sets SITEKIT_SITE = {values['SITEKIT_SITE']!r}"
            )
        hsts = entry.get("hsts") or HSTS_POLICIES[0]
        if hsts not in HSTS_POLICIES:
            raise ImproperlyConfigured(f"{where} ({name}): invalid hsts {hsts!r}")
        origins = entry.get("csrf_trusted_origins")
        if origins is None:
            origins = [f"http://{d}" for d in domains]
        sites.append(MappingProxyType({
            "name": name,
            "settings_module": module_name,
            "site_id": values["SITE_ID"],
            "urlconf": values["ROOT_URLCONF"],
            "brand": values["SITEKIT_BRAND"],
            "session_cookie_name": values["SESSION_COOKIE_NAME"],
            "csrf_cookie_name": values["CSRF_COOKIE_NAME"],
            "domains": tuple(domains),
            "csrf_trusted_origins": tuple(origins),
            "hsts": hsts,
        }))
    return tuple(sites)


if _env("SITEKIT_ENV_FILE"):
    load_env_file(_env("SITEKIT_ENV_FILE"))


# --- Core ---------------------------------------------------------------------------

DEBUG = _env_bool("SITEKIT_DEBUG")

SECRET_KEY = _env("SITEKIT_SECRET_KEY")
if not SECRET_KEY:
    # Development (SITEKIT_DEBUG=1) and test runs get a fixed, public key. pytest
    # sets PYTEST_VERSION for the whole run; pytest-django imports these settings
    # before any conftest.py could provide a key.
    if not (DEBUG or _env("PYTEST_VERSION")):
        raise ImproperlyConfigured(
            "SITEKIT_SECRET_KEY is not set (set it in the environment or in SITEKIT_ENV_FILE)"
        )
    SECRET_KEY = "django-insecure-sitekit-development-only-never-use-this-key"  # noqa: S105

# Keys whose signatures stay valid (sessions, password-reset links): a pool's master accepts
# its sites' own keys, a dedicated site its environment's pools' keys, so that moving a site
# between a pool and its own master keeps its users signed in.
SECRET_KEY_FALLBACKS = _env_list("SITEKIT_SECRET_KEY_FALLBACKS", [])

ALLOWED_HOSTS = _env_list(
    "SITEKIT_ALLOWED_HOSTS", [".localhost", "localhost", "127.0.0.1", "[::1]"]
)
CSRF_TRUSTED_ORIGINS = _env_list("SITEKIT_CSRF_TRUSTED_ORIGINS", [])
# What nginx routes to this site (project.core.middleware.HostMiddleware): within
# ALLOWED_HOSTS, whose ".example.org" for the domain "*.example.org" admits "example.org" too.
SITEKIT_DOMAINS = _env_list("SITEKIT_DOMAINS", [])

SITEKIT_RELEASE_ID = read_release_id(BASE_DIR)

# SITE_ID, SITEKIT_SITE, ROOT_URLCONF, SITEKIT_BRAND and the cookie names are set by each
# site module.

WSGI_APPLICATION = "project.wsgi.application"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"


# --- Applications -------------------------------------------------------------------

# Every site sub-application is installed in every site: they carry only templates,
# static files and URLs, and a pooled process may serve several sites.
SITEKIT_SITE_APPS = sorted(
    f"project.sites.{path.name}"
    for path in (BASE_DIR / "project" / "sites").iterdir()
    if path.is_dir() and (path / "__init__.py").is_file()
)

INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.sites",
    "project.core",
    # django.contrib.admin with project.core.admin_site's AdminSite: /admin/ of every site, in
    # its brand, for the site's editors only (project.core.editors). After project.core, whose
    # admin templates come first.
    "project.core.apps.SitekitAdminConfig",
    *SITEKIT_SITE_APPS,
]

MIDDLEWARE = [
    # Outermost, so that every response (404 and 500 included) carries the headers.
    "project.core.middleware.ReleaseHeaderMiddleware",
    # Any Host the site's domains do not serve: 400, before anything reads it.
    "project.core.middleware.HostMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django.contrib.sites.middleware.CurrentSiteMiddleware",
    # A logged-in session counts only on the site it logged in on (the session table is
    # shared): once the request's site is known.
    "project.core.editors.SiteSessionBindingMiddleware",
]

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.jinja2.Jinja2",
        "DIRS": [],
        "APP_DIRS": True,  # <app>/jinja2/
        "OPTIONS": {
            "environment": "project.core.jinja2.environment",
            "context_processors": [
                "django.contrib.messages.context_processors.messages",
                "project.core.context_processors.sitekit",
            ],
        },
    },
    {
        # Django's own templates, for the admin only (<app>/templates/).
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]


# --- Database -----------------------------------------------------------------------

SITEKIT_DB_ENGINE = _env("SITEKIT_DB_ENGINE", "sqlite").lower()
if SITEKIT_DB_ENGINE == "sqlite":
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": _env("SITEKIT_DB_NAME") or str(BASE_DIR / "db.sqlite3"),
            "CONN_MAX_AGE": _env_int("SITEKIT_DB_CONN_MAX_AGE", 0),
            "OPTIONS": {
                # Several gunicorn masters share one file: wait for locks instead of
                # failing, take the write lock when a transaction starts, and let
                # readers proceed while one process writes.
                "timeout": 20,
                "transaction_mode": "IMMEDIATE",
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL",
            },
        }
    }
elif SITEKIT_DB_ENGINE == "postgresql":
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": _env("SITEKIT_DB_NAME") or "sitekit",
            "HOST": _env("SITEKIT_DB_HOST"),
            "PORT": _env("SITEKIT_DB_PORT"),
            "USER": _env("SITEKIT_DB_USER"),
            "PASSWORD": _env("SITEKIT_DB_PASSWORD"),
            "CONN_MAX_AGE": _env_int("SITEKIT_DB_CONN_MAX_AGE", 60),
            "CONN_HEALTH_CHECKS": True,
        }
    }
else:
    raise ImproperlyConfigured(
        f"SITEKIT_DB_ENGINE must be 'sqlite' or 'postgresql', got {SITEKIT_DB_ENGINE!r}"
    )


# --- Internationalisation -------------------------------------------------------------

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True


# --- Static files -------------------------------------------------------------------

STATIC_URL = _STATIC_URL  # "/static/": the path nginx serves them at (sitekit_layout)
STATIC_ROOT = _env("SITEKIT_STATIC_ROOT") or str(BASE_DIR / "static")


# --- Uploads ------------------------------------------------------------------------

# Each site's files are under its own prefix (project.core.uploads) and linked on its own
# domains at /media/<site>/, which nginx serves from the storage (never Django). Outside every
# release: a directory of the web host, or the object store shared by every web host.
SITEKIT_MEDIA_STORAGE = _env_choice("SITEKIT_MEDIA_STORAGE", ("local", "s3"), "local")
SITEKIT_MEDIA_MAX_BYTES = _env_int("SITEKIT_MEDIA_MAX_BYTES", 5 * 1024 * 1024)
MEDIA_URL = _MEDIA_URL  # "/media/": the path nginx serves them at (sitekit_layout.media_url)
MEDIA_ROOT = _env("SITEKIT_MEDIA_ROOT") or str(BASE_DIR / "media")
if SITEKIT_MEDIA_STORAGE == "s3":
    _S3_MISSING = [
        name for name in ("SITEKIT_S3_ENDPOINT_URL", "SITEKIT_S3_BUCKET",
                          "SITEKIT_S3_ACCESS_KEY", "SITEKIT_S3_SECRET_KEY")
        if not _env(name)
    ]
    if _S3_MISSING:
        raise ImproperlyConfigured(
            f"SITEKIT_MEDIA_STORAGE=s3 needs {', '.join(_S3_MISSING)}")
    _MEDIA_STORAGE = {
        "BACKEND": "project.core.s3.MediaS3Storage",
        "OPTIONS": {
            "endpoint_url": _env("SITEKIT_S3_ENDPOINT_URL"),
            "bucket_name": _env("SITEKIT_S3_BUCKET"),
            "access_key": _env("SITEKIT_S3_ACCESS_KEY"),
            "secret_key": _env("SITEKIT_S3_SECRET_KEY"),
            "region_name": _env("SITEKIT_S3_REGION", "us-east-1"),
            "addressing_style": "path",
            "signature_version": "s3v4",
            "default_acl": None,
            "querystring_auth": False,
            "file_overwrite": False,
        },
    }
else:
    _MEDIA_STORAGE = {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        # readable by the site's group, which nginx's workers are in (system mode)
        "OPTIONS": {"file_permissions_mode": 0o640, "directory_permissions_mode": 0o750},
    }
STORAGES = {
    "default": _MEDIA_STORAGE,
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}


# --- Security -----------------------------------------------------------------------

# Masters listen on a unix socket only nginx can reach, and nginx replaces what a client
# sends: Host is nginx's $host (a server_name of this site; unknown names never get here),
# X-Forwarded-Proto is the scheme nginx received the request with (or a trusted lb's),
# X-Forwarded-For is the client's address, X-Forwarded-Host is empty. So the scheme is taken
# from X-Forwarded-Proto, and X-Forwarded-Host and -Port are never used.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
USE_X_FORWARDED_HOST = False
USE_X_FORWARDED_PORT = False

SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

# Cookies are host-only (no Domain attribute): a browser never sends one site's cookies to
# another site, even under a shared parent domain (harbor.example.com, meadow.example.com).
# Each site module also names its cookies after the site (<site>_sessionid,
# <site>_csrftoken), so a cookie one site could set for a parent domain never counts as
# another site's; project.core's system checks refuse anything else.
SESSION_COOKIE_DOMAIN = None
CSRF_COOKIE_DOMAIN = None
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"

# The scheme browsers use, from the inventory's sitekit_public_scheme. Over https: redirect
# plain HTTP to https, secure-only cookies and HSTS. Local and rehearsal environments use
# plain HTTP and get none of these.
SITEKIT_PUBLIC_SCHEME = _env_choice("SITEKIT_PUBLIC_SCHEME", ("http", "https"), "http")
# The site's HSTS policy, from its catalogue entry (field hsts):
#   subdomains  includeSubDomains: the site's domains and every name below them (default)
#   preload     includeSubDomains and preload: only for a site that owns its registrable
#               domain and has submitted it to the browsers' preload list
#   host        the site's own domains only: for a site whose domain has other services
#               below it that are not (yet) served over HTTPS
SITEKIT_HSTS = _env_choice("SITEKIT_HSTS", HSTS_POLICIES, HSTS_POLICIES[0])
SITEKIT_SECURE = SITEKIT_PUBLIC_SCHEME == "https"
_HSTS_INCLUDE_SUBDOMAINS, _HSTS_PRELOAD = hsts_settings(SITEKIT_HSTS)

SECURE_SSL_REDIRECT = SITEKIT_SECURE
SESSION_COOKIE_SECURE = SITEKIT_SECURE
CSRF_COOKIE_SECURE = SITEKIT_SECURE
SECURE_HSTS_SECONDS = _env_int("SITEKIT_HSTS_SECONDS", 31_536_000) if SITEKIT_SECURE else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = SITEKIT_SECURE and _HSTS_INCLUDE_SUBDOMAINS
SECURE_HSTS_PRELOAD = SITEKIT_SECURE and _HSTS_PRELOAD

# `manage.py check --deploy` warns about every HSTS option left off. Preloading is opted into
# per site (hsts: preload): the preload list takes registrable domains only, and leaving it
# takes months, so it is never a default. A site that chose hsts: host did so deliberately.
SILENCED_SYSTEM_CHECKS = [
    *([] if _HSTS_PRELOAD else ["security.W021"]),
    *([] if _HSTS_INCLUDE_SUBDOMAINS else ["security.W005"]),
]


# --- Logging ------------------------------------------------------------------------

SITEKIT_LOG_LEVEL = _env("SITEKIT_LOG_LEVEL", "INFO").upper()

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s [%(process)d] %(name)s: %(message)s"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "stream": "ext://sys.stderr",
            "formatter": "plain",
        },
    },
    "root": {"handlers": ["console"], "level": SITEKIT_LOG_LEVEL},
    "loggers": {
        "django": {"handlers": ["console"], "level": SITEKIT_LOG_LEVEL, "propagate": False},
    },
}
