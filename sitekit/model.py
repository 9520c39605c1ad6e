"""What each site and each master becomes on a host: the catalogue resolved once.

The validator (:mod:`sitekit.catalogue`) says which catalogues are right; this module says what
a right one deploys. From the validated sites and pools and the environment's :class:`Layout`
(mode, directories, ports, TLS choice, name prefixes) :func:`resolve` returns every master (one
per present dedicated site, one per pool with a present site) and every site fully resolved:
user, socket, run, log and configuration paths, environment, allowed hosts and CSRF origins,
server-block inputs, TLS mode and certificate paths, health probe; and which masters the
catalogue knows (whose leftovers a deploy retires).

The preflight (``sitekit.deploy.catalogue``) publishes the result (:meth:`Model.variables`,
registered, not as host facts); the roles and templates read its fields; ``sitekit plan``, the
filters, bench and tests import it. Secrets are inputs of :func:`master_env` only, so what is
published holds none.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

from sitekit.catalogue import Problem, Result, Site
from sitekit.runtime.rules import (
    ERROR_STATUSES,
    ERRORS_URL,
    IMAGE_TYPES,
    MEDIA_IMAGE_URI,
    MEDIA_URL,
    SITE_NAME_RE,
    TLS_MODES,
    allowed_hosts,
    effective_tls,
    file_location,
    file_requests,
    hsts_header,
    media_location,
    origins,
    tls_mode,
)

#: Names of the files every master owns in its run directory.
SOCKET, PIDFILE, CONTROL_SOCKET = "gunicorn.sock", "gunicorn.pid", "gunicorn.ctl"
#: Names of a TLS site's certificate (with its chain) and key in its certificate directory.
CERTIFICATE_FILE, KEY_FILE = "fullchain.pem", "privkey.pem"
#: Environment keys whose values are secret (never published, never shown).
SECRET_KEYS = ("SITEKIT_SECRET_KEY", "SITEKIT_SECRET_KEY_FALLBACKS", "SITEKIT_DB_PASSWORD",
               "SITEKIT_S3_ACCESS_KEY", "SITEKIT_S3_SECRET_KEY")
#: Shortest environment secret accepted (each site's SECRET_KEY is derived from it).
MIN_SECRET_LENGTH = 32
MODES = ("local", "system")
#: Where uploads live: a directory of the host served by its nginx, or an S3 object store.
MEDIA_STORAGES = ("local", "s3")
#: What a request may carry besides its largest upload (the form's other fields, multipart).
REQUEST_BODY_MARGIN = 1024 * 1024
#: What an S3 bucket may be called (lowercase letters, digits, dots and hyphens).
BUCKET_RE = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]\Z")
#: What names a variable of a master's env file.
ENV_KEY_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
#: How nginx logs the sites' requests (``sitekit_nginx_logs``): each site its own access and
#: error log, one access log for every site with the site's name as its first field (errors in
#: nginx's main error log), or ``auto``: per site up to ``PER_SITE_LOGS_MAX`` present sites.
NGINX_LOG_LAYOUTS = ("auto", "per-site", "shared")
#: ``auto``'s largest catalogue with per-site logs: nginx opens every site's two logs whenever
#: it loads its configuration; 256 sites (512 files, 640 with the fixed margin) stay well under
#: the usual soft limit of 1,024 open files.
PER_SITE_LOGS_MAX = 256
#: How nginx finds the TLS sites' certificates (``sitekit_nginx_certificates``): each site's
#: https server block names its own (``per-site``), or one https server picks each handshake's
#: certificate by the name the client asks for (``sni``), or ``auto``: per site up to
#: ``PER_SITE_CERTIFICATES_MAX`` TLS sites. Per site, nginx builds a TLS context for every
#: site whenever it loads its configuration (about 1 ms and 40 KB each: 10,000 sites made
#: ``nginx -t`` and every reload take 8 to 30 s); by name, it builds one, and reads the site's
#: certificate and key on each new TLS session instead. A site whose certificate names an OCSP
#: responder keeps its own server's certificate either way: nginx staples only for those.
NGINX_CERTIFICATE_LAYOUTS = ("auto", "per-site", "sni")
#: ``auto``'s largest number of TLS sites whose certificates nginx loads per site.
PER_SITE_CERTIFICATES_MAX = 256


@dataclass(frozen=True)
class Layout:
    """The environment's choices that shape every master and site: the sitekit role's knobs."""

    env: str = ""
    mode: str = "local"
    root: str = "/srv/sitekit"
    current: str = "/srv/sitekit/current"
    etc_dir: str = "/etc/sitekit"
    run_dir: str = "/run/sitekit"
    log_dir: str = "/var/log/sitekit"
    tls_dir: str = "/etc/sitekit/tls"
    user_prefix: str = "sk-"
    program_prefix: str = "sitekit-"
    tls: Any = "self-signed"
    public_port: int = 80
    tls_port: int = 443
    hsts_seconds: int = 31536000
    db_engine: str = "sqlite"
    media_storage: str = "local"
    media_root: str = "/srv/sitekit/media"
    media_max_bytes: int = 5 * 1024 * 1024
    s3_endpoint: str = ""
    s3_bucket: str = ""
    web_hosts: int = 1
    nginx_logs: str = "auto"
    nginx_certificates: str = "auto"

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> Layout:
        known = {f.name for f in fields(cls)}
        data = {k: v for k, v in values.items() if k in known and v is not None}
        for name in ("public_port", "tls_port", "hsts_seconds", "media_max_bytes", "web_hosts"):
            if name in data:
                data[name] = int(data[name])
        return cls(**data)

    @property
    def default_tls(self) -> str | None:
        """The environment's TLS mode (``sitekit_tls``), or None when it is not a valid one."""
        return tls_mode(self.tls)

    @property
    def static_root(self) -> str:
        """Where nginx serves the live release's static files from (its collectstatic)."""
        return f"{self.current}/static"

    @property
    def errors_root(self) -> str:
        """Where the live release keeps each site's unavailable pages (``<site>/<status>.html``,
        rendered at deploy time)."""
        return f"{self.current}/errors"

    @property
    def request_body_limit(self) -> int:
        """The largest request body nginx accepts: the largest upload Django accepts
        (``media_max_bytes``) and room for the rest of its form."""
        return self.media_max_bytes + REQUEST_BODY_MARGIN

    def media_env(self) -> dict[str, str]:
        """Where a site's processes keep uploads (settings.base: SITEKIT_MEDIA_*, SITEKIT_S3_*;
        the S3 credentials come from the environment's vault, in ``sitekit_shared_env``)."""
        env = {"SITEKIT_MEDIA_STORAGE": self.media_storage,
               "SITEKIT_MEDIA_MAX_BYTES": str(self.media_max_bytes)}
        if self.media_storage == "s3":
            env.update(SITEKIT_S3_ENDPOINT_URL=self.s3_endpoint, SITEKIT_S3_BUCKET=self.s3_bucket)
        else:
            env["SITEKIT_MEDIA_ROOT"] = self.media_root
        return env

    def nginx_log_layout(self, present: int) -> str:
        """How nginx logs the requests of ``present`` sites: ``per-site`` or ``shared``
        (:data:`NGINX_LOG_LAYOUTS`; ``auto`` decides by the number of sites)."""
        if self.nginx_logs in ("per-site", "shared"):
            return self.nginx_logs
        return "per-site" if present <= PER_SITE_LOGS_MAX else "shared"

    def nginx_certificate_layout(self, tls_sites: int) -> str:
        """How nginx finds the certificates of ``tls_sites`` sites: ``per-site`` or ``sni``
        (:data:`NGINX_CERTIFICATE_LAYOUTS`; ``auto`` decides by the number of TLS sites)."""
        if self.nginx_certificates in ("per-site", "sni"):
            return self.nginx_certificates
        return "per-site" if tls_sites <= PER_SITE_CERTIFICATES_MAX else "sni"

    def nginx_http_layout(self, present: int, tls_sites: int) -> str:
        """Where nginx answers the TLS sites' http side (ACME challenges and the redirect to
        https): ``per-site``, a server per site next to its https one, or ``shared``, one server
        for all of them, when their certificates are chosen by name and their requests go to
        the shared access log (the site named by the Host). Each server costs nginx about
        75 us and 28 KB whenever it loads its configuration: at 10,000 sites, 0.75 s of every
        ``nginx -t`` and reload, and 280 MB."""
        shared = (self.nginx_certificate_layout(tls_sites) == "sni"
                  and self.nginx_log_layout(present) == "shared")
        return "shared" if shared else "per-site"

    @property
    def masters_etc(self) -> str:
        """Directory of every master's env file and gunicorn configuration."""
        return f"{self.etc_dir}/sites"

    @property
    def masters_logs(self) -> str:
        """Directory holding one log directory per master."""
        return f"{self.log_dir}/sites"


