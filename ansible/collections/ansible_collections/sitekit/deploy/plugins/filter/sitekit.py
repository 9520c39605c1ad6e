"""Filters the sitekit roles share: derived values computed in one place."""

from __future__ import annotations

import hashlib
import hmac

TLS_MODES = ("self-signed", "provided", "acme", "off")


def tls_mode(site, default="self-signed"):
    """A site's TLS mode: its catalogue field ``tls``, else the environment's ``sitekit_tls``
    (YAML reads a bare ``off`` as false)."""
    mode = site.get("tls") if site.get("tls") is not None else default
    mode = "off" if mode is False else mode
    if mode not in TLS_MODES:
        raise ValueError(f"site '{site.get('name')}': TLS mode {mode!r} is not one of "
                         f"{', '.join(TLS_MODES)}")
    return mode


def tls_sites(sites, default="self-signed"):
    """The sites served over TLS, each ``{name, domains, mode, wildcard}`` (wildcard: whether
    any of its domains is one)."""
    found = []
    for site in sites:
        mode = tls_mode(site, default)
        if mode != "off":
            found.append({"name": site["name"], "domains": list(site["domains"]), "mode": mode,
                          "wildcard": any(d.startswith("*.") for d in site["domains"])})
    return found


def hsts_header(policy, seconds):
    """The Strict-Transport-Security value of a site's ``hsts`` policy (as Django sends it)."""
    value = f"max-age={int(seconds)}"
    if policy in ("subdomains", "preload"):
        value += "; includeSubDomains"
    if policy == "preload":
        value += "; preload"
    return value


def allowed_hosts(domains):
    """Django ALLOWED_HOSTS for a site's domains (``*.example.org`` becomes ``.example.org``)."""
    return [d[1:] if d.startswith("*.") else d for d in domains]


def origins(domains, scheme="https", port=None):
    """CSRF_TRUSTED_ORIGINS for a site's domains, with the public port when it is not default."""
    default = {"http": 80, "https": 443}.get(scheme)
    suffix = f":{port}" if port and int(port) != default else ""
    return [f"{scheme}://{d}{suffix}" for d in domains]


def site_secret(base, name):
    """A per-site SECRET_KEY derived from one environment secret (HMAC-SHA256, 64 hex digits)."""
    if not base:
        raise ValueError("sitekit_secret_key_base is empty")
    message = f"django-secret:{name}".encode()
    return hmac.new(str(base).encode(), message, hashlib.sha256).hexdigest()


def site_secret_of(name, base):
    """:func:`site_secret` with the name first, for ``map``: the keys of several sites."""
    return site_secret(base, name)


def _pow2(n):
    size = 1
    while size < n:
        size *= 2
    return size


def server_names_hash(sites):
    """nginx server_names_hash_{max,bucket}_size for every present domain of the catalogue.

    An entry takes a pointer plus the name and its length, aligned to 8 bytes. A bucket must
    hold the longest entry; once there are more than a few dozen names, room for four entries
    lets nginx build the hash within max_size (otherwise it warns on every test and reload).
    The max size is kept near twice the number of names, never below nginx's default.
    """
    names = [d for s in sites if s.get("state", "present") == "present" for d in s["domains"]]
    longest = max((len(n) for n in names), default=0)
    entry = 8 + (longest + 2 + 7) // 8 * 8
    per_bucket = 4 if len(names) > 64 else 1
    return {
        "bucket_size": max(64, _pow2(per_bucket * entry + 8)),
        "max_size": max(512, _pow2(len(names) * 2)),
    }


# Files an nginx process holds besides the per-site logs: the main access and error logs, the
# default server's log, listening sockets, standard streams, epoll and the channels between the
# master and each of its workers (2 per worker: 128 leaves room for 48 workers).
NGINX_FIXED_FILES = 128


def nginx_open_files(sites):
    """Open files nginx needs for the catalogue before it serves a single connection.

    Every present site has its own access and error log, and nginx opens them all when it loads
    its configuration (starting, ``nginx -t``, ``nginx -s``, a reload): two files per site,
    plus a fixed margin (``NGINX_FIXED_FILES``). Its workers hold the same files, and one more
    per connection on top.
    """
    present = [s for s in sites if s.get("state", "present") == "present"]
    return 2 * len(present) + NGINX_FIXED_FILES


def private_addresses(hostnames, hostvars):
    """Addresses the environment's hosts reach each other on.

    A host's ``sitekit_private_address`` when the inventory sets one (production hosts
    reached over a public address but talking over a private network), else its
    ``ansible_host``, else its inventory name.
    """
    found = []
    for name in hostnames:
        host = hostvars[name]
        found.append(host.get("sitekit_private_address") or host.get("ansible_host") or name)
    return found


def sync_catalogue(sites):
    """What ``manage.py sync_sites`` needs of each site: its canonical domain and state."""
    return [
        {
            "name": s["name"],
            "domain": s["domains"][0] if s["domains"] else None,
            "state": s["state"],
            "settings_module": s["settings_module"],
        }
        for s in sites
    ]


def pool_sites(sites, scheme="https", port=None):
    """``SITEKIT_POOL_SITES`` of a pooled master (settings.pool), as compact JSON: per present
    site of the pool its name, domains, CSRF origins and HSTS policy. The rest of each site
    (SITE_ID, brand, URLconf, cookie names) comes from its own settings module."""
    import json

    return json.dumps(
        [
            {
                "name": s["name"],
                "domains": list(s["domains"]),
                "csrf_trusted_origins": origins(s["domains"], scheme, port),
                "hsts": s.get("hsts", "subdomains"),
            }
            for s in sites
            if s.get("state", "present") == "present"
        ],
        separators=(",", ":"),
    )


def pool_keeps(results, present):
    """Sites each pool's master keeps serving while they move to another master, by pool.

    ``results`` are the ``slurp`` results of the pools' env files (loop variable ``site``: the
    master); ``present`` the names of the catalogue's present sites. A site the pool serves now
    (its env file's SITEKIT_POOL_SITES) that is still present but no longer one of the pool's
    sites is kept until nginx has switched it to its new master.
    """
    import base64
    import json

    keeps = {}
    for result in results or []:
        master = result.get("site") or {}
        if "content" not in result or master.get("kind") != "pool":
            continue
        text = base64.b64decode(result["content"]).decode("utf-8", "replace")
        serving = []
        for line in text.splitlines():
            if line.startswith("SITEKIT_POOL_SITES="):
                try:
                    serving = [s["name"] for s in json.loads(line.split("=", 1)[1])]
                except (ValueError, TypeError, KeyError):
                    serving = []
        kept = [n for n in serving if n in present and n not in master.get("sites", [])]
        if kept:
            keeps[master["name"]] = kept
    return keeps


class FilterModule:
    def filters(self):
        return {
            "allowed_hosts": allowed_hosts,
            "tls_mode": tls_mode,
            "tls_sites": tls_sites,
            "hsts_header": hsts_header,
            "origins": origins,
            "site_secret": site_secret,
            "site_secret_of": site_secret_of,
            "server_names_hash": server_names_hash,
            "nginx_open_files": nginx_open_files,
            "sync_catalogue": sync_catalogue,
            "pool_sites": pool_sites,
            "pool_keeps": pool_keeps,
            "private_addresses": private_addresses,
        }
