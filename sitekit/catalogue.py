"""The site catalogue: its schema, its validator and the normalised form the deploy uses.

The catalogue is the list ``sitekit_sites`` in ``inventories/<env>/group_vars/all/sites.yml``.
Everything here is pure: it takes already-parsed data and returns problems or normalised sites.
The CLI (``sitekit check``), the playbook's preflight (the ``sitekit.deploy.catalogue`` action)
and the tests all call :func:`validate`.
"""

from __future__ import annotations

import difflib
import keyword
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from sitekit.crosschecks import (
    Unreadable,
    cross_environment_problems,
    site_id_problems,
)
from sitekit.domains import DomainError, check_stored_domain, valid_hint
from sitekit.echo import clean, shown
from sitekit.problems import SITES_VAR, Problem
from sitekit.problems import site_label as _label
from sitekit.runtime.rules import (
    HSTS_POLICIES,
    POOL_SETTINGS_MODULE,
    RESERVED_NAMES,
    SITE_NAME_RE,
    STATES,
    TLS_MODES,
    effective_tls,
    tls_mode,
)
from sitekit.siteids import SiteIds


@dataclass(frozen=True)
class IntField:
    """A whole-number resource field with its default and allowed range."""

    default: int
    low: int
    high: int
    help: str


#: Resource fields of a site. The defaults here are the only defaults: the deploy receives
#: every site with these filled in.
RESOURCE_FIELDS: dict[str, IntField] = {
    "workers": IntField(2, 1, 64, "gunicorn worker processes"),
    "threads": IntField(1, 1, 64, "threads per worker (more than 1 selects the gthread worker)"),
    "timeout": IntField(30, 5, 600, "seconds a request may run before its worker is replaced"),
    "graceful_timeout": IntField(30, 1, 600, "seconds workers get to finish on reload or stop"),
    "max_requests": IntField(1000, 0, 1_000_000, "requests before a worker is recycled (0: never)"),
    "max_requests_jitter": IntField(100, 0, 100_000, "random extra to spread recycling"),
    "backlog": IntField(2048, 64, 65535, "pending connections the site's socket queues"),
}

KNOWN_FIELDS = ("name", "domains", "state", *RESOURCE_FIELDS, "hsts", "tls", "pool")

#: The environment's pools: ``sitekit_pools`` in sites.yml, next to ``sitekit_sites``.
POOLS_VAR = "sitekit_pools"
#: What a pool's entry may set: the resources of its master, which its sites share.
POOL_FIELDS = tuple(RESOURCE_FIELDS)
#: Present sites one pool may serve. Its master accepts each of its sites' secret keys
#: (``SECRET_KEY_FALLBACKS``: 64 hex digits and a comma each, one environment variable), and
#: Linux limits one environment string to 128 KiB (MAX_ARG_STRLEN), which a master's in-place
#: re-exec must pass on: 2,016 keys fit; split a larger pool.
MAX_POOL_SITES = 2000


@dataclass(kw_only=True)
class Resources:
    """What a gunicorn master runs with (RESOURCE_FIELDS): a dedicated site's own, or its
    pool's (which its pooled sites carry too)."""

    workers: int = RESOURCE_FIELDS["workers"].default
    threads: int = RESOURCE_FIELDS["threads"].default
    timeout: int = RESOURCE_FIELDS["timeout"].default
    graceful_timeout: int = RESOURCE_FIELDS["graceful_timeout"].default
    max_requests: int = RESOURCE_FIELDS["max_requests"].default
    max_requests_jitter: int = RESOURCE_FIELDS["max_requests_jitter"].default
    backlog: int = RESOURCE_FIELDS["backlog"].default

    def resources(self) -> dict[str, int]:
        return {fname: getattr(self, fname) for fname in RESOURCE_FIELDS}