def env_fault(key: str, value: str) -> str | None:
    """Why ``KEY=VALUE`` cannot be one line of a master's env file that reads back as exactly
    this variable with exactly this value, or None.

    ``settings.base.load_env_file`` reads one variable per line (any line break ends one:
    ``str.splitlines``) and strips the value. A line break in a value would start another
    variable (``"x\nEVIL=1"`` sets EVIL), so values with one, or with any other control
    character, are refused rather than escaped; so are values starting or ending with white
    space, which would be read without it.
    """
    if not ENV_KEY_RE.match(key):
        return "is not a variable name (letters, digits and '_', not starting with a digit)"
    if any(unicodedata.category(c) in ("Cc", "Zl", "Zp") for c in value):
        return "contains a line break or another control character"
    if value != value.strip():
        return "starts or ends with white space"
    return None


def env_problems(env: str, shared: Mapping[str, Any] | None) -> list[Problem]:
    """The values of ``sitekit_shared_env`` (every master's env file holds them) that an env
    file cannot hold as they are (:func:`env_fault`), each named by its variable, never shown."""
    problems = []
    for key, value in (shared or {}).items():
        fault = env_fault(str(key), str(value))
        if fault:
            source = str(key).lower() if str(key).startswith("SITEKIT_") else "sitekit_shared_env"
            problems.append(Problem(
                env, "", source,
                f"{key} (every site's env file holds it) {fault}; each line of an env file is "
                "one variable, so it would not read back as it is (the value is not shown): "
                "change it, in the environment's vault if it is a secret"))
    return problems


