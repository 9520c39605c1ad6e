"""The rules about sites that both the controller and a running release need, each once.

No dependencies beyond the standard library: imported by the validator
(:mod:`sitekit.catalogue`), the resolved model (:mod:`sitekit.model`), the settings modules,
``manage.py`` and the Django management commands, which run inside a release's virtualenv.
"""

import ast
import posixpath
import re
from pathlib import Path

#: A site name: it names a Python module (settings/<name>.py), a socket, a supervisor program
#: and, in system mode, a unix user ``sk-<name>`` (at most 32 characters).
SITE_NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,28}\Z")

#: What ``state`` may be.
STATES = ("present", "absent")

#: What ``hsts`` may be: the HTTP Strict Transport Security policy a site sends when its
#: environment is served over https. The first is the default.
HSTS_POLICIES = ("subdomains", "preload", "host")
#: URL path of every site's uploads: ``/media/<site>/...`` on the site's own domains. Django's
#: MEDIA_URL (settings.base) and nginx's media locations (the model publishes it, sitekit_layout).
MEDIA_URL = "/media/"
#: The extension an uploaded image is stored with (by the format Pillow finds in it) and the type
#: it is served with: what Django accepts and names files by (project.core.uploads), what S3
#: stores and what nginx serves under /media/ (the model publishes it, sitekit_layout).
IMAGE_TYPES = {"png": "image/png", "jpg": "image/jpeg", "gif": "image/gif", "webp": "image/webp"}


def media_location(site):
    """The URL path of ``site``'s uploads (``site``: its name, or a pattern's group)."""
    return f"{MEDIA_URL}{site}/"


#: URL path of the release's collected static files: Django's STATIC_URL (settings.base), which
#: nginx serves from the live release's static/ directory.
STATIC_URL = "/static/"
#: URL path of a site's own "unavailable" pages, which nginx serves from the live release's
#: errors/<site>/ directory (rendered at deploy time) as its answer to an error, never to a
#: request for them.
ERRORS_URL = "/.sitekit-errors/"
#: The statuses nginx answers with the site's own page, ``<status>.html``: a request is larger
#: than the upload limit (413), the site's master is down, restarting or refusing (502 and 503,
#: both answered 503) or too slow (504). The release renders one page for each.
ERROR_STATUSES = ("413", "503", "504")


def _pcre(text):
    """*text* as a PCRE pattern that matches it literally (also a Python one)."""
    return re.sub(r"([.^$*+?()\[\]{}|\\])", r"\\\1", text)


_IMAGE_SUFFIX = r"\.(" + "|".join(_pcre(ext) for ext in IMAGE_TYPES) + ")"
#: A URI that names an image by its extension (nginx's S3 media location, PCRE).
MEDIA_IMAGE_URI = _IMAGE_SUFFIX + "$"


def file_location(uploads):
    """The one nginx location (PCRE) of every file a site's server block serves itself: static
    files, its unavailable pages and, with *uploads* (a media directory), its uploads."""
    paths = [STATIC_URL, ERRORS_URL] + ([MEDIA_URL] if uploads else [])
    return "^(?:" + "|".join(_pcre(path) for path in paths) + ")"


def file_requests(static_root, errors_root, media_root):
    """Which file a request to the file location gets: ``(root, [(pattern, path), ...],
    upload)``, the directory all of them are under (nginx's ``root``: the deepest that holds
    them), the pairs, tried in order, for nginx's ``map "$sitekit_site $status $uri"
    $sitekit_file`` (PCRE; the path, under the root, names the pattern's groups as $1, $2...;
    none matches: no file, 404), and what such a path of an upload starts with (PCRE; "" without
    *media_root*).

    - an upload (with *media_root*, a media directory): an image, by its extension, under the
      site's own media location: ``<media_root>/<site>/...``;
    - a static file: ``<static_root>/...``;
    - the site's unavailable page for the status nginx answers an error with
      (``error_page``): ``<errors_root>/<site>/<status>.html``. A request for it has no status
      yet (``000``) and gets nothing.
    """
    root = posixpath.commonpath([static_root, errors_root] + ([media_root] if media_root else []))

    def under(path):
        return "" if path == root else "/" + posixpath.relpath(path, root)

    rows = []
    if media_root:
        rows.append((r"^(\S+) \d{3} " + _pcre(MEDIA_URL) + r"(\1/.+" + _IMAGE_SUFFIX + ")$",
                     f"{under(media_root)}/$2"))
    rows.append((r"^\S+ \d{3} " + _pcre(STATIC_URL) + "(.+)$", f"{under(static_root)}/$1"))
    rows.append((r"^(\S+) (" + "|".join(ERROR_STATUSES) + ") " + _pcre(ERRORS_URL) + r"\2\.html$",
                 f"{under(errors_root)}/$1/$2.html"))
    upload = "^" + _pcre(under(media_root) + "/") if media_root else ""
    return root, rows, upload

