"""The site catalogue: its schema, its validator and the normalised form the deploy uses.

The catalogue is the list ``sitekit_sites`` in ``inventories/<env>/group_vars/all/sites.yml``.
Everything here is pure: it takes already-parsed data and returns problems or normalised sites.
The CLI (``sitekit check``), the playbook's preflight (the ``sitekit.deploy.catalogue`` action)
and the tests all call :func:`validate`.
"""

from __future__ import annotations

import difflib
import keyword
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sitekit.domains import DomainError, check_stored_domain, valid_hint
from sitekit.echo import clean, shown
from sitekit.loader import Loaded
from sitekit.runtime.rules import (
    HSTS_POLICIES,
    POOL_SETTINGS_MODULE,
    RESERVED_NAMES,
    SITE_NAME_RE,
    STATES,
    TLS_MODES,
    claimed_site_id,
    effective_tls,
    settings_site_id,
    site_modules,
    tls_mode,
)


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

#: The catalogue: ``sitekit_sites`` in sites.yml, the list of the environment's sites.
SITES_VAR = "sitekit_sites"

#: The environment's pools: ``sitekit_pools`` in sites.yml, next to ``sitekit_sites``.
POOLS_VAR = "sitekit_pools"
#: What a pool's entry may set: the resources of its master, which its sites share.
POOL_FIELDS = tuple(RESOURCE_FIELDS)


@dataclass(frozen=True, order=True)
class Problem:
    """One thing wrong with a catalogue, located by environment, site and field."""

    env: str
    site: str
    field: str
    message: str

    def __str__(self) -> str:
        # names and fields may come from the file as written: escaped and cut, as values are
        where = [clean(self.env)] if self.env else []
        if self.site:
            where.append(f"site '{clean(self.site)}'")
        if self.field:
            where.append(f"field '{clean(self.field)}'")
        message = self.message if self.message.isprintable() else clean(self.message, 10_000)
        return f"{': '.join(where)}: {message}" if where else message


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
        data = asdict(self)
        data.pop("extra")
        data["canonical_domain"] = self.canonical_domain
        data["master"] = self.master
        data["master_settings_module"] = self.master_settings_module
        return data


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


def _label(entry: Any, index: int) -> str:
    if isinstance(entry, dict) and isinstance(entry.get("name"), str) and entry["name"]:
        return entry["name"]
    return f"#{index + 1}"


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
    project_root: Path | None,
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
    if name_ok and name not in RESERVED_NAMES and project_root is not None:
        module = project_root / "settings" / f"{name}.py"
        if not module.is_file():
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
            site_id, reason = settings_site_id(module)
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


def site_id_problems(env: str, root: Path, site_ids: list[tuple[str, int]]) -> list[Problem]:
    """SITE_IDs that two settings modules share, where one is a site of this catalogue.

    ``site_ids`` are the catalogue's sites and their SITE_IDs; every other site module in
    ``root/settings`` counts with the SITE_ID it claims (even when it cannot be parsed: see
    :func:`~sitekit.runtime.rules.claimed_site_id`). One problem per shared SITE_ID, on the
    last of the catalogue's sites that has it, naming every module that sets it.
    """
    listed = dict(site_ids)
    claimed: dict[str, int] = {}
    for path in site_modules(root / "settings"):
        if path.stem not in listed:
            site_id = claimed_site_id(path)
            if site_id is not None:
                claimed[path.stem] = site_id
    free = max([0, *listed.values(), *claimed.values()]) + 1
    problems = []
    for site_id in dict.fromkeys(listed.values()):
        names = [n for n, i in site_ids if i == site_id]
        names = list(dict.fromkeys(names)) + sorted(n for n, i in claimed.items() if i == site_id)
        if len(names) < 2:
            continue
        modules = [f"settings/{name}.py" for name in names]
        both = "both" if len(modules) == 2 else "all"
        problems.append(
            Problem(
                env,
                [n for n in names if n in listed][-1],
                "name",
                f"{', '.join(modules[:-1])} and {modules[-1]} {both} set SITE_ID {site_id}: "
                "each site needs its own row in the Sites table (give all but one of them a "
                f"new SITE_ID; the next free one is {free})",
            )
        )
    return problems