def layout_problems(
    layout: Layout,
    *,
    secret_key_base: str = "",
    db_password: str = "",
    shared_env: Mapping[str, Any] | None = None,
) -> list[Problem]:
    """What in the environment's own settings stops a deploy, each naming its variable (its
    TLS choice is the validator's: :func:`sitekit.catalogue.tls_problems`); ``shared_env`` is
    what every master's env file holds besides its own (``sitekit_shared_env``)."""
    env = layout.env
    problems = env_problems(env, shared_env)
    if layout.mode not in MODES:
        problems.append(Problem(env, "", "sitekit_mode",
                                f"must be 'local' or 'system', got {layout.mode!r}"))
    if layout.nginx_logs not in NGINX_LOG_LAYOUTS:
        problems.append(Problem(env, "", "sitekit_nginx_logs",
                                f"must be one of {', '.join(NGINX_LOG_LAYOUTS)}, "
                                f"got {layout.nginx_logs!r}"))
    if layout.nginx_certificates not in NGINX_CERTIFICATE_LAYOUTS:
        problems.append(Problem(env, "", "sitekit_nginx_certificates",
                                f"must be one of {', '.join(NGINX_CERTIFICATE_LAYOUTS)}, "
                                f"got {layout.nginx_certificates!r}"))
    if layout.mode == "system" and layout.db_engine != "postgresql":
        problems.append(Problem(
            env, "", "sitekit_db_engine",
            f"system mode needs 'postgresql' (several site users cannot share one SQLite file), "
            f"got {layout.db_engine!r}"))
    if len(secret_key_base or "") < MIN_SECRET_LENGTH:
        problems.append(Problem(
            env, "", "sitekit_secret_key_base",
            f"the environment's secret is missing or shorter than {MIN_SECRET_LENGTH} characters: "
            "put vault_sitekit_secret_key_base in the environment's vault "
            f"(ansible-vault create inventories/{env or '<env>'}/group_vars/all/vault.yml) and "
            "run the playbook with --ask-vault-pass"))
    problems.extend(media_problems(layout, shared_env))
    if layout.db_engine == "postgresql" and not db_password:
        problems.append(Problem(
            env, "", "sitekit_db_password",
            "PostgreSQL needs a password: put vault_sitekit_db_password in the environment's "
            "vault"))
    return problems


