"""The ``sitekit`` command line. It parses arguments and prints; the work is done elsewhere."""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sitekit import editor, inventory, logs, manage, model, plan, release
from sitekit.echo import clean

EXIT_OK, EXIT_INVALID, EXIT_USAGE = 0, 1, 2
#: ``sitekit plan --detailed-exitcode``: the plan was computed and a deploy would change something.
EXIT_CHANGES = 2


def _root(args: argparse.Namespace) -> Path:
    return inventory.project_root(Path(args.project) if args.project else None)


def _report(name: str, problems: list) -> None:
    count = len(problems)
    print(f"{clean(name)}: {count} problem{'s' if count != 1 else ''}:", file=sys.stderr)
    for problem in problems:
        print(f"  {problem}", file=sys.stderr)


def _warn(warnings: list) -> None:
    """What a check could not check (a neighbour's catalogue it cannot read)."""
    for warning in warnings:
        print(f"warning: {warning}", file=sys.stderr)


def cmd_check(args: argparse.Namespace) -> int:
    root = _root(args)
    names = args.env or inventory.all_names(root)
    if not names:
        print(f"no environments with a catalogue under {root / 'inventories'}", file=sys.stderr)
        return EXIT_INVALID
    failed = False
    listed: dict[str, set[str]] = {}  # the sites of each environment checked and valid
    for name in names:
        try:
            inv = inventory.find(name, root)
        except inventory.InventoryError as exc:
            failed = True
            print(f"{clean(name) if name.strip() else repr(name)}: {exc}", file=sys.stderr)
            continue
        result = inventory.check(inv)
        _warn(result.warnings)
        if result.ok and inv.path == root / "inventories" / inv.name:
            listed[inv.name] = {s.name for s in result.sites}
        if result.ok:
            present = [s for s in result.sites if s.present]
            domains = sum(len(s.domains) for s in present)
            pools = "".join(
                f"; pool {pool.name}: {_names([s.name for s in pool.present_sites]) or 'idle'}"
                for pool in result.pools
            )
            print(
                f"{inv.name}: OK: {len(result.sites)} sites ({len(present)} present), "
                f"{domains} domains{pools}"
            )
        else:
            failed = True
            _report(inv.name, result.problems)
    _warn_unlisted_code(root, listed)
    return EXIT_INVALID if failed else EXIT_OK


#: How many names a line lists before it says how many more there are.
NAMES_SHOWN = 10


def _names(names: list[str], shown_at_most: int = NAMES_SHOWN) -> str:
    """``a, b, c``; for a longer list, how many and the first three
    (``1000 sites: a, b, c and 997 more``)."""
    if len(names) <= shown_at_most:
        return ", ".join(names)
    return f"{len(names)} sites: {', '.join(names[:3])} and {len(names) - 3} more"


def _warn_unlisted_code(root: Path, known: dict[str, set[str]] | None = None) -> None:
    """Warn about sites whose code is in the checkout but in no environment's catalogue (what
    an interrupted `sitekit site add` leaves). Not a problem of a catalogue: the exit status
    stays that of the catalogues, as the deploy's preflight would judge them. ``known``: the
    sites of the environments already read, by name (not read again)."""
    listed: set[str] = set()
    for name in inventory.all_names(root):
        if known and name in known:
            listed |= known[name]
            continue
        try:
            raw = inventory.read_catalogue(inventory.find(name, root))
        except inventory.InventoryError:
            return  # reported above; without it, which code is listed is not known
        for entry in raw if isinstance(raw, list) else []:
            if isinstance(entry, dict) and isinstance(entry.get("name"), str):
                listed.add(entry["name"])
    for site, paths in editor.unlisted_code(root, listed).items():
        if paths[0].startswith("settings/"):
            how = "which keeps its code"
        else:  # a package without its settings module
            how = "which completes its code when it is what that command creates"
        print(
            f"warning: site '{site}' is in no environment's catalogue, but "
            f"{' and '.join(paths)} {'exist' if len(paths) > 1 else 'exists'} (left by an "
            f"interrupted `sitekit site add`?): add the site with `sitekit site add ENV {site} "
            f"DOMAIN...`, {how}, or remove {'them' if len(paths) > 1 else 'it'}",
            file=sys.stderr,
        )