#: What ``tls`` may be (a site's field, overriding its environment's ``sitekit_tls``): how
#: nginx gets the site's certificate. YAML reads a bare ``off`` as false, which means "off" too.
TLS_MODES = ("self-signed", "provided", "acme", "off")


def tls_mode(value):
    """A TLS mode as written in YAML (``off`` may arrive as false), or None when invalid."""
    if value is False:
        return "off"
    return value if isinstance(value, str) and value in TLS_MODES else None

def effective_tls(own, environment):
    """A site's TLS mode: its own field ``tls`` when set, else its environment's
    ``sitekit_tls``; None when the chosen value is not a TLS mode."""
    return tls_mode(own if own is not None else environment)


#: Names no site may take: settings modules every site, or a pooled master, uses.
RESERVED_NAMES = frozenset({"base", "pool", "dev"})

#: The settings module of a pooled master (several sites, each request by its Host).
POOL_SETTINGS_MODULE = "settings.pool"


#: Programs, sockets and users of a master are named after it; pool names follow site names.
NAME_RULE = (
    "use 1 to 29 characters, lower-case letters, digits and '_', starting with a letter"
)


def valid_name(name):
    """Whether ``name`` may name a site or a pool (a Python module, a socket, a unix user)."""
    import keyword

    return isinstance(name, str) and bool(SITE_NAME_RE.match(name)) and not keyword.iskeyword(name)


def hsts_header(policy, seconds):
    """The Strict-Transport-Security value of a site's ``hsts`` policy (as Django sends it)."""
    value = f"max-age={int(seconds)}"
    if policy in ("subdomains", "preload"):
        value += "; includeSubDomains"
    if policy == "preload":
        value += "; preload"
    return value


def hsts_settings(policy):
    """Django's (SECURE_HSTS_INCLUDE_SUBDOMAINS, SECURE_HSTS_PRELOAD) for an ``hsts`` policy."""
    return policy in ("subdomains", "preload"), policy == "preload"


class ServerNames:
    """Which of a list of catalogue domains serves a host, exactly as nginx's ``server_name``
    routes it: the name itself, else the longest wildcard ``*.name`` covering it. A wildcard
    covers every name under ``name`` (``a.name``, ``a.b.name``), never ``name`` itself.

    The one rule of which Host a site answers: a dedicated master checks each request with it
    (``project.core.middleware.HostMiddleware``), a pooled one picks the request's site with it
    (``project.core.pool``).
    """

    def __init__(self, domains):
        self.exact = set()
        self.wildcards = {}  # ".name" -> "*.name"
        for domain in domains:
            domain = domain.lower()
            if domain.startswith("*."):
                self.wildcards[domain[1:]] = domain
            else:
                self.exact.add(domain)

    def match(self, host):
        """The domain serving ``host`` (lower-case, without port or trailing dot, as Django's
        ``split_domain_port`` gives it), or None.

        One lookup for an exact name; else one per label of the host, its longest suffix
        first (``.b.c``, then ``.c`` for ``a.b.c``): as fast with 5 domains as with 50,000."""
        if host in self.exact:
            return host
        if self.wildcards:
            dot = host.find(".", 1)
            while dot != -1:
                domain = self.wildcards.get(host[dot:])
                if domain is not None:
                    return domain
                dot = host.find(".", dot + 1)
        return None


def allowed_host(domain):
    """Django's ALLOWED_HOSTS entry for a domain (``*.example.org`` becomes ``.example.org``).

    Django has no pattern for "subdomains only": ``.example.org`` lets ``example.org`` in too,
    which a site whose domain is ``*.example.org`` refuses by :class:`ServerNames`.
    """
    return domain[1:] if domain.startswith("*.") else domain


def allowed_hosts(domains):
    """ALLOWED_HOSTS for a list of domains, each once, in order."""
    return list(dict.fromkeys(allowed_host(d) for d in domains))


def origins(domains, scheme="https", port=None):
    """CSRF_TRUSTED_ORIGINS for domains, with the public port when it is not the scheme's own."""
    default = {"http": 80, "https": 443}.get(scheme)
    suffix = f":{port}" if port and int(port) != default else ""
    return [f"{scheme}://{d}{suffix}" for d in domains]


#: The highest SITE_ID: the id column of Django's Sites table is an integer (an AutoField,
#: 1 to 2147483647 in every database Django supports).
SITE_ID_MAX = 2_147_483_647

#: A settings module larger than this is not read (a site's module is a few hundred bytes).
SETTINGS_MAX_BYTES = 1 << 20