def media_problems(layout: Layout, shared_env: Mapping[str, Any] | None) -> list[Problem]:
    """What stops the environment's uploads: an unknown storage, no size limit, an S3 store
    without its endpoint, bucket or credentials, or a host directory on several web hosts
    (each would keep its own uploads)."""
    env, shared = layout.env, shared_env or {}
    problems = []
    if layout.media_storage not in MEDIA_STORAGES:
        return [Problem(env, "", "sitekit_media_storage",
                        f"must be 'local' or 's3', got {layout.media_storage!r}")]
    if layout.media_max_bytes < 1:
        problems.append(Problem(
            env, "", "sitekit_media_max_bytes",
            f"must be a positive number of bytes, got {layout.media_max_bytes}"))
    if layout.media_storage == "local":
        # (local mode: every "host" is this machine, each with its own stack)
        if layout.mode == "system" and layout.web_hosts > 1:
            problems.append(Problem(
                env, "", "sitekit_media_storage",
                f"'local' keeps uploads on the web host that received them, and this environment "
                f"has {layout.web_hosts} web hosts: use 's3' (an object store on the storage "
                "group, docs/operations.md#uploads)"))
        return problems
    if not re.match(r"https?://[^/\s:]+(:[0-9]+)?\Z", layout.s3_endpoint or ""):
        problems.append(Problem(
            env, "", "sitekit_s3_endpoint",
            f"'s3' needs the object store's URL, http(s)://host:port, got {layout.s3_endpoint!r} "
            "(by default the first host of the storage group: is the group empty?)"))
    if not BUCKET_RE.match(layout.s3_bucket or ""):
        problems.append(Problem(
            env, "", "sitekit_s3_bucket",
            f"must be an S3 bucket name (3-63 lowercase letters, digits, '.' and '-'), "
            f"got {layout.s3_bucket!r}"))
    for key, variable in (("SITEKIT_S3_ACCESS_KEY", "sitekit_s3_access_key"),
                          ("SITEKIT_S3_SECRET_KEY", "sitekit_s3_secret_key")):
        if not str(shared.get(key) or ""):
            problems.append(Problem(
                env, "", variable,
                f"'s3' needs the object store's credentials: put vault_{variable} in the "
                "environment's vault"))
    return problems


def provided_problems(
    result: Result, layout: Layout, certificates: Mapping[str, Any] | None
) -> list[Problem]:
    """Present sites on ``tls: provided`` that the vault holds no certificate and key for."""
    have = {
        name for name, pair in (certificates or {}).items()
        if isinstance(pair, Mapping) and pair.get("certificate") and pair.get("key")
    }
    return [
        Problem(layout.env, site.name, "tls",
                "'provided' but sitekit_tls_certificates has no certificate and key for it: "
                "put them in the environment's vault (docs: rotate a certificate)")
        for site in result.sites
        if site.present and site_tls(site, layout) == "provided" and site.name not in have
    ]


def site_tls(site: Site | Mapping[str, Any], layout: Layout) -> str:
    """A site's TLS mode: its field ``tls``, else the environment's ``sitekit_tls``."""
    own = site.tls if isinstance(site, Site) else site.get("tls")
    mode = effective_tls(own, layout.tls)
    if mode is None:
        name = site.name if isinstance(site, Site) else site.get("name")
        chosen = own if own is not None else layout.tls
        raise ValueError(f"site '{name}': TLS mode {chosen!r} is not one of {', '.join(TLS_MODES)}")
    return mode


def tls_sites(sites: Iterable[Site | Mapping[str, Any]], layout: Layout) -> list[dict[str, Any]]:
    """The present sites served over TLS, each ``{name, domains, mode, wildcard}`` (wildcard:
    whether any of its domains is one): what the certificates module issues or installs."""
    found = []
    for site in sites:
        data = site.as_dict() if isinstance(site, Site) else site
        if data.get("state", "present") != "present":
            continue
        mode = site_tls(data, layout)
        if mode != "off":
            found.append({"name": data["name"], "domains": list(data["domains"]), "mode": mode,
                          "wildcard": any(d.startswith("*.") for d in data["domains"])})
    return found


def private_address(name: str, hostvars: Mapping[str, Any]) -> str:
    """The address the environment's hosts reach host ``name`` on: its
    ``sitekit_private_address`` (hosts reached over a public address but talking over a private
    network), else its ``ansible_host``, else its inventory name."""
    host = hostvars.get(name) or {}
    return str(host.get("sitekit_private_address") or host.get("ansible_host") or name)