def cmd_urls(args: argparse.Namespace) -> int:
    inv = inventory.find(args.env, _root(args))
    env_tls, port, tls_port = inventory.public_endpoint(inv)
    result = inventory.check(inv)
    _warn(result.warnings)
    if not result.ok:
        _report(inv.name, result.problems)
        return EXIT_INVALID
    layout = model.Layout(
        env=inv.name,
        tls=env_tls,
        public_port=port if args.port is None else args.port,
        tls_port=tls_port if args.tls_port is None else args.tls_port,
    )
    for site in model.resolve(result, layout).present_sites:
        default = {"http": 80, "https": 443}[site["scheme"]]
        suffix = "" if site["port"] == default else f":{site['port']}"
        concrete = [d for d in site["domains"] if not d.startswith("*.")]
        wildcards = [d for d in site["domains"] if d.startswith("*.")]
        urls = [f"{site['scheme']}://{d}{suffix}/" for d in concrete]
        urls += [f"(and any name matching {d})" for d in wildcards]
        print(f"{site['name']:<16} {'  '.join(urls)}")
    return EXIT_OK


def cmd_hosts(args: argparse.Namespace) -> int:
    inv = inventory.find(args.env, _root(args))
    result = inventory.check(inv)
    _warn(result.warnings)
    if not result.ok:
        _report(inv.name, result.problems)
        return EXIT_INVALID
    address = inventory.entry_address(inv)
    print(f"# sitekit {inv.name}: add to /etc/hosts (or your system's hosts file)")
    for site in result.sites:
        names = [d for d in site.domains if not d.startswith("*.")]
        if site.present and names:
            print(f"{address} {' '.join(names)}")
    return EXIT_OK


