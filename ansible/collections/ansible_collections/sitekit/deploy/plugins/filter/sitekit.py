"""Filters of the sitekit roles: each a thin door onto the one Python model.

What a site or master becomes is resolved once, by :mod:`sitekit.model` in the preflight, and
published by it (``sitekit_masters``, ``sitekit_present_sites``…). These filters cover what
can only be known during the deploy: a master's whole environment (secrets are inputs here,
never facts), a pool's sites file and what a pool still serves on the host, the Sites sync's
input, and nginx's sizing.
"""

from __future__ import annotations

import base64
import hashlib
import json

from ansible.errors import AnsibleFilterError

try:
    from sitekit import model
except ImportError:  # the checkout is not on sys.path: the collection puts it there
    from ansible_collections.sitekit.deploy.plugins.plugin_utils.checkout import (
        ensure_importable,
    )

    ensure_importable()
    from sitekit import model


def _raw(value):
    """A list (or mapping) of the model without Ansible's lazy wrapping, its items as the
    preflight returned them. The model holds data, never templates, so nothing is left
    unrendered (a list that holds a template is returned as it is, for Ansible to render); read
    through the wrapping item by item, 10,000 sites took seconds per filter. Any other value
    (or another ansible-core without the wrapping) is returned as it is."""
    unwrap = getattr(value, "_non_lazy_copy", None)
    if not callable(unwrap):
        return value
    raw = unwrap()
    if getattr(getattr(value, "_lazy_options", None), "template", True) is False:
        # a filter's output (the published model's variables): Ansible renders nothing in it
        return raw
    if isinstance(raw, list) and model.holds_published(raw):
        # one of the model's lists, handed on as a variable: decoded data, no template in it
        return raw
    # a list holding templates (not the model's) is read through Ansible, which renders them
    return value if _holds_template(raw) else raw


def _holds_template(value, depth=0):
    if isinstance(value, str):
        return "{{" in value or "{%" in value
    if depth < 20 and isinstance(value, dict):
        return any(_holds_template(v, depth + 1) for v in value.values())
    if depth < 20 and isinstance(value, list | tuple):
        return any(_holds_template(v, depth + 1) for v in value)
    return False


def published(value, name):
    """The variable ``name`` of the model the preflight published (its registered
    ``sitekit_preflight.model``): :func:`sitekit.model.published`, which decodes the model's
    text once per process."""
    variables = model.published(value)
    if name not in variables:
        raise AnsibleFilterError(f"the preflight's model has no variable {name!r}: run the "
                                 "preflight (the sitekit role) first")
    return variables[name]


def without_secrets(env):
    """An environment without the values the model calls secret (``model.SECRET_KEYS``)."""
    return {k: v for k, v in (env or {}).items() if k not in model.SECRET_KEYS}


def master_env(master, secret_key_base, shared=None):
    """The environment file of a master (:func:`sitekit.model.master_env`)."""
    return model.master_env(master, secret_key_base=secret_key_base, shared=shared)