def site_secret(base: str, name: str) -> str:
    """A master's SECRET_KEY, derived from the environment's one secret (HMAC-SHA256, hex)."""
    if not base:
        raise ValueError("sitekit_secret_key_base is empty")
    message = f"django-secret:{name}".encode()
    return hmac.new(str(base).encode(), message, hashlib.sha256).hexdigest()


def probe_host(domain: str) -> str:
    """A concrete name of a domain, for health probes (a wildcard answers for ``www.``)."""
    return "www." + domain[2:] if domain.startswith("*.") else domain


def _scheme(tls: str) -> str:
    return "http" if tls == "off" else "https"


def _port(scheme: str, layout: Layout) -> int:
    return layout.public_port if scheme == "http" else layout.tls_port


def pool_entry(site: Mapping[str, Any], scheme: str, port: int) -> dict[str, Any]:
    """What a pooled master knows of one of its sites (an entry of its sites file, read by
    settings.pool)."""
    return {
        "name": site["name"],
        "domains": list(site["domains"]),
        "csrf_trusted_origins": origins(site["domains"], scheme, port),
        "hsts": site.get("hsts", "subdomains"),
    }


def pool_sites_json(sites: Iterable[Mapping[str, Any]], scheme: str, port: int) -> str:
    """A pool's sites file: the JSON list of :func:`pool_entry`, one site per line."""
    lines = [json.dumps(pool_entry(s, scheme, port), separators=(",", ":")) for s in sites]
    return "[\n" + ",\n".join(lines) + "\n]\n"


def pool_sites_file(
    master: Mapping[str, Any],
    catalogue: Sequence[Mapping[str, Any]],
    keeps: Sequence[str] = (),
) -> str:
    """What a pool's sites file holds (``sites_file``, named by ``SITEKIT_POOL_SITES_FILE`` in
    its env file): its present sites of the catalogue (``sitekit_catalogue``) and, while they
    move to another master (``keeps``, until nginx has switched them), the sites leaving it."""
    serving = set(master["sites"]) | set(keeps)
    return pool_sites_json(
        (s for s in catalogue if s["name"] in serving and s.get("state") == "present"),
        master["scheme"], master["port"])


def _sites_file(name: str, layout: Layout) -> str:
    return f"{layout.masters_etc}/{name}.sites.json"


def _served(sites: Sequence[Site], layout: Layout) -> tuple[Site, str, int, list[str]]:
    """How a master (or one site) serves ``sites``: its first site (which decides the scheme:
    a pool's sites share one), the scheme, its public port and every domain."""
    first = sites[0]
    scheme = _scheme(site_tls(first, layout))
    return first, scheme, _port(scheme, layout), [d for site in sites for d in site.domains]


def _env(
    name: str, kind: str, settings_module: str, sites: Sequence[Site], layout: Layout
) -> dict[str, str]:
    """The environment (without secrets) of processes running ``settings_module`` for
    ``sites``: a master's, or a site's own for its management commands."""
    first, scheme, port, domains = _served(sites, layout)
    env = {"DJANGO_SETTINGS_MODULE": settings_module}
    if kind == "pool":
        # its sites, their domains and origins are in its sites file (any number of them: one
        # environment string holds at most 128 KB), which settings.pool reads
        env["SITEKIT_POOL"] = name
        env["SITEKIT_POOL_SITES_FILE"] = _sites_file(name, layout)
    else:
        env.update({
            "SITEKIT_ALLOWED_HOSTS": ",".join(allowed_hosts(domains)),
            # what nginx routes here: within ALLOWED_HOSTS, "*.name" is name's subdomains only
            "SITEKIT_DOMAINS": ",".join(domains),
            "SITEKIT_CSRF_TRUSTED_ORIGINS": ",".join(origins(domains, scheme, port)),
        })
    env.update({
        "SITEKIT_PUBLIC_SCHEME": scheme,
        "SITEKIT_WARMUP_HOST": probe_host(first.canonical_domain),
        "SITEKIT_HSTS": first.hsts,
    })
    env.update(layout.media_env())
    return env