@dataclass
class Site(Resources):
    """A validated site with every default filled in."""

    name: str
    domains: list[str]
    state: str = "present"
    hsts: str = HSTS_POLICIES[0]
    tls: str | None = None  # None: the environment's sitekit_tls
    settings_module: str = ""
    site_id: int | None = None
    #: The pool whose master serves this site, or None for its own (dedicated) master. A pooled
    #: site's resource fields above are its pool's.
    pool: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def canonical_domain(self) -> str | None:
        return self.domains[0] if self.domains else None

    @property
    def present(self) -> bool:
        return self.state == "present"

    @property
    def master(self) -> str:
        """The gunicorn master serving the site: its pool's, else its own (named after it)."""
        return self.pool or self.name

    @property
    def master_settings_module(self) -> str:
        """What DJANGO_SETTINGS_MODULE its master runs: settings.pool for a pooled site."""
        return POOL_SETTINGS_MODULE if self.pool else self.settings_module

    def as_dict(self) -> dict[str, Any]:
        # every field but extra, as dataclasses.asdict gives them (its deep copy of each value
        # was most of resolving 10,000 sites: the only container, domains, is copied here)
        data = {name: getattr(self, name) for name in _SITE_FIELDS}
        data["domains"] = list(self.domains)
        data["canonical_domain"] = self.canonical_domain
        data["master"] = self.master
        data["master_settings_module"] = self.master_settings_module
        return data


#: What Site.as_dict gives (every field but extra).
_SITE_FIELDS = tuple(f.name for f in fields(Site) if f.name != "extra")


@dataclass
class Pool(Resources):
    """A validated pool: one gunicorn master serving several sites, each request by Host."""

    name: str
    #: Its sites in catalogue order, of every state (absent ones keep their ``pool``).
    sites: list[Site]
    settings_module: str = POOL_SETTINGS_MODULE

    @property
    def present_sites(self) -> list[Site]:
        return [site for site in self.sites if site.present]

    @property
    def present(self) -> bool:
        """A pool runs a master while at least one of its sites is present."""
        return bool(self.present_sites)

    def as_dict(self) -> dict[str, Any]:
        data = self.resources()
        data.update(
            name=self.name,
            settings_module=self.settings_module,
            state="present" if self.present else "absent",
            sites=[site.name for site in self.present_sites],
            domains=[d for site in self.present_sites for d in site.domains],
        )
        return data