#: A ``SITE_ID = N`` line at the top level of a module's text (see :func:`claimed_site_id`).
_SITE_ID_LINE = re.compile(r"^SITE_ID[ \t]*(?::[^=\n]*)?=[ \t]*(\d+)[ \t]*(?:#.*)?$", re.M)


def _read_module(path):
    """A settings module's bytes and how it is shown (``settings/<name>.py``), or a reason."""
    path = Path(path)
    shown = f"{path.parent.name}/{path.name}"
    try:
        with path.open("rb") as handle:
            data = handle.read(SETTINGS_MAX_BYTES + 1)
    except OSError as exc:
        return None, shown, f"{shown} cannot be read: {exc.strerror or exc}"
    if len(data) > SETTINGS_MAX_BYTES:
        return None, shown, f"{shown} is larger than {SETTINGS_MAX_BYTES} bytes (not read)"
    return data, shown, None


def parse_module(path):
    """A Python module's syntax tree, read without importing it: ``(tree, None)``, or
    ``(None, reason)`` naming the module when it cannot be read or parsed (a syntax error, a
    NUL byte, nesting deeper than Python parses, a number too long to convert)."""
    data, shown, reason = _read_module(path)
    if reason:
        return None, reason
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, f"{shown} is not UTF-8 text (byte {exc.start})"
    if "\0" in text:
        line = text.count("\n", 0, text.index("\0")) + 1
        return None, f"{shown} cannot be parsed: it holds a NUL byte (line {line})"
    try:
        return ast.parse(text, filename=shown), None
    except SyntaxError as exc:
        why = str(exc.msg).split(";")[0]  # Python's advice after ';' is for programmers
        return None, f"{shown} has a syntax error on line {exc.lineno}: {why}"
    except (MemoryError, RecursionError):
        return None, f"{shown} cannot be parsed: it nests expressions too deeply"
    except ValueError as exc:
        return None, f"{shown} cannot be parsed: {exc}"


def settings_site_id(path):
    """Read ``SITE_ID`` from a settings module without importing it.

    Returns ``(site_id, None)`` or ``(None, reason)``; the reason names the module. A SITE_ID
    is a whole number from 1 to :data:`SITE_ID_MAX`.
    """
    tree, reason = parse_module(path)
    if reason:
        return None, reason
    shown = f"{Path(path).parent.name}/{Path(path).name}"
    for node in reversed(tree.body):  # the last assignment is the one Python keeps
        if isinstance(node, ast.Assign):
            targets = [t.id for t in node.targets if isinstance(t, ast.Name)]
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            targets = [node.target.id]
        else:
            continue
        if "SITE_ID" in targets:
            value = node.value
            if (
                isinstance(value, ast.Constant)
                and isinstance(value.value, int)
                and not isinstance(value.value, bool)
                and 1 <= value.value <= SITE_ID_MAX
            ):
                return value.value, None
            if isinstance(value, ast.Constant) and type(value.value) is int and value.value > 0:
                digits = len(str(value.value))
                number = str(value.value) if digits <= 20 else f"a number of {digits} digits"
                return None, (
                    f"{shown} sets SITE_ID to {number}, more than {SITE_ID_MAX}, the highest "
                    "id the Sites table holds"
                )
            return None, (
                f"{shown} sets SITE_ID to something other than a whole number from 1 to "
                f"{SITE_ID_MAX}"
            )
    return None, f"{shown} does not set SITE_ID"


def site_modules(settings_dir):
    """The sites' settings modules in ``settings_dir``, by name (``base``, ``pool`` and
    ``dev`` are shared modules, not sites), sorted."""
    return sorted(
        (
            path
            for path in Path(settings_dir).glob("*.py")
            if path.stem not in RESERVED_NAMES and valid_name(path.stem)
        ),
        key=lambda path: path.name,  # one directory: as the paths sort, without their cost
    )


def claimed_site_id(path):
    """The SITE_ID a settings module holds on to, or None: its SITE_ID when the module can be
    read (:func:`settings_site_id`), else the last top-level ``SITE_ID = N`` line of its text
    (a module that cannot be parsed still owns its number). Numbers outside 1 to
    :data:`SITE_ID_MAX` are no SITE_ID."""
    site_id, _ = settings_site_id(path)
    if site_id is not None:
        return site_id
    data, _, reason = _read_module(path)
    if reason:
        return None
    found = _SITE_ID_LINE.findall(data.decode("utf-8", "replace"))
    if not found or len(found[-1]) > len(str(SITE_ID_MAX)):
        return None
    return int(found[-1]) if 1 <= int(found[-1]) <= SITE_ID_MAX else None