def _master(
    name: str,
    kind: str,
    settings_module: str,
    sites: Sequence[Site],
    resources: Mapping[str, int],
    layout: Layout,
    fallbacks: Sequence[str],
) -> dict[str, Any]:
    first, scheme, port, domains = _served(sites, layout)
    run_dir = f"{layout.run_dir}/{name}"
    return {
        "name": name,
        "kind": kind,
        "state": "present",
        "settings_module": settings_module,
        "sites": [site.name for site in sites],
        "domains": domains,
        **resources,
        "canonical_domain": first.canonical_domain,
        "tls": first.tls,
        "hsts": first.hsts,
        "scheme": scheme,
        "port": port,
        "probe_host": probe_host(first.canonical_domain),
        "user": "" if layout.mode == "local" else layout.user_prefix + name,
        "program": layout.program_prefix + name,
        "run_dir": run_dir,
        "socket": f"{run_dir}/{SOCKET}",
        # the nginx upstream of its socket (web hosts: one per master, its sites proxy to it)
        "upstream": (layout.program_prefix + name).replace("-", "_"),
        "pidfile": f"{run_dir}/{PIDFILE}",
        "control_socket": f"{run_dir}/{CONTROL_SOCKET}",
        "env_file": f"{layout.masters_etc}/{name}.env",
        "conf_file": f"{layout.masters_etc}/{name}.gunicorn.py",
        # a pool's sites (pool_sites_file); a dedicated master has none
        "sites_file": _sites_file(name, layout) if kind == "pool" else "",
        "log_dir": f"{layout.masters_logs}/{name}",
        # whose keys this master accepts besides its own (sessions survive a move)
        "fallback_keys": list(fallbacks),
        "env": _env(name, kind, settings_module, sites, layout),
    }


def _site(
    site: Site, master: Mapping[str, Any] | None, layout: Layout, pool_names: Sequence[str]
) -> dict[str, Any]:
    data = site.as_dict()
    if not site.present or master is None:
        return data
    _, scheme, port, _ = _served([site], layout)
    data.update(
        pooled=bool(site.pool),
        tls_mode=site_tls(site, layout),
        scheme=scheme,
        port=port,
        probe_host=probe_host(site.canonical_domain),
        hsts_header=hsts_header(site.hsts, layout.hsts_seconds),
        wildcard=any(d.startswith("*.") for d in site.domains),
        socket=master["socket"],
        user=master["user"],
        program=master["program"],
        # nginx proxies to its master's upstream (a pool's sites share one)
        upstream=master["upstream"],
        server_block=f"{site.name}.conf",
        certificate=f"{layout.tls_dir}/{site.name}/{CERTIFICATE_FILE}",
        certificate_key=f"{layout.tls_dir}/{site.name}/{KEY_FILE}",
        # its uploads: /media/<site>/ on its own domains, from the host's directory or the store
        media_location=media_location(site.name),
        media_dir=f"{layout.media_root}/{site.name}" if layout.media_storage == "local" else "",
        media_proxy=(f"{layout.s3_endpoint}/{layout.s3_bucket}/{site.name}/"
                     if layout.media_storage == "s3" else ""),
        # what the site's management commands run with (its own settings module and key)
        env=_env(site.name, "site", site.settings_module, [site], layout),
        fallback_keys=list(pool_names),
    )
    return data


