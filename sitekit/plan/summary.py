"""``sitekit plan``, second half: records -> what a deploy would do per host, and its words.

Which master a changed file belongs to is the model's answer (:func:`sitekit.model.owner_of`,
from the model the preflight published); whether nginx or supervisord starts or reloads is read
from what a task runs (:func:`sitekit.plan.record.service_action`), never from its name.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import PurePosixPath
from typing import Any

from sitekit.model import owner_of
from sitekit.plan.record import FORMAT, SHOWN_DIFF_LINES

# --- records -> what would happen, per host -----------------------------------------------


@dataclass
class HostPlan:
    """What a deploy would do on one host."""

    name: str
    files: list[dict[str, Any]] = field(default_factory=list)
    masters: dict[str, list[str]] = field(default_factory=dict)
    why: dict[str, str] = field(default_factory=dict)
    #: "start" or "reload" when a deploy would start or reload the service, else "".
    nginx: str = ""
    supervisord: str = ""
    release: dict[str, Any] = field(default_factory=dict)
    other_changes: list[str] = field(default_factory=list)
    failures: list[dict[str, str]] = field(default_factory=list)

    @property
    def nginx_reload(self) -> bool:
        return self.nginx == "reload"

    @property
    def changes(self) -> bool:
        return bool(
            self.files
            or any(self.masters.values())
            or self.nginx
            or self.supervisord
            or self.release.get("new")
            or self.other_changes
        )


@dataclass
class Plan:
    environment: str
    hosts: list[HostPlan]
    complete: bool = True

    @property
    def changes(self) -> bool:
        return any(h.changes for h in self.hosts)

    @property
    def failures(self) -> list[dict[str, str]]:
        return [f for h in self.hosts for f in h.failures]

    def as_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "environment": self.environment,
            "changes": self.changes,
            "failed": bool(self.failures),
            "hosts": {
                h.name: {**asdict(h), "nginx_reload": h.nginx_reload, "changes": h.changes}
                for h in self.hosts
            },
        }


MASTER_ACTIONS = ("start", "restart", "reload", "stop")

def _host_plan(name: str, records: list[Mapping[str, Any]]) -> HostPlan:
    host = HostPlan(name)
    files: dict[str, dict[str, Any]] = {}
    catalogue: list[Mapping[str, Any]] = []
    masters: list[Mapping[str, Any]] | None = None
    known_masters: list[Mapping[str, Any]] = []
    switch: dict[str, Any] | None = None
    for rec in records:
        facts = rec.get("facts") or {}
        if facts.get("sitekit_catalogue"):
            catalogue = facts["sitekit_catalogue"]
        if facts.get("sitekit_masters"):
            # one master per dedicated site and per pool: what a new release reloads
            masters = facts["sitekit_masters"]
        if facts.get("sitekit_known_masters"):
            known_masters = facts["sitekit_known_masters"]
        if facts.get("release_id"):
            host.release["id"] = facts["release_id"]
        if rec.get("status") in ("failed", "unreachable"):
            host.failures.append(
                {"host": name, "task": _task_label(rec), "msg": str(rec.get("msg", ""))}
            )
        role = rec.get("role")
        service = rec.get("service")
        if service and (rec.get("changed") or rec.get("would_run")):
            # handlers run in check mode too, with their conditions: a reload would run only
            # where the service runs, a start only where it does not; a start needs no reload
            which, action = service
            if getattr(host, which) != "start":
                setattr(host, which, action)
            continue
        if not rec.get("changed"):
            continue
        if not rec.get("files") and not rec.get("handler"):
            host.other_changes.append(_task_label(rec))
        for f in rec.get("files") or []:
            if role == "release" and f.get("kind") == "link":
                switch = f
            known = files.get(f["path"])
            if known is None:
                files[f["path"]] = dict(f)
            elif f["change"] in ("created", "removed"):
                known["change"] = f["change"]
    host.files = list(files.values())

    actions: dict[str, str] = {}
    for f in host.files:
        found = owner_of(f["path"], masters or [], known_masters)
        if not found:
            continue
        site, what = found
        if what == "program":
            action = {"created": "start", "removed": "stop"}.get(f["change"], "restart")
            actions[site] = action
            host.why[site] = {
                "start": "new supervisor program",
                "stop": "its supervisor program is removed",
                "restart": "its supervisor program changed",
            }[action]
        elif f["change"] != "removed" and actions.get(site, "reload") == "reload":
            actions[site] = "reload"
            reason = f"its {what} {'is new' if f['change'] == 'created' else 'changed'}"
            host.why[site] = f"{host.why[site]}, {reason}" if site in host.why else reason
    if switch is not None:
        host.release["new"] = True
        target = switch.get("attributes", {}).get("src")
        if isinstance(target, list) and len(target) == 2:
            live, new = (PurePosixPath(str(t)).name if t else None for t in target)
            if live:
                host.release["live"] = live
            host.release.setdefault("id", new)
        for site in catalogue if masters is None else masters:
            site_name = site.get("name")
            if (
                site.get("state") == "present"
                and isinstance(site_name, str)
                and actions.get(site_name, "reload") == "reload"
            ):
                actions[site_name] = "reload"
                host.why[site_name] = "new release"
    host.masters = {
        action: sorted(s for s, a in actions.items() if a == action) for action in MASTER_ACTIONS
    }
    host.why = {s: host.why[s] for s in sorted(host.why) if s in actions}
    return host


def _task_label(rec: Mapping[str, Any]) -> str:
    role = rec.get("role")
    return f"{role} : {rec.get('task')}" if role else str(rec.get("task"))


def summarise(data: Mapping[str, Any], environment: str = "") -> Plan:
    """What a deploy would do, per host, from the records of a check-mode run."""
    by_host: dict[str, list[Mapping[str, Any]]] = {}
    for rec in data.get("tasks") or []:
        if isinstance(rec, Mapping) and isinstance(rec.get("host"), str):
            by_host.setdefault(rec["host"], []).append(rec)
    for host in data.get("stats") or {}:
        by_host.setdefault(host, [])
    hosts = [_host_plan(name, records) for name, records in by_host.items()]
    return Plan(environment, hosts, complete=bool(data.get("complete", True)))


# --- words ---------------------------------------------------------------------------------

_VERB = {"created": "create", "changed": "change", "removed": "remove"}
_MASTER_WORDS = {
    "start": "start",
    "restart": "restart",
    "reload": "reload gracefully",
    "stop": "stop",
}


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def _describe_file(f: Mapping[str, Any]) -> list[str]:
    suffix = "/" if f.get("kind") == "directory" else ""
    link = " (link)" if f.get("kind") == "link" else ""
    line = f"    {_VERB.get(f['change'], f['change']):<7} {f['path']}{suffix}{link}"
    if f.get("secret"):
        return [f"{line}  (secret: contents not shown)"]
    lines = [line]
    attributes = f.get("attributes") or {}
    details = [f"{key}: {old} -> {new}" for key, (old, new) in attributes.items()]
    if f["change"] != "removed":
        details += list(f.get("diff") or [])
    shown = details[:SHOWN_DIFF_LINES]
    lines += [f"              {d}" for d in shown]
    if len(details) > len(shown):
        lines.append(f"              ... {len(details) - len(shown)} more lines (--json has them)")
    return lines


#: A host's files are listed one by one up to this many, else summed up per directory.
FILES_LISTED = 40
#: Names a summed-up line shows before saying how many more there are.
NAMES_SHOWN = 3
#: Masters an action lists up to this many, else the first NAMES_SHOWN and how many more.
MASTERS_LISTED = 20


def _first(names: list[str], shown: int = NAMES_SHOWN) -> str:
    """``a, b, c``, or the first ``shown`` and how many more (``a, b, c and 997 more``)."""
    if len(names) <= shown:
        return ", ".join(names)
    return f"{', '.join(names[:shown])} and {len(names) - shown} more"


def _summed_files(files: list[Mapping[str, Any]]) -> list[str]:
    """Many files as a person can read them: per directory and change, how many and the first
    few names; directories by how many of the files they hold."""
    groups: dict[str, dict[str, list[str]]] = {}
    for f in files:
        path = PurePosixPath(f["path"])
        name = path.name + ("/" if f.get("kind") == "directory" else "")
        groups.setdefault(str(path.parent), {}).setdefault(f["change"], []).append(name)
    counts = {change: sum(len(g.get(change, [])) for g in groups.values()) for change in _VERB}
    total = ", ".join(f"{n} to {_VERB[c]}" for c, n in counts.items() if n)
    lines = [f"  files: {len(files)} ({total}); by directory (sitekit plan --full lists each "
             "with its diff):"]
    for directory, changes in sorted(groups.items(), key=lambda g: (
            -sum(len(n) for n in g[1].values()), g[0])):
        for change, names in changes.items():
            lines.append(f"    {_VERB.get(change, change):<7} {len(names):>5} in {directory}/: "
                         f"{_first(names)}")
    return lines


def render(plan: Plan, full: bool = False) -> str:
    """The plan as a support person reads it; the last line says whether anything changes.
    A host with many changed files or masters gets them summed up (how many per directory and
    change, the first few names), unless ``full``."""
    out: list[str] = []
    for host in plan.hosts:
        if not host.changes and not host.failures:
            release = f" (release {host.release['id']})" if host.release.get("id") else ""
            out.append(f"{host.name}: nothing to change{release}")
            continue
        out.append(f"{host.name}:")
        if host.files and (full or len(host.files) <= FILES_LISTED):
            out.append("  files:")
            for f in host.files:
                out += _describe_file(f)
        elif host.files:
            out += _summed_files(host.files)
        for action in MASTER_ACTIONS:
            sites = host.masters.get(action) or []
            if sites and (full or len(sites) <= MASTERS_LISTED):
                named = ", ".join(f"{s} ({host.why[s]})" if s in host.why else s for s in sites)
                out.append(f"  masters to {_MASTER_WORDS[action]}: {named}")
            elif sites:
                reasons: dict[str, list[str]] = {}
                for s in sites:
                    reasons.setdefault(host.why.get(s, ""), []).append(s)
                named = "; ".join(f"{len(n)} {f'({why})' if why else ''}: {_first(n)}"
                                  for why, n in reasons.items())
                out.append(f"  masters to {_MASTER_WORDS[action]}: {len(sites)}; {named}")
        if host.supervisord == "reload":
            out.append("  supervisord: reload (it restarts every master)")
        elif host.supervisord == "start":
            out.append("  supervisord: start")
        if host.nginx == "reload":
            out.append("  nginx: reload (after testing the new configuration)")
        elif host.nginx == "start":
            out.append("  nginx: start")
        if host.release.get("new"):
            live = f" (live now: {host.release['live']})" if host.release.get("live") else ""
            out.append(f"  release: {host.release.get('id', '?')} goes live{live}")
        elif host.release.get("id"):
            out.append(f"  release: {host.release['id']} stays live")
        if host.other_changes:
            out.append("  other changes: " + "; ".join(host.other_changes))
        for failure in host.failures:
            out.append(f"  FAILED: {failure['task']}: {failure['msg']}")
    out.append(_total(plan))
    return "\n".join(line.rstrip() for line in out) + "\n"


def _total(plan: Plan) -> str:
    if plan.failures:
        return f"the plan is incomplete: {_plural(len(plan.failures), 'task')} failed"
    if not plan.changes:
        return "nothing to change"
    changing = [h for h in plan.hosts if h.changes]
    parts = [f"{_plural(len(changing), 'host')} would change"]
    files = sum(len(h.files) for h in changing)
    if files:
        parts.append(_plural(files, "file"))
    for action in MASTER_ACTIONS:
        count = sum(len(h.masters.get(action) or []) for h in changing)
        if count:
            parts.append(f"{_plural(count, 'master')} to {_MASTER_WORDS[action]}")
    reloads = sum(1 for h in changing if h.nginx_reload)
    if reloads:
        parts.append(f"nginx reloads on {_plural(reloads, 'host')}")
    new = {h.release.get("id") for h in changing if h.release.get("new")}
    if new:
        parts.append(f"new release {', '.join(sorted(str(n) for n in new))}")
    return "plan: " + ", ".join(parts)
