"""``sitekit plan``, first half: one task result of a check-mode run -> a plain record.

The ``sitekit.deploy.plan`` callback calls :func:`record` for every task while
``ansible-playbook --check --diff`` runs and writes the records as JSON (see
:mod:`sitekit.plan` for the whole). Results come in several shapes, and the reader does not
depend on one: a single result or a loop's ``results``; ``diff`` as one mapping or a list of
them, either with text (``before_header``/``after_header``/``before``/``after``) or with the
attributes of a path (the file module's ``before``/``after`` mappings with ``path`` and
``state``); the paths named by ``dest``/``path`` keys, the module's invocation, the task's
arguments, or ``changed_files``/``removed_files`` lists. What is secret never leaves
:func:`record`: results hidden by ``no_log``, files whose diff carries headers only, and files
that look secret (``*.env`` site environment files and the like) are listed by path with no
content at all.
"""

from __future__ import annotations

import difflib
import fnmatch
import re
import shlex
from collections.abc import Iterable, Mapping, Sequence
from pathlib import PurePosixPath
from typing import Any

from sitekit.model import published

FORMAT = "sitekit-plan/1"

#: Files whose contents are never shown, whatever the task says: site environment files hold
#: each site's secret key and database password.
SECRET_PATTERNS = ("*.env", "*.key", "*.pem", "*secret*", "*password*", "*vault*")

#: Diff lines kept per file in the records; the human summary shows fewer.
MAX_DIFF_LINES = 200
SHOWN_DIFF_LINES = 12

_HEADER_SUFFIX = re.compile(r" \((content|file attributes)\)$")
_CREATED = re.compile(r":\s*created\b")

CHECK_MODE_SKIP = "Command would have run if not in check mode"


# --- one task result -> a record ----------------------------------------------------------


def is_secret_path(path: str) -> bool:
    name = PurePosixPath(path).name
    return any(fnmatch.fnmatch(name, pattern) for pattern in SECRET_PATTERNS)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _result_path(result: Mapping[str, Any], args: Mapping[str, Any] | None) -> str | None:
    """The one path a result is about, if it names one."""
    invocation = result.get("invocation")
    module_args = invocation.get("module_args") if isinstance(invocation, Mapping) else None
    for source in (result, module_args, args):
        if isinstance(source, Mapping):
            for key in ("dest", "path"):
                if _text(source.get(key)):
                    return source[key]
    return None


def _requested_state(result: Mapping[str, Any], args: Mapping[str, Any] | None) -> str | None:
    invocation = result.get("invocation")
    module_args = invocation.get("module_args") if isinstance(invocation, Mapping) else None
    for source in (module_args, args, result):
        if isinstance(source, Mapping) and _text(source.get("state")):
            return source["state"]
    return None


def _kind(state: Any) -> str:
    return {"directory": "directory", "link": "link", "hard": "link"}.get(state, "file")


def _text_diff(before: str, after: str) -> list[str]:
    lines = difflib.unified_diff(before.splitlines(), after.splitlines(), n=1, lineterm="")
    return [line for line in lines if not line.startswith(("---", "+++"))]


def _clip(lines: list[str]) -> list[str]:
    if len(lines) <= MAX_DIFF_LINES:
        return lines
    return [*lines[:MAX_DIFF_LINES], f"... {len(lines) - MAX_DIFF_LINES} more lines"]