@dataclass
class Model:
    """The catalogue resolved for one layout: what the deploy publishes and the roles read."""

    layout: Layout
    sites: list[dict[str, Any]]
    masters: list[dict[str, Any]]
    pools: list[dict[str, Any]]
    known: list[dict[str, str]]

    @property
    def present_sites(self) -> list[dict[str, Any]]:
        return [s for s in self.sites if s["state"] == "present"]

    @property
    def retired(self) -> list[dict[str, str]]:
        running = {m["name"] for m in self.masters}
        return [k for k in self.known if k["name"] not in running]

    def master_of(self, name: str) -> dict[str, Any] | None:
        return next((m for m in self.masters if m["name"] == name), None)

    def owner_of(self, path: str) -> tuple[str, str] | None:
        """See :func:`owner_of`."""
        return owner_of(path, self.masters, self.known)

    def variables(self) -> dict[str, Any]:
        """What the preflight publishes, by variable name (no secret among them): its task's
        result (as :func:`publish` encodes them), registered as ``sitekit_preflight``, which
        the sitekit role's vars name (``sitekit_catalogue: "{{ sitekit_preflight.model |
        sitekit.deploy.published('sitekit_catalogue') }}"``...).

        Not host facts: Ansible deep-copies a host's facts for every task it runs, which at
        10,000 sites (some 45 MB of model) cost about 2 s a task; a registered result is read
        in place."""
        tls = tls_sites(self.sites, self.layout)
        file_root, file_rows, upload_file = file_requests(
            self.layout.static_root, self.layout.errors_root,
            self.layout.media_root if self.layout.media_storage == "local" else "")
        return {
            "sitekit_catalogue": self.sites,
            "sitekit_present_sites": self.present_sites,
            "sitekit_pool_catalogue": self.pools,
            "sitekit_masters": self.masters,
            "sitekit_known_masters": self.known,
            # the names the catalogue knows that run no master now (absent sites, sites now in
            # a pool, pools without a present site): what a deploy finds of them it retires
            "sitekit_retired_masters": self.retired,
            "sitekit_tls_sites": tls,
            # each present site's upload directory, owned by its master's user (local storage)
            "sitekit_media_dirs": [
                {"name": s["name"], "path": s["media_dir"], "user": s["user"]}
                for s in self.present_sites if s.get("media_dir")
            ],
            "sitekit_layout": {
                "masters_etc": self.layout.masters_etc,
                "masters_logs": self.layout.masters_logs,
                "tls_dir": self.layout.tls_dir,
                "certificate_file": CERTIFICATE_FILE,
                "key_file": KEY_FILE,
                # what names a site's directory (the certificates module removes only those)
                "name_pattern": SITE_NAME_RE.pattern,
                "default_tls": self.layout.default_tls,
                "media_storage": self.layout.media_storage,
                "media_root": (self.layout.media_root
                               if self.layout.media_storage == "local" else ""),
                # the URL path of every site's uploads (each under <media_url><site>/)
                "media_url": MEDIA_URL,
                # each stored extension and the type it is stored with: what nginx's mime.types
                # serves the uploads as (the tests compare them)
                "media_types": dict(IMAGE_TYPES),
                # a URI that ends as an image's (PCRE)
                "media_image_uri": MEDIA_IMAGE_URI,
                # the files a site's server block serves itself, in one location (PCRE):
                # static files, its unavailable pages and its uploads from a media directory;
                # which file a request gets, by "<site> <status> <uri>" ([pattern, path])
                "file_location": file_location(self.layout.media_storage == "local"),
                "file_root": file_root,
                "file_requests": [list(row) for row in file_rows],
                # what the path of an upload among those files starts with (PCRE)
                "upload_file": upload_file,
                # where nginx sends a request it answers with the site's own page, <status>.html
                "errors_url": ERRORS_URL,
                "error_statuses": list(ERROR_STATUSES),
                # nginx's client_max_body_size: Django's upload limit and room for the form
                "request_body_limit": self.layout.request_body_limit,
                # per-site or shared access logs (sitekit_nginx_logs resolved for this catalogue)
                "nginx_logs": self.layout.nginx_log_layout(len(self.present_sites)),
                # each site's certificate in its own server block, or chosen by SNI
                # (sitekit_nginx_certificates resolved for this catalogue)
                "nginx_certificates": self.layout.nginx_certificate_layout(len(tls)),
                # the TLS sites' http side: a server per site, or one for all of them
                "nginx_http": self.layout.nginx_http_layout(len(self.present_sites), len(tls)),
            },
        }


def publish(variables: Mapping[str, Any]) -> dict[str, str]:
    """The model's variables (:meth:`Model.variables`) as the preflight returns them: one JSON
    text and its SHA-256 digest. Ansible copies a task's result several times (to register it,
    for each callback), node by node; a model of 10,000 sites is over a million nodes, which
    took about 2.5 s a deploy, and one text costs nothing. :func:`published` reads it back."""
    text = json.dumps(variables, separators=(",", ":"))
    return {"digest": hashlib.sha256(text.encode()).hexdigest(), "json": text}


#: Models decoded in this process, by digest (:func:`published`).
_DECODED: dict[str, dict[str, Any]] = {}