def _configured_domains(raw: Any) -> list[tuple[int, Any, str, str]]:
    """(index, entry, state, domain) of each domain string of a raw catalogue, once per site."""
    found = []
    for index, entry in enumerate(raw if isinstance(raw, list) else []):
        if not isinstance(entry, dict) or not isinstance(entry.get("domains"), list):
            continue
        state = entry.get("state", "present")
        seen: set[str] = set()
        for domain in entry["domains"]:
            if isinstance(domain, str) and domain not in seen:
                seen.add(domain)
                found.append((index, entry, state, domain))
    return found


@dataclass(frozen=True)
class Unreadable:
    """In ``others`` (of :func:`validate`): a neighbouring environment whose catalogue cannot be
    read. Its domains cannot be compared; the result warns that they were not (checking that
    environment says why)."""


def cross_environment_problems(env: str, raw: Any, others: Mapping[str, Any]) -> list[Problem]:
    """Domains of ``env``'s catalogue ``raw`` that another environment's catalogue also lists.

    ``others`` maps the names of the other environments to their raw catalogues (or
    :class:`Unreadable`, whose domains are not compared). DNS points a
    name at one environment, so a domain in two environments' catalogues is always a mistake
    in one of them (a production domain pasted into staging would put production's name into
    staging's Sites table). Sites of every state count, as within one environment; wildcards
    count by their exact string.
    """
    elsewhere: dict[str, list[tuple[str, str, str]]] = {}
    for other in sorted(others):
        for index, entry, state, domain in _configured_domains(others[other]):
            elsewhere.setdefault(domain, []).append((other, _label(entry, index), state))
    problems = []
    for index, entry, _state, domain in _configured_domains(raw):
        if domain not in elsewhere:
            continue
        places = [
            f"{shown(other)} (site {shown(site)}{', absent' if state == 'absent' else ''})"
            for other, site, state in elsewhere[domain]
        ]
        noun = "environment" if len(places) == 1 else "environments"
        problems.append(
            Problem(
                env,
                _label(entry, index),
                "domains",
                f"{shown(domain)} is already configured in {noun} {', '.join(places)}; "
                "a domain belongs to one environment only",
            )
        )
    return problems


def file_problems(env: str, loaded: Loaded, label: str) -> list[Problem]:
    """What keeps a YAML file of an environment from being read (the loader's flaws,
    :mod:`sitekit.loader`), as problems: a flaw in a site of a catalogue names the site and
    the field, any other the field (the keys that lead to it), and each its line of ``label``
    (the file as shown to the user)."""
    partial = loaded.partial
    entries = partial.get(SITES_VAR) if isinstance(partial, dict) else None
    problems = []
    for flaw in loaded.flaws:
        path, site = flaw.path, ""
        if not path:
            problems.append(Problem(env, "", "", f"{label} {flaw.message}"))
            continue
        if len(path) > 1 and path[0] == SITES_VAR and isinstance(path[1], int):
            index = path[1]
            entry = entries[index] if isinstance(entries, list) and index < len(entries) else None
            site, path = _label(entry, index), path[2:]
        problems.append(
            Problem(env, site, _field_of(path), f"{flaw.message} (line {flaw.line} of {label})")
        )
    return problems


def _field_of(path: tuple[str | int, ...]) -> str:
    """A path of keys and list positions as a field: ``domains[2]``, ``sitekit_pools.shared``."""
    text = ""
    for step in path:
        text += f"[{step}]" if isinstance(step, int) else f".{step}" if text else step
    return text


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
    for index, entry in enumerate(raw):
        site = _check_site(env, index, entry, problems, root, site_ids, declared)
        if site is not None:
            sites.append(site)

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