def pool_sites_file(master, catalogue, keeps=None):
    """A pool's sites file (:func:`sitekit.model.pool_sites_file`); ``keeps`` maps each pool to
    the sites it serves until nginx has switched them to another master."""
    kept = (keeps or {}).get(master.get("name"), [])
    return model.pool_sites_file(master, _raw(catalogue), kept)


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
    ``names`` is how many names there are.
    """
    names = [d for s in _raw(sites) if s.get("state", "present") == "present"
             for d in s["domains"]]
    longest = max((len(n) for n in names), default=0)
    entry = 8 + (longest + 2 + 7) // 8 * 8
    per_bucket = 4 if len(names) > 64 else 1
    return {
        "bucket_size": max(64, _pow2(per_bucket * entry + 8)),
        "max_size": max(512, _pow2(len(names) * 2)),
        "names": len(names),
    }


def nginx_log_keep(sites):
    """The patterns of the log files nginx keeps: the unknown-host server's and each present
    site's access and error logs (rotated ones too); the other sites' are pruned."""
    return ["unknown-host.*"] + [f"{site['name']}{suffix}" for site in _raw(sites) or ()
                                 if site.get("state", "present") == "present"
                                 for suffix in (".access.log*", ".error.log*")]


def nginx_certificate_map(tls_sites, indent=4):
    """The entries of nginx's map from a session's server name (SNI) to its site, one line per
    domain of every TLS site (``sitekit_tls_sites``): ``<domain> <site>;``, wildcards as nginx's
    ``hostnames`` map takes them. What names a certificate's directory is the site's name."""
    pad = " " * int(indent)
    return "\n".join(f"{pad}{domain} {site['name']};"
                     for site in _raw(tls_sites) for domain in site["domains"])


def nginx_server_names(tls_sites, indent=8):
    """Every domain of every TLS site (``sitekit_tls_sites``), one per line: the names of the
    one http server of all TLS sites (``sitekit_layout.nginx_http``: shared)."""
    pad = " " * int(indent)
    return "\n".join(f"{pad}{domain}" for site in _raw(tls_sites) for domain in site["domains"])


# Files an nginx process holds besides the per-site logs: the main access and error logs, the
# default server's log, listening sockets, standard streams, epoll and the channels between the
# master and each of its workers (2 per worker: 128 leaves room for 48 workers).
NGINX_FIXED_FILES = 128


def nginx_open_files(sites, logs="per-site"):
    """Open files nginx needs for the catalogue before it serves a single connection.

    With per-site logs (``logs``: the model's ``sitekit_layout.nginx_logs``) every present site
    has its own access and error log, and nginx opens them all when it loads its configuration
    (starting, ``nginx -t``, ``nginx -s``, a reload): two files per site, plus a fixed margin
    (``NGINX_FIXED_FILES``). With one shared access log, the margin alone, whatever the number
    of sites. Its workers hold the same files, and one more per connection on top.
    """
    if logs == "shared":
        return NGINX_FIXED_FILES
    present = [s for s in _raw(sites) if s.get("state", "present") == "present"]
    return 2 * len(present) + NGINX_FIXED_FILES


def private_addresses(hostnames, hostvars):
    """:func:`sitekit.model.private_address` of each host."""
    return [model.private_address(name, hostvars) for name in hostnames]


def sync_catalogue(sites):
    """What ``manage.py sync_sites`` needs of each site: its canonical domain and state."""
    return [
        {
            "name": s["name"],
            "domain": s["domains"][0] if s["domains"] else None,
            "state": s["state"],
            "settings_module": s["settings_module"],
        }
        for s in _raw(sites)
    ]


def release_inputs(sites, environment, env_json, seed_demo, keep):
    """The hash of what a deploy's work depends on besides the release: the catalogue as the
    Sites sync reads it (``sync_catalogue``), the shared settings without their secrets (given
    as JSON, rendered by Ansible), the demonstration content and the retention. The same text
    as ``{'catalogue': {'environment': ..., 'sites': ...}, 'env': ..., 'seed_demo': ...,
    'keep': ...} | to_json | hash('sha256')``, without Ansible's templating of 10,000 sites
    (0.5 s)."""
    data = {"catalogue": {"environment": str(environment), "sites": sync_catalogue(sites)},
            "env": json.loads(env_json), "seed_demo": bool(seed_demo), "keep": int(keep)}
    return hashlib.sha256(json.dumps(data).encode()).hexdigest()


def pick(entries, keys):
    """Each entry of the model's list ``entries`` with only ``keys`` (those it has): what a
    module needs of the masters, without a pool's thousands of sites and domains."""
    return [{key: entry[key] for key in keys if key in entry} for entry in _raw(entries) or ()]


def pool_files(masters):
    """Each pool master's name and the files that say what it serves (its sites file, its env
    file): what ``sitekit.deploy.pool_serving`` reads, without the rest of the model's entry
    (a pool's sites and domains, thousands of names, are not the module's business)."""
    return [{"name": m["name"], "kind": m["kind"], "sites_file": m.get("sites_file") or "",
             "env_file": m.get("env_file") or ""}
            for m in _raw(masters) or () if m.get("kind") == "pool"]


def pool_keeps(results, present, masters=None):
    """Sites each pool's master keeps serving while they move to another master, by pool.

    ``results`` are ``sitekit.deploy.pool_serving``'s (``site``: the master; ``content``: the
    base64 of its sites file, or of the ``SITEKIT_POOL_SITES=`` line a release before the sites
    files wrote into its env file); ``present`` the catalogue's present sites (the
    model's ``sitekit_present_sites``) or their names; ``masters`` the model's masters, which
    give each pool's own sites when the result's master does not (``pool_files``). A site the
    pool serves now that is still present but no longer one of the pool's sites is kept until
    nginx has switched it to its new master.
    """
    own_sites = {m["name"]: m.get("sites") or () for m in _raw(masters) or ()}
    keeps = {}
    for result in results or []:
        master = result.get("site") or {}
        if "content" not in result or master.get("kind") != "pool":
            continue
        text = base64.b64decode(result["content"]).decode("utf-8", "replace")
        if not text.lstrip().startswith("["):
            text = next((line.split("=", 1)[1] for line in text.splitlines()
                         if line.startswith("SITEKIT_POOL_SITES=")), "[]")
        try:
            serving = [s["name"] for s in json.loads(text)]
        except (ValueError, TypeError, KeyError):
            serving = []
        # plain sets, read once: a membership test on Ansible's lazy lists renders the
        # whole list each time (minutes for a thousand sites)
        if not isinstance(present, set):
            present = {p["name"] if isinstance(p, dict) else p for p in _raw(present) or ()}
        own = set(master["sites"] if "sites" in master else own_sites.get(master["name"], ()))
        kept = [n for n in serving if n in present and n not in own]
        if kept:
            keeps.setdefault(master["name"], [])
            keeps[master["name"]] += [n for n in kept if n not in keeps[master["name"]]]
    return keeps


class FilterModule:
    def filters(self):
        return {
            "published": published,
            "master_env": master_env,
            "without_secrets": without_secrets,
            "server_names_hash": server_names_hash,
            "nginx_certificate_map": nginx_certificate_map,
            "nginx_server_names": nginx_server_names,
            "nginx_log_keep": nginx_log_keep,
            "nginx_open_files": nginx_open_files,
            "sync_catalogue": sync_catalogue,
            "pool_keeps": pool_keeps,
            "pool_files": pool_files,
            "pick": pick,
            "release_inputs": release_inputs,
            "pool_sites_file": pool_sites_file,
            "private_addresses": private_addresses,
        }