def _bounded(convert: Callable[[str], Any], low: float, high: float, noun: str, name: str,
             unit: str = "") -> Callable[[str], Any]:
    """An argument type: ``convert`` the text (else 'not NOUN'), then require ``low`` to
    ``high`` (else 'NAME is between LOW and HIGH UNIT')."""

    def parse(text: str) -> Any:
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not {noun}: {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(
                f"{name} is between {low:g} and {high:g}{unit}, got {value:g}"
            )
        return value

    return parse


_port = _bounded(int, 1, 65535, "a port number", "a port")
_seconds = _bounded(float, 0, 3600, "a number of seconds", "a wait", " seconds")


def cmd_release_build(args: argparse.Namespace) -> int:
    root = _root(args)
    built = release.build(root, Path(args.out), python=args.python)
    if args.json:
        print(json.dumps(built.as_dict()))
    else:
        state = "built" if built.changed else "already built"
        print(f"release {built.release_id} {state}: {built.archive}")
        print(f"wheelhouse: {built.wheelhouse} (as one tar: {built.wheelhouse_archive})")
    return EXIT_OK


def cmd_release_id(args: argparse.Namespace) -> int:
    print(release.release_id(_root(args)))
    return EXIT_OK


def _show_change(change: editor.Change, dry_run: bool, scaffolds: bool = False) -> int:
    """Print a planned catalogue edit and, unless ``dry_run``, write it (while the locks of
    :func:`_edit` are held; the codebase's too when the edit ``scaffolds``)."""
    source = change.source
    for note in change.notes:
        print(note)
    if not change.ok:
        _report(f"{source.env}: nothing written", change.problems)
        return EXIT_INVALID
    if not change.changed:
        print(f"{source.env}: nothing to change; {source.label} left as it was")
        return EXIT_OK
    print(change.diff(), end="")
    if not dry_run:
        for path in editor.remove_leftovers(change, code=scaffolds):
            print(f"removed {_relative(path, source.project_root)} (left by an interrupted edit)")
        editor.apply(change)
    for path in change.files:
        print(f"{'would create' if dry_run else 'created'} {path}")
    for line in change.summary:
        print(line)
    if dry_run:
        print(f"dry run: nothing written ({source.label} left as it was)")
    else:
        print(f"wrote {source.label}")
    return EXIT_OK


def _edit(
    args: argparse.Namespace,
    plan: Callable[[editor.Source], editor.Change],
    *,
    scaffolds: bool = False,
) -> int:
    """Plan an edit of ``args.env``'s catalogue and show it; unless it is a dry run, under the
    catalogue's lock (and the codebase's when it ``scaffolds`` a site's code), taken before
    the catalogue is read and held until it is written."""
    inv = inventory.find(args.env, _root(args))
    if args.dry_run:
        return _show_change(plan(editor.read_source(inv)), dry_run=True)

    def waiting(message: str) -> None:
        print(f"sitekit: {inv.name}: {message}", file=sys.stderr, flush=True)

    try:
        with editor.editing(
            inv, scaffolds=scaffolds, by=args.command_line, wait=args.wait, waiting=waiting
        ) as source:
            return _show_change(plan(source), dry_run=False, scaffolds=scaffolds)
    except editor.EditError as exc:
        print(f"sitekit: {inv.name}: {exc}", file=sys.stderr)
        return EXIT_INVALID


def cmd_domain_add(args: argparse.Namespace) -> int:
    return _edit(args, lambda source: editor.add_domains(source, args.site, args.domains))


def cmd_domain_remove(args: argparse.Namespace) -> int:
    return _edit(args, lambda source: editor.remove_domains(source, args.site, args.domains))


def cmd_site_add(args: argparse.Namespace) -> int:
    return _edit(
        args,
        lambda source: editor.add_site(
            source, args.site, args.domains, workers=args.workers, brand=args.brand
        ),
        scaffolds=True,
    )


def cmd_site_remove(args: argparse.Namespace) -> int:
    return _edit(args, lambda source: editor.remove_site(source, args.site))


def cmd_site_move(args: argparse.Namespace) -> int:
    if args.pool is not None and args.workers is not None:
        raise inventory.InventoryError(
            "--workers is for --dedicated: a pooled site runs with its pool's resources"
        )
    return _edit(
        args, lambda source: editor.move_site(source, args.site, args.pool, workers=args.workers)
    )


def _ansible_playbook() -> str:
    """ansible-playbook of this interpreter's environment (the tooling virtualenv), else PATH's."""
    beside = Path(sys.executable).parent / "ansible-playbook"
    if beside.is_file():
        return str(beside)
    found = shutil.which("ansible-playbook")
    if not found:
        raise inventory.InventoryError(
            "ansible-playbook not found: run `make venv` and use .venv/bin/sitekit"
        )
    return found


def _relative(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


def cmd_plan(args: argparse.Namespace) -> int:
    root = _root(args)
    inv = inventory.find(args.env, root)
    playbook = root / "ansible" / "site.yml"
    if not playbook.is_file():
        raise inventory.InventoryError(f"no playbook {playbook}")
    extra = list(args.ansible_args)
    command = [
        _ansible_playbook(),
        "-i",
        _relative(inv.path, root),
        _relative(playbook, root),
        "--check",
        "--diff",
        *extra,
    ]
    shown = shlex.join(["ansible-playbook", *command[1:]])
    print(f"sitekit plan {inv.name}: {shown} (check mode: no host is changed)", file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="sitekit-plan-") as tmp:
        plan_file = Path(tmp) / "plan.json"
        env = dict(
            os.environ,
            ANSIBLE_CONFIG=str(root / "ansible" / "ansible.cfg"),
            ANSIBLE_STDOUT_CALLBACK="sitekit.deploy.plan",
            SITEKIT_PLAN_FILE=str(plan_file),
            ANSIBLE_NOCOLOR="1",
            ANSIBLE_FORCE_COLOR="0",
        )
        proc = subprocess.run(
            command, cwd=root, env=env, capture_output=True, text=True, check=False
        )
        data = None
        if plan_file.is_file():
            try:
                data = json.loads(plan_file.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                data = None
    summary = plan.summarise(data, inv.name) if data is not None else None
    if proc.returncode != 0 or summary is None or summary.failures:
        why = (
            f"the playbook failed (exit status {proc.returncode})"
            if proc.returncode != 0 or summary is not None
            else "ansible-playbook recorded no plan"
        )
        print(f"sitekit plan {inv.name}: {why}; nothing was changed on any host", file=sys.stderr)
        if summary is not None and summary.failures:
            for failure in summary.failures:
                print(f"{failure['host']}: {failure['task']}:", file=sys.stderr)
                for line in failure["msg"].splitlines():
                    print(f"  {line}", file=sys.stderr)
        # ansible's own words: all of them when no task failed (a playbook or inventory error),
        # else only its errors (each failed task's message is printed above)
        lines = [
            line
            for line in (proc.stdout + proc.stderr).splitlines()
            if line.strip() and not line.startswith(("FAILED: ", "UNREACHABLE: "))
        ]
        if summary is not None and summary.failures:
            lines = [line for line in lines if line.startswith(("[ERROR]", "ERROR!"))]
        for line in lines:
            print(line, file=sys.stderr)
        return EXIT_INVALID
    if args.json:
        print(json.dumps(summary.as_dict(), indent=2))
    else:
        print(plan.render(summary, full=args.full), end="")
    return EXIT_CHANGES if args.detailed_exitcode and summary.changes else EXIT_OK


EDIT_EPILOG = (
    "The catalogue file is edited in place: comments, order, list styles and quoting stay as "
    "they are, and a diff of the change is printed. The whole resulting catalogue is validated "
    "first; if it is invalid, every problem is listed and nothing is written. One edit of a "
    "catalogue (and, for `site add`, of the sites' code) is made at a time: a command that "
    "finds another one editing says so and waits for it (see --wait), then makes its change "
    "to what that one wrote. "
    "Exit status: 0 when the change was made (or there was nothing to change), 1 when it was "
    "refused, 2 on a usage error."
)
#: The positional ENV of the commands that read one environment.
ENV_HELP = "environment name (local) or inventory directory"
#: --workers of `site add` and `site move` (their help says what it means there).
WORKERS: dict[str, Any] = {"type": int, "metavar": "N"}


def _command(
    actions: argparse._SubParsersAction,
    name: str,
    func: Callable[[argparse.Namespace], int],
    parents: list[argparse.ArgumentParser],
    **texts: Any,
) -> argparse.ArgumentParser:
    """A command (or an ACTION of one) that ``func`` runs, with ``parents``' arguments."""
    parser = actions.add_parser(name, parents=parents, **texts)
    parser.set_defaults(func=func)
    return parser


def _with_actions(
    sub: argparse._SubParsersAction, name: str, **texts: str
) -> argparse._SubParsersAction:
    """A command that is done by one of its ACTIONs (``sitekit domain add``)."""
    parser = sub.add_parser(name, **texts)
    return parser.add_subparsers(dest=f"{name}_command", metavar="ACTION", required=True)


def _add_edit_commands(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    edit = argparse.ArgumentParser(add_help=False)
    edit.add_argument("env", metavar="ENV", help=ENV_HELP)
    edit.add_argument(
        "--dry-run",
        action="store_true",
        help="print the diff and the files a new site needs; write nothing",
    )
    edit.add_argument(
        "--wait",
        type=_seconds,
        default=editor.WAIT_SECONDS,
        metavar="SECONDS",
        help="how long to wait while another sitekit command edits the same catalogue (or, "
        f"for `site add`, the sites' code) before giving up (default: {editor.WAIT_SECONDS:g})",
    )

    def command(
        actions: argparse._SubParsersAction,
        name: str,
        func: Callable[[argparse.Namespace], int],
        metavar: str,
        site_help: str,
        **texts: str,
    ) -> argparse.ArgumentParser:
        """An edit command: ENV, the site (shown as ``metavar``; ``args.site``), --dry-run."""
        parser = _command(actions, name, func, [common, edit], epilog=EDIT_EPILOG, **texts)
        parser.add_argument("site", metavar=metavar, help=site_help)
        return parser

    in_catalogue = "the site's name, as in the catalogue"
    domain_sub = _with_actions(
        sub,
        "domain",
        help="add or remove a site's domains in an environment's catalogue",
        description="Add or remove domains of one site in inventories/ENV/group_vars/all/"
        "sites.yml.",
    )
    for verb, func, summary, description in (
        (
            "add",
            cmd_domain_add,
            "add domains to a site",
            "Append DOMAINs to SITE's domains (the first domain stays canonical). "
            "Domains are normalised as the catalogue stores them: lower-case, no trailing dot, "
            "internationalised names as punycode; the output says when one was. A domain the "
            "site already has is reported and skipped; one given twice is added once. Refused: "
            "a domain of another site (its owner is named) or of another environment's "
            "catalogue (a domain belongs to one environment only), a site that is absent "
            "(re-add it with `sitekit site add`), a site that is not in the catalogue.",
        ),
        (
            "remove",
            cmd_domain_remove,
            "remove domains from a site",
            "Remove DOMAINs from SITE's domains (normalised as for `domain add`). "
            "Removing the canonical (first) domain makes the next one canonical; the output "
            "says so. Refused: removing the last domain of a present site (use `sitekit site "
            "remove` to take a site down), a domain the site does not have. An absent site may "
            "lose all its domains (to free them for another site).",
        ),
    ):
        parser = command(
            domain_sub,
            verb,
            func,
            "SITE",
            in_catalogue,
            help=summary,
            description=description,
        )
        parser.add_argument("domains", nargs="+", metavar="DOMAIN", help=f"domain to {verb}")

    site_sub = _with_actions(
        sub,
        "site",
        help="add a site to an environment's catalogue, mark it absent, or move it between masters",
        description="Add sites to, or remove sites from, inventories/ENV/group_vars/all/sites.yml; "
        "move a site into a pool or onto its own master.",
    )
    add = command(
        site_sub,
        "add",
        cmd_site_add,
        "NAME",
        "the site's name",
        help="add a site (scaffolding its code when it is new)",
        description="Append a catalogue entry for NAME (state: present) with DOMAINs, the "
        "first canonical. An entry that is absent is made present again, keeping its domains "
        "and fields (DOMAINs are added to them). When the codebase has no settings/NAME.py, "
        "the site's code is created: settings/NAME.py (the next free SITE_ID, the brand, its "
        "colours) and project/sites/NAME/ (app, URLs, Jinja2 base template, CSS, logo); the "
        "output lists the files. NAME: 1 to 29 characters, lower-case letters, digits and "
        "'_', starting with a letter. Nothing is written unless everything is valid.",
    )
    add.add_argument(
        "domains",
        nargs="*",
        metavar="DOMAIN",
        help="the site's domains (at least one for a new site)",
    )
    add.add_argument(
        "--workers",
        **WORKERS,
        help="gunicorn worker processes, 1 to 64 (default: 2 for a new entry; an entry made "
        "present again keeps its own)",
    )
    add.add_argument(
        "--brand",
        metavar="TEXT",
        help="display name of a new site (default: from NAME, north_shore -> 'North Shore')",
    )
    command(
        site_sub,
        "remove",
        cmd_site_remove,
        "NAME",
        in_catalogue,
        help="mark a site absent",
        description="Set state: absent on NAME's entry, keeping its domains and fields. The "
        "next deploy removes the site from every host (server block, supervisor program, "
        "socket, env file, logs); its rows stay in the database and its code stays in the "
        "codebase. `sitekit site add ENV NAME` brings it back.",
    )
    move = command(
        site_sub,
        "move",
        cmd_site_move,
        "NAME",
        in_catalogue,
        help="move a site into a pool, or onto its own master",
        description="Set the site's pool (--pool POOL: it is then served by that pool's "
        "master, with the pool's resources, so its own resource fields are removed) or "
        "remove it (--dedicated: its own master again, with the default resources or "
        "--workers N). POOL must be declared in sitekit_pools. The next deploy starts the "
        "master that will serve the site, points the site's nginx server block at it and only "
        "then stops or reloads the master it left: no request fails during the move. An absent "
        "site's entry is changed for when it is present again; no master starts or stops for "
        "it until then.",
    )
    where = move.add_mutually_exclusive_group(required=True)
    where.add_argument("--pool", metavar="POOL", help="the pool whose master will serve it")
    where.add_argument(
        "--dedicated", action="store_true", help="serve it by its own master again"
    )
    move.add_argument(
        "--workers",
        **WORKERS,
        help="with --dedicated: its master's worker processes, 1 to 64 (default: 2)",
    )


def _add_plan_command(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    plan_parser = _command(
        sub,
        "plan",
        cmd_plan,
        [common],
        allow_abbrev=False,
        help="show what a deploy of an environment would change, changing nothing",
        description="Run the deploy in Ansible's check and diff modes (ansible-playbook -i "
        "inventories/ENV ansible/site.yml --check --diff, from the checkout, with its "
        "ansible.cfg) and print, per host: the files that would be created, changed or removed "
        "(with a short diff; never the contents of secret files such as the sites' env files), "
        "the gunicorn masters that would start, reload gracefully, restart or stop, whether "
        "nginx would reload and whether a new release would go live; the last line says "
        "'nothing to change' when a deploy would change nothing. No host is changed; as in a "
        "deploy, the release archive is built on this machine to learn its id. "
        "ANSIBLE_ARGS, after ENV, are passed to ansible-playbook: --tags sites (the fast path "
        "after a catalogue change), --limit HOST, -e NAME=VALUE, --ask-vault-pass, ...",
        epilog="Exit status: 0 when the plan was computed (with or without changes; with "
        "--detailed-exitcode, 2 when a deploy would change something), 1 when the playbook "
        "failed (for example an invalid catalogue: the preflight's message names the "
        "environment, the site and the field), 2 on a usage error.",
    )
    plan_parser.add_argument("env", metavar="ENV", help=ENV_HELP)
    plan_parser.add_argument(
        "--json", action="store_true", help="print the plan as JSON (per host) instead"
    )
    plan_parser.add_argument(
        "--full",
        action="store_true",
        help=f"list every file with its diff and every master, also when a host has more "
        f"than {plan.summary.FILES_LISTED} files or {plan.summary.MASTERS_LISTED} masters to "
        "change (which are otherwise counted per directory and reason, with the first few "
        "names)",
    )
    plan_parser.add_argument(
        "--detailed-exitcode",
        action="store_true",
        help="exit 2 (not 0) when a deploy would change something",
    )
    plan_parser.set_defaults(passes_through=True)
    # ANSIBLE_ARGS: what argparse does not know is left for ansible-playbook (see main())
    plan_parser.usage = (
        "sitekit plan [-h] [--project DIR] [--json] [--full] [--detailed-exitcode] ENV "
        "[ANSIBLE_ARGS ...]"
    )


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="sitekit",
        description="Check and edit the site catalogues of a sitekit checkout; build its releases.",
    )
    # --project is accepted before or after the command.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--project",
        metavar="DIR",
        default=argparse.SUPPRESS,
        help="the sitekit checkout (default: found upwards from the current directory)",
    )
    top.add_argument("--project", metavar="DIR", default=None, help=common._actions[0].help)
    sub = top.add_subparsers(dest="command", metavar="COMMAND", required=True)

    check = _command(
        sub,
        "check",
        cmd_check,
        [common],
        help="validate environments' site catalogues",
        description="Validate the site catalogue of each ENV (all environments when none is "
        "given). Each is also checked against the other environments' catalogues: a domain "
        "belongs to one environment only (one that cannot be read is named in a warning). "
        "Every problem is listed, naming the environment, the site and the field (or the file "
        "and its line). Exit status: 0 when all are valid, 1 when any is not.",
    )
    check.add_argument("env", nargs="*", metavar="ENV", help=ENV_HELP)

    urls = _command(
        sub,
        "urls",
        cmd_urls,
        [common],
        help="print the URLs of an environment's sites",
        description="Print each present site's URLs (one line per site, canonical domain "
        "first), from the catalogue and the environment's TLS choice and ports: https on "
        "sitekit_tls_port unless the site's TLS (its field tls, else the environment's "
        "sitekit_tls) is off, then http on sitekit_public_port.",
    )
    urls.add_argument("env", metavar="ENV", help=ENV_HELP)
    urls.add_argument("--port", type=_port,
                      help="public http port (default: the inventory's sitekit_public_port)")
    urls.add_argument("--tls-port", type=_port,
                      help="public https port (default: the inventory's sitekit_tls_port)")

    hosts = _command(
        sub,
        "hosts",
        cmd_hosts,
        [common],
        help="print hosts-file lines for an environment's domains",
        description="Print one hosts-file line per present site: the address of the "
        "environment's entry point (its first lb host, else its first web host) followed by "
        "the site's domains. Wildcard domains cannot be listed in a hosts file and are left out.",
    )
    hosts.add_argument(
        "env", metavar="ENV", help="environment name (vagrant) or inventory directory"
    )

    rel_sub = _with_actions(
        sub,
        "release",
        help="build the release that a deploy ships",
        description="Releases are the codebase (manage.py, project/, settings/, sitekit/, "
        "requirements.txt) identified by a hash of their content.",
    )
    build = _command(
        rel_sub,
        "build",
        cmd_release_build,
        [common],
        help="write the release archive and its wheelhouse",
        description="Write OUT/<release-id>.tar.gz and a wheelhouse of the pinned runtime "
        "requirements and of the pip that installs them on the hosts "
        f"({release.INSTALLER}), fetched once per requirements file, with one tar of it "
        "(OUT/wheelhouse-<hash>.tar, what the hosts unpack). Nothing is rebuilt when it "
        "already exists.",
    )
    build.add_argument("--out", required=True, metavar="DIR", help="build directory")
    build.add_argument(
        "--python",
        default=sys.executable,
        metavar="PYTHON",
        help="interpreter whose pip builds the wheelhouse (default: this one)",
    )
    build.add_argument("--json", action="store_true", help="print the result as JSON")
    _command(
        rel_sub, "id", cmd_release_id, [common], help="print the release id of the working tree"
    )

    _add_plan_command(sub, common)
    _add_edit_commands(sub, common)
    manage.add_command(sub, common, _command, ENV_HELP)
    logs.add_command(sub, common, _command, ENV_HELP)
    return top


def main(argv: list[str] | None = None) -> int:
    top = parser()
    args, unknown = top.parse_known_args(argv)
    if unknown and not getattr(args, "passes_through", False):
        top.error(f"unrecognized arguments: {' '.join(unknown)}")
    args.ansible_args = unknown
    args.command_line = shlex.join(["sitekit", *(sys.argv[1:] if argv is None else argv)])
    try:
        return args.func(args)
    except (inventory.InventoryError, release.ReleaseError) as exc:
        print(f"sitekit: {exc}", file=sys.stderr)
        return EXIT_INVALID


if __name__ == "__main__":
    sys.exit(main())