@dataclass
class Result:
    sites: list[Site]
    problems: list[Problem]
    pools: list[Pool] = field(default_factory=list)
    #: What could not be checked (a neighbour whose catalogue cannot be read); not problems.
    warnings: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _suggest(name: Any, choices: tuple[str, ...]) -> str:
    if not isinstance(name, str):
        return ""
    close = difflib.get_close_matches(name, choices, n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _key(key: Any) -> str:
    """A mapping's key as a field names it: as written when it is text."""
    return key if isinstance(key, str) else shown(key)


def _check_int(
    env: str, site: str, name: str, value: Any, problems: list[Problem], where: str = ""
) -> int | None:
    spec = RESOURCE_FIELDS[name]
    where = where or name
    if isinstance(value, bool) or not isinstance(value, int):
        problems.append(
            Problem(env, site, where, f"must be a whole number, got {shown(value)} ({spec.help})")
        )
        return None
    if not spec.low <= value <= spec.high:
        problems.append(
            Problem(
                env,
                site,
                where,
                f"must be between {spec.low} and {spec.high}, got {shown(value)} ({spec.help})",
            )
        )
        return None
    return value


def _check_pools(env: str, raw: Any, problems: list[Problem]) -> dict[str, dict[str, int]]:
    """The pools declared in ``sitekit_pools``, by name, with their resources filled in.

    A pool whose own entry is invalid is still returned (with defaults for what is wrong), so
    that its sites are not also reported as naming an unknown pool.
    """
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        problems.append(
            Problem(
                env,
                "",
                POOLS_VAR,
                f"must be a mapping of pool names to their resources, got {shown(raw)}",
            )
        )
        return {}
    pools: dict[str, dict[str, int]] = {}
    for name, entry in raw.items():
        where = f"{POOLS_VAR}.{_key(name)}"
        if not isinstance(name, str) or not SITE_NAME_RE.match(name) or keyword.iskeyword(name):
            problems.append(
                Problem(
                    env,
                    "",
                    where,
                    f"{shown(name)} is not a valid pool name: use 1 to 29 characters, lower-case "
                    "letters, digits and '_', starting with a letter (it names a socket, a "
                    "supervisor program and a unix user)",
                )
            )
            continue
        if entry is None:
            entry = {}
        if not isinstance(entry, dict):
            problems.append(
                Problem(
                    env,
                    "",
                    where,
                    f"must be a mapping of the pool's resources ({', '.join(POOL_FIELDS)}), "
                    f"got {shown(entry)}",
                )
            )
            entry = {}
        values: dict[str, int] = {}
        for key in entry:
            if key not in POOL_FIELDS:
                problems.append(
                    Problem(
                        env,
                        "",
                        f"{where}.{_key(key)}",
                        f"unknown field{_suggest(key, POOL_FIELDS)}; "
                        f"a pool sets its master's resources: {', '.join(POOL_FIELDS)}",
                    )
                )
        for fname, spec in RESOURCE_FIELDS.items():
            checked = _check_int(
                env, "", fname, entry.get(fname, spec.default), problems, f"{where}.{fname}"
            )
            values[fname] = spec.default if checked is None else checked
        pools[name] = values
    return pools


def _check_site(
    env: str,
    index: int,
    entry: Any,
    problems: list[Problem],
    site_id_reader: SiteIds | None,
    site_ids: list[tuple[str, int]],
    pools: Mapping[str, dict[str, int]],
) -> Site | None:
    label = _label(entry, index)
    if not isinstance(entry, dict):
        problems.append(
            Problem(env, label, "", f"each site must be a mapping of fields, got {shown(entry)}")
        )
        return None

    before = len(problems)
    for key in entry:
        if key not in KNOWN_FIELDS:
            problems.append(
                Problem(
                    env,
                    label,
                    _key(key),
                    f"unknown field{_suggest(key, KNOWN_FIELDS)}; "
                    f"known fields: {', '.join(KNOWN_FIELDS)}",
                )
            )

    name = entry.get("name")
    if name is None:
        problems.append(Problem(env, label, "name", "is required"))
    elif not isinstance(name, str) or not SITE_NAME_RE.match(name) or keyword.iskeyword(name):
        problems.append(
            Problem(
                env,
                label,
                "name",
                f"{shown(name)} is not a valid site name: use 1 to 29 characters, lower-case "
                "letters, "
                "digits and '_', starting with a letter (it names a Python module, a socket "
                "and a unix user)",
            )
        )
    elif name in RESERVED_NAMES:
        problems.append(
            Problem(
                env, label, "name", f"'{name}' is reserved (settings/{name}.py is shared)"
            )
        )

    state = entry.get("state", "present")
    if state not in STATES:
        problems.append(
            Problem(env, label, "state", f"must be 'present' or 'absent', got {shown(state)}")
        )

    hsts = entry.get("hsts", HSTS_POLICIES[0])
    if hsts not in HSTS_POLICIES:
        problems.append(
            Problem(
                env,
                label,
                "hsts",
                f"must be {', '.join(repr(p) for p in HSTS_POLICIES[:-1])} or "
                f"{HSTS_POLICIES[-1]!r}, got {shown(hsts)} (the site's HSTS policy over https)",
            )
        )

    tls = entry.get("tls")
    if "tls" in entry and tls_mode(tls) is None:
        problems.append(
            Problem(
                env,
                label,
                "tls",
                f"must be {', '.join(repr(m) for m in TLS_MODES[:-1])} or {TLS_MODES[-1]!r}, "
                f"got {shown(tls)} (how the site's certificate is obtained; leave it out to use "
                "the environment's sitekit_tls)",
            )
        )

    domains = entry.get("domains", [])
    clean_domains: list[str] = []
    if domains is None:
        domains = []
    if not isinstance(domains, list):
        problems.append(
            Problem(
                env, label, "domains", f"must be a list of domain names, got {shown(domains)}"
            )
        )
        domains = []
    seen: set[str] = set()
    for i, domain in enumerate(domains):
        where = f"domains[{i}]"
        try:
            check_stored_domain(domain)
        except DomainError as exc:
            problems.append(Problem(env, label, where, str(exc)))
            continue
        if domain in seen:
            problems.append(Problem(env, label, where, f"'{domain}' is listed twice in this site"))
            continue
        seen.add(domain)
        clean_domains.append(domain)
    if clean_domains and clean_domains[0].startswith("*."):
        concrete = valid_hint(clean_domains[0].replace("*", "www", 1))
        problems.append(
            Problem(
                env,
                label,
                "domains[0]",
                f"the first domain is the site's canonical domain and cannot be a wildcard "
                f"('{clean_domains[0]}'); put a concrete name"
                f"{f' such as {concrete}' if concrete else ''} first",
            )
        )
    if state == "present" and not entry.get("domains"):
        problems.append(
            Problem(
                env,
                label,
                "domains",
                "a present site needs at least one domain (the first is its canonical domain)",
            )
        )

    pool = entry.get("pool")
    values: dict[str, int] = {}
    if pool is None:
        for fname, spec in RESOURCE_FIELDS.items():
            checked = _check_int(env, label, fname, entry.get(fname, spec.default), problems)
            if checked is not None:
                values[fname] = checked
    elif not isinstance(pool, str) or pool not in pools:
        declared = ", ".join(sorted(pools)) or f"none (declare it in {POOLS_VAR})"
        suggestion = _suggest(pool, tuple(pools)) if isinstance(pool, str) else ""
        problems.append(
            Problem(
                env,
                label,
                "pool",
                f"unknown pool {shown(pool)}{suggestion}; pools of this environment: {declared}",
            )
        )
    else:
        for fname in RESOURCE_FIELDS:
            if fname in entry:
                problems.append(
                    Problem(
                        env,
                        label,
                        fname,
                        f"a pooled site has no resources of its own: pool '{pool}' runs it; "
                        f"set {fname} under {POOLS_VAR}.{pool}, or remove 'pool' to give the "
                        "site its own master",
                    )
                )
        values = dict(pools[pool])

    site_id = None
    name_ok = isinstance(name, str) and SITE_NAME_RE.match(name) and not keyword.iskeyword(name)
    # a reserved name has been refused once above: its shared module is not a site's
    if name_ok and name not in RESERVED_NAMES and site_id_reader is not None:
        read = site_id_reader.read(name)
        if read is None:
            problems.append(
                Problem(
                    env,
                    label,
                    "name",
                    f"no settings module for this site: expected settings/{name}.py "
                    "(create it from another site's module, or fix the name)",
                )
            )
        else:
            site_id, reason = read
            if reason:
                problems.append(Problem(env, label, "name", reason))
            else:
                site_ids.append((name, site_id))

    if len(problems) != before:
        return None
    return Site(
        name=name,
        domains=clean_domains,
        state=state,
        hsts=hsts,
        tls=tls_mode(tls) if "tls" in entry else None,
        settings_module=f"settings.{name}",
        site_id=site_id,
        pool=pool,
        **values,
    )


def tls_choice_problem(value: Any) -> str | None:
    """What is wrong with an environment's ``sitekit_tls``, or None when it is a TLS mode."""
    if tls_mode(value) is not None:
        return None
    return (f"sitekit_tls must be {', '.join(map(repr, TLS_MODES[:-1]))} or {TLS_MODES[-1]!r}, "
            f"got {shown(value)}")


def tls_problems(env: str, tls: Any, sites: list[Site]) -> list[Problem]:
    """The environment's TLS choice, and what each present site's TLS mode cannot serve:
    certbot's webroot mode answers http-01 challenges only, so ``acme`` cannot cover a
    wildcard domain."""
    choice = tls_choice_problem(tls)
    if choice:
        return [Problem(env, "", "", choice)]
    problems = []
    for site in sites:
        mode = effective_tls(site.tls, tls)
        wildcards = [d for d in site.domains if d.startswith("*.")]
        if site.present and mode == "acme" and wildcards:
            problems.append(Problem(
                env, site.name, "tls",
                f"'acme' cannot cover a wildcard domain ('{wildcards[0]}'; certbot's webroot "
                "mode answers http-01 challenges only): provide the certificate (tls: provided)"))
    return problems


def validate(
    raw: Any,
    *,
    env: str = "",
    project_root: str | Path | None = None,
    others: Mapping[str, Any] | None = None,
    pools: Any = None,
    tls: Any = None,
) -> Result:
    """Validate a catalogue (the value of ``sitekit_sites``) and normalise it.

    ``project_root``, when given, is the codebase whose ``settings/`` must hold a module for
    every site. ``others``, when given, maps the other environments' names to their raw
    catalogues: a domain that one of them also lists is a problem
    (:func:`cross_environment_problems`); one that is :class:`Unreadable` is a warning (its
    domains were not compared). ``pools`` is the value of ``sitekit_pools``: pool
    name -> the resources of its master (a site joins one with ``pool: NAME``). ``tls``, when
    given, is the environment's ``sitekit_tls``: it must be a TLS mode, and what a site's mode
    (its own or this one) cannot serve is a problem (:func:`tls_problems`). All problems are
    collected; none is raised.
    """
    root = Path(project_root) if project_root is not None else None
    problems: list[Problem] = []
    warnings = [
        Problem(
            env,
            "",
            "",
            f"domains not checked against environment {shown(other)}: its catalogue cannot be "
            f"read (`sitekit check {clean(other)}` says why)",
        )
        for other in sorted(others or {})
        if isinstance(others[other], Unreadable)
    ]
    if raw is None:
        raw = []
    if not isinstance(raw, list):
        return Result(
            [],
            [Problem(env, "", SITES_VAR, f"must be a list of sites, got {shown(raw)}")],
            warnings=warnings,
        )

    declared = _check_pools(env, pools, problems)
    sites: list[Site] = []
    site_ids: list[tuple[str, int]] = []
    reader = SiteIds(root / "settings") if root is not None else None
    for index, entry in enumerate(raw):
        site = _check_site(env, index, entry, problems, reader, site_ids, declared)
        if site is not None:
            sites.append(site)
    if reader is not None:
        reader.save()

    entries = [e for e in raw if isinstance(e, dict)]
    site_names = {e.get("name") for e in entries if isinstance(e.get("name"), str)}
    members = {e.get("pool") for e in entries if isinstance(e.get("pool"), str)}
    for name in declared:
        if name in site_names:
            problems.append(
                Problem(
                    env,
                    "",
                    f"{POOLS_VAR}.{name}",
                    f"'{name}' is the name of a site: a pool needs a name of its own (it names "
                    "a master's socket, supervisor program and unix user, as a site does)",
                )
            )
        elif name not in members:
            problems.append(
                Problem(
                    env,
                    "",
                    f"{POOLS_VAR}.{name}",
                    f"pool '{name}' has no site: put a site in it (pool: {name}) or remove it",
                )
            )

    for name in declared:
        pooled = [site for site in sites if site.pool == name]
        if len({site.tls == "off" for site in pooled}) > 1:
            plain = next(site for site in pooled if site.tls == "off")
            other = next(site for site in pooled if site.tls != "off")
            other_tls = f"tls: {other.tls}" if other.tls else "the environment's sitekit_tls"
            problems.append(
                Problem(
                    env,
                    plain.name,
                    "tls",
                    f"'off' while site '{other.name}' of the same pool '{name}' has "
                    f"{other_tls}: the sites of a pool share one scheme (set tls the same way "
                    "on each, or give this site its own master)",
                )
            )

    present_in = Counter(site.pool for site in sites if site.pool and site.present)
    for name, present in present_in.items():
        if present > MAX_POOL_SITES:
            problems.append(
                Problem(
                    env,
                    "",
                    f"{POOLS_VAR}.{name}",
                    f"pool '{name}' has {present:,} present sites; a pool serves at most "
                    f"{MAX_POOL_SITES:,} (its master holds each site's secret key in one "
                    "environment variable, which Linux limits to 128 KiB): split it into "
                    "several pools",
                )
            )

    by_name: dict[str, int] = {}
    for index, entry in enumerate(raw):
        name = entry.get("name") if isinstance(entry, dict) else None
        if isinstance(name, str):
            if name in by_name:
                problems.append(
                    Problem(
                        env,
                        name,
                        "name",
                        f"site name is used twice (entries #{by_name[name] + 1} and #{index + 1})",
                    )
                )
            else:
                by_name[name] = index

    owner: dict[str, str] = {}
    for index, entry in enumerate(raw):
        if not isinstance(entry, dict) or not isinstance(entry.get("domains"), list):
            continue
        label = _label(entry, index)
        for i, domain in enumerate(entry["domains"]):
            if not isinstance(domain, str):
                continue
            if domain in owner and owner[domain] != label:
                problems.append(
                    Problem(
                        env,
                        label,
                        f"domains[{i}]",
                        f"{shown(domain)} already belongs to site {shown(owner[domain])}: "
                        "a domain may belong to one site only",
                    )
                )
            owner.setdefault(domain, label)

    if root is not None:
        problems.extend(site_id_problems(env, root, site_ids))

    if others:
        problems.extend(cross_environment_problems(env, raw, others))
    if tls is not None:
        problems.extend(tls_problems(env, tls, sites))

    if problems:
        return Result([], problems, warnings=warnings)
    return Result(
        sites,
        problems,
        [
            Pool(name, [s for s in sites if s.pool == name], **values)
            for name, values in declared.items()
        ],
        warnings,
    )