def _diff_entries(result: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    diff = result.get("diff")
    if isinstance(diff, Mapping):
        return [diff]
    if isinstance(diff, list):
        return [entry for entry in diff if isinstance(entry, Mapping)]
    return []


class _Files:
    """Files found in one result, in order, one entry per path."""

    def __init__(self) -> None:
        self.by_path: dict[str, dict[str, Any]] = {}

    def add(
        self,
        path: str,
        change: str,
        *,
        kind: str = "file",
        secret: bool,
        diff: list[str] | None = None,
        attributes: dict[str, list[Any]] | None = None,
    ) -> None:
        secret = secret or is_secret_path(path)
        entry = self.by_path.get(path)
        if entry is None:
            entry = self.by_path[path] = {
                "path": path,
                "change": change,
                "kind": kind,
                "secret": secret,
                "diff": None,
                "attributes": {},
            }
        elif change in ("created", "removed"):
            entry["change"] = change
        entry["secret"] = entry["secret"] or secret
        if kind != "file":
            entry["kind"] = kind
        if entry["secret"]:
            entry["diff"] = None
            entry["attributes"] = {}
            return
        if diff:
            entry["diff"] = _clip((entry["diff"] or []) + diff)
        if attributes:
            entry["attributes"].update(attributes)

    def as_list(self) -> list[dict[str, Any]]:
        return list(self.by_path.values())


def _files_of_result(
    result: Mapping[str, Any],
    args: Mapping[str, Any] | None,
    found: _Files,
    *,
    secret: bool,
    show_diff: bool,
) -> None:
    if not result.get("changed") or result.get("skipped") or result.get("failed"):
        return
    secret = secret or "censored" in result or bool(result.get("_ansible_no_log"))
    entries = _diff_entries(result)
    own_path = _result_path(result, args)
    seen = len(found.by_path)
    for entry in entries:
        before, after = entry.get("before"), entry.get("after")
        if isinstance(before, Mapping) or isinstance(after, Mapping):
            before = before if isinstance(before, Mapping) else {}
            after = after if isinstance(after, Mapping) else {}
            header = _text(entry.get("before_header")) or _text(entry.get("after_header"))
            path = (
                _text(after.get("path"))
                or _text(before.get("path"))
                or (_HEADER_SUFFIX.sub("", header) if header else own_path)
            )
            if not path:
                continue
            old, new = before.get("state"), after.get("state")
            change = (
                "created"
                if old == "absent" and new != "absent"
                else "removed"
                if new == "absent" and old != "absent"
                else "changed"
            )
            kind = _kind(
                new
                if new not in (None, "absent")
                else old
                if old not in (None, "absent")
                else result.get("state") or _requested_state(result, args)
            )
            attributes = {
                key: [before.get(key), after.get(key)]
                for key in sorted(set(before) | set(after))
                if key not in ("path", "state", "path_content")
                and before.get(key) != after.get(key)
            }
            found.add(path, change, kind=kind, secret=secret, attributes=attributes)
            continue
        header = _text(entry.get("before_header"))
        if header:
            path = _HEADER_SUFFIX.sub("", header)
        elif own_path and len(entries) == 1:
            path = own_path
        else:
            path = _text(entry.get("after_header"))
            path = _HEADER_SUFFIX.sub("", path) if path else own_path
        if not path:
            continue
        binary = any(key in entry for key in ("dst_binary", "src_binary"))
        larger = any(key in entry for key in ("dst_larger", "src_larger"))
        # a diff that names a file but carries no text is one the module keeps secret
        headers_only = not (binary or larger or isinstance(before, str) or isinstance(after, str))
        # a new file: Ansible's modules give no before_header and an empty before; modules that
        # write several files give both headers and an empty before
        created = before == "" and ("before_header" not in entry or bool(after))
        kind = "file"
        if (
            isinstance(before, str)
            and isinstance(after, str)
            and before.strip() in ("absent", "directory")
            and after.startswith("directory")
        ):  # a directory described in words: "absent" -> "directory, mode 0750"
            kind, created = "directory", before.strip() == "absent"
        prepared = entry.get("prepared")
        if headers_only and isinstance(prepared, str) and _CREATED.search(prepared):
            created = True
        lines = None
        if show_diff and not (secret or headers_only):
            if binary:
                lines = ["(binary file)"]
            elif larger:
                lines = ["(too large to show)"]
            elif not (kind == "directory" and created):
                lines = _text_diff(before or "", after or "")
        found.add(
            path,
            "created" if created else "changed",
            kind=kind,
            secret=secret or headers_only,
            diff=lines,
        )
    for key, change in (
        ("changed_files", "changed"),
        ("created_files", "created"),
        ("removed_files", "removed"),
    ):
        paths = result.get(key)
        if isinstance(paths, list):
            for path in paths:
                if _text(path):
                    found.add(path, change, secret=secret)
    if len(found.by_path) == seen and own_path:
        state = _requested_state(result, args)
        found.add(
            own_path,
            "removed" if state == "absent" else "changed",
            kind=_kind(result.get("state") or state),
            secret=secret,
        )


def files_of(
    result: Mapping[str, Any],
    args: Mapping[str, Any] | None = None,
    item_args: Sequence[Mapping[str, Any] | None] = (),
    *,
    secret: bool = False,
    show_diff: bool = True,
) -> list[dict[str, Any]]:
    """The files one task result says would be created, changed or removed.

    ``args`` are the task's arguments; ``item_args`` those of each loop item (in loop order),
    which name the path of an item whose result is hidden by ``no_log``. ``secret`` marks every
    file of the result as secret; ``show_diff`` false keeps diffs out (the task's ``diff: false``).
    Each file is ``{path, change, kind, secret, diff, attributes}``: ``change`` is ``created``,
    ``changed`` or ``removed``; ``diff`` (lines of a unified diff) and ``attributes`` (name ->
    [before, after]) are empty for secret files.
    """
    found = _Files()
    if not isinstance(result, Mapping):
        return []
    items = result.get("results")
    if isinstance(items, list):
        secret = secret or "censored" in result
        for index, item in enumerate(items):
            if isinstance(item, Mapping):
                own = item_args[index] if index < len(item_args) else None
                _files_of_result(item, own, found, secret=secret, show_diff=show_diff)
    else:
        _files_of_result(result, args, found, secret=secret, show_diff=show_diff)
    return found.as_list()


def _facts(result: Mapping[str, Any]) -> dict[str, Any]:
    """The few facts the plan needs: the live release id, the validated catalogue and the
    masters (one per dedicated site, one per pool)."""
    if "censored" in result:
        return {}
    # the release id is a fact; the model is the preflight's result (sitekit.deploy.catalogue),
    # published as one text
    facts = {**(result["ansible_facts"] if isinstance(result.get("ansible_facts"), Mapping)
                else {}),
             **published(result.get("model"))}
    kept: dict[str, Any] = {}
    if _text(facts.get("release_id")):
        kept["release_id"] = facts["release_id"]
    catalogue = facts.get("sitekit_catalogue")
    if isinstance(catalogue, list):
        kept["sitekit_catalogue"] = [
            {"name": site.get("name"), "state": site.get("state", "present")}
            for site in catalogue
            if isinstance(site, Mapping)
        ]
    # what each master owns (the model): which master a changed file belongs to
    masters = facts.get("sitekit_masters")
    if isinstance(masters, list):
        kept["sitekit_masters"] = [
            {"name": m.get("name"), "state": "present",
             **{k: m[k] for k in ("env_file", "conf_file", "program") if _text(m.get(k))}}
            for m in masters if isinstance(m, Mapping)
        ]
    known = facts.get("sitekit_known_masters")
    if isinstance(known, list):
        kept["sitekit_known_masters"] = [
            {"name": m.get("name"), "program": m.get("program")}
            for m in known if isinstance(m, Mapping)
        ]
    return kept


def _would_run(result: Mapping[str, Any]) -> bool:
    items = result.get("results")
    results = items if isinstance(items, list) else [result]
    return any(isinstance(r, Mapping) and r.get("msg") == CHECK_MODE_SKIP for r in results)


def _message(result: Mapping[str, Any]) -> str:
    if "censored" in result:
        return "the output is hidden (no_log)"
    msg = result.get("msg")
    text = msg if isinstance(msg, str) else "" if msg is None else str(msg)
    if not text and isinstance(result.get("results"), list):
        text = "; ".join(
            _message(item)
            for item in result["results"]
            if isinstance(item, Mapping) and item.get("failed")
        )
    stderr = result.get("stderr")
    if isinstance(stderr, str) and stderr.strip() and stderr.strip() not in text:
        text = f"{text}\n{stderr.strip()}" if text else stderr.strip()
    return text or "failed"


#: Services a deploy starts or reloads, by the name their service (or binary) has.
_SERVICE_NAMES = {"nginx": "nginx", "supervisor": "supervisord", "supervisord": "supervisord"}


def _argv(result: Mapping[str, Any], args: Mapping[str, Any] | None) -> list[str]:
    invocation = result.get("invocation")
    module_args = invocation.get("module_args") if isinstance(invocation, Mapping) else None
    for source in (args, module_args):
        if isinstance(source, Mapping) and isinstance(source.get("argv"), list):
            return [str(word) for word in source["argv"]]
        if isinstance(source, Mapping) and isinstance(source.get("cmd"), str):
            return shlex.split(source["cmd"])
    return []


def _command_service(argv: Sequence[str]) -> list[str] | None:
    for i, word in enumerate(argv):
        program, rest = PurePosixPath(word).name, list(argv[i + 1:])
        if program in ("sh", "bash") and "-c" in rest[:1] and len(rest) > 1:
            for part in re.split(r"&&|;|\|\|", rest[1]):
                found = _command_service(shlex.split(part))
                if found and found[1] == "reload":
                    return found
            return None
        if program == "nginx":
            if "-s" in rest:
                signal = rest[rest.index("-s") + 1:][:1]
                return ["nginx", "reload"] if signal == ["reload"] else None
            return None if {"-t", "-T", "-v", "-V"} & set(rest) else ["nginx", "start"]
        if program == "kill" and "-HUP" in rest and any("nginx" in w for w in rest):
            # SIGHUP to nginx's master, read from its pid file: what nginx -s reload sends
            return ["nginx", "reload"]
        if program == "supervisord":
            return ["supervisord", "start"]
        if program == "supervisorctl":
            return ["supervisord", "reload"] if "reload" in rest else None
    return None


def service_action(
    result: Mapping[str, Any], args: Mapping[str, Any] | None = None
) -> list[str] | None:
    """``[service, "start" | "reload"]`` when a task starts or reloads nginx or supervisord,
    read from what it runs (a service module's name and state, a command's argv), never from
    the task's name."""
    name, state = result.get("name"), result.get("state")
    if isinstance(name, str) and name in _SERVICE_NAMES and state in (
        "started", "reloaded", "restarted"
    ):
        return [_SERVICE_NAMES[name], "start" if state == "started" else "reload"]
    return _command_service(_argv(result, args))


def record(
    result: Mapping[str, Any],
    *,
    host: str,
    task: str,
    role: str | None = None,
    action: str = "",
    status: str = "ok",
    handler: bool = False,
    no_log: bool = False,
    show_diff: bool = True,
    notify: Iterable[str] = (),
    args: Mapping[str, Any] | None = None,
    item_args: Sequence[Mapping[str, Any] | None] = (),
) -> dict[str, Any]:
    """One task's result on one host as a plain, printable record (nothing secret in it).

    ``status`` is how Ansible reported it: ``ok``, ``skipped``, ``failed``, ``ignored`` (failed
    with ignore_errors) or ``unreachable``.
    """
    result = result if isinstance(result, Mapping) else {}
    secret = no_log or "censored" in result
    changed = bool(result.get("changed")) and status in ("ok", "ignored")
    entry: dict[str, Any] = {
        "host": host,
        "role": role,
        "task": task,
        "action": action,
        "handler": handler,
        "status": "changed" if changed and status == "ok" else status,
        "changed": changed,
        "would_run": status == "skipped" and _would_run(result),
        "notify": [str(n) for n in notify],
        "files": files_of(result, args, item_args, secret=secret, show_diff=show_diff)
        if changed
        else [],
        "facts": _facts(result) if status == "ok" else {},
        "service": service_action(result, args),
    }
    if status in ("failed", "unreachable"):
        entry["msg"] = _message(result)
    return entry