def published(value: Mapping[str, Any]) -> dict[str, Any]:
    """The variables of a model as :func:`publish` returned it, decoded once per process and
    digest, and shared by every reader in it (which must not change them). Ansible forks a
    worker for each task from the controller, which decodes the model as its result arrives
    (``ansible/callback_plugins/sitekit_controller.py``): the workers find it decoded. Anything else
    reads as no variables."""
    digest = value.get("digest") if isinstance(value, Mapping) else None
    if not isinstance(digest, str):
        return {}
    decoded = _DECODED.get(digest)
    if decoded is None:
        text = value.get("json")
        decoded = json.loads(text) if isinstance(text, str) else {}
        if not isinstance(decoded, dict):
            decoded = {}
        _DECODED[digest] = decoded
    return decoded


def holds_published(items: Sequence[Any]) -> bool:
    """Whether ``items`` are the entries of one of the lists of a model this process decoded
    (:func:`published`), in order, whichever list holds them (a copy of it, as Ansible's
    templating makes): data, never templates. Told apart by the entries themselves, the same
    objects, not by their contents (10,000 compared in a third of a millisecond)."""
    if not items:
        return False
    for variables in _DECODED.values():
        for value in variables.values():
            if (isinstance(value, list) and len(value) == len(items)
                    and value[0] is items[0] and value[-1] is items[-1]
                    and all(a is b for a, b in zip(value, items, strict=True))):
                return True
    return False


def owner_of(
    path: str, masters: Iterable[Mapping[str, Any]], known: Iterable[Mapping[str, Any]] = ()
) -> tuple[str, str] | None:
    """``(master, what)`` when ``path`` is a master's environment file, a pool's sites file, a
    gunicorn configuration or supervisor program (found by its name: ``<program>.conf`` in any
    directory), from the published masters (``sitekit_masters``) and the names the catalogue knows
    (``sitekit_known_masters``, whose programs a deploy may remove); else None."""
    base = path.rsplit("/", 1)[-1]
    for master in masters:
        if path == master.get("env_file"):
            return master["name"], "environment file"
        if master.get("sites_file") and path == master["sites_file"]:
            return master["name"], "sites file"
        if path == master.get("conf_file"):
            return master["name"], "gunicorn configuration"
    for master in [*masters, *known]:
        if master.get("program") and base == f"{master['program']}.conf":
            return master["name"], "program"
    return None


def resolve(result: Result, layout: Layout) -> Model:
    """Every site and master of a validated catalogue, as ``layout`` deploys them."""
    pools = {pool.name: pool for pool in result.pools}
    pool_names = list(pools)
    masters: list[dict[str, Any]] = []
    by_name: dict[str, dict[str, Any]] = {}
    for site in result.sites:
        if not site.present or site.master in by_name:
            continue
        if site.pool:
            pool = pools[site.pool]
            master = _master(pool.name, "pool", pool.settings_module, pool.present_sites,
                             pool.resources(), layout, [s.name for s in pool.present_sites])
        else:
            master = _master(site.name, "site", site.settings_module, [site], site.resources(),
                             layout, pool_names)
        masters.append(master)
        by_name[master["name"]] = master
    sites = [_site(site, by_name.get(site.master), layout, pool_names) for site in result.sites]
    known = [
        {"name": name, "user": layout.user_prefix + name, "program": layout.program_prefix + name}
        for name in dict.fromkeys([s.name for s in result.sites] + pool_names)
    ]
    return Model(layout, sites, masters, [p.as_dict() for p in result.pools], known)


def master_env(
    master: Mapping[str, Any],
    *,
    secret_key_base: str,
    shared: Mapping[str, Any] | None = None,
) -> dict[str, str]:
    """The whole environment of a master's processes (its env file): the environment's
    ``shared`` values, the master's own from the model, its secret key and the keys it accepts
    (``fallback_keys``). A pool's env file names its sites file (:func:`pool_sites_file`)."""
    env = {str(k): str(v) for k, v in (shared or {}).items()}
    env.update(master["env"])
    env["SITEKIT_SECRET_KEY"] = site_secret(secret_key_base, master["name"])
    env["SITEKIT_SECRET_KEY_FALLBACKS"] = ",".join(
        site_secret(secret_key_base, name) for name in master.get("fallback_keys", []))
    for key, value in env.items():
        fault = env_fault(key, value)
        if fault:  # the preflight refuses it first (env_problems); never written
            raise ValueError(f"{master.get('kind', 'site')} '{master['name']}': its environment "
                             f"cannot hold {key}: it {fault} (the value is not shown)")
    return env
