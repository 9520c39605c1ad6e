"""The ``sitekit`` command line. It parses arguments and prints; the work is done elsewhere."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from sitekit import inventory, release

EXIT_OK, EXIT_INVALID, EXIT_USAGE = 0, 1, 2


def _root(args: argparse.Namespace) -> Path:
    return inventory.project_root(Path(args.project) if args.project else None)


def _report(name: str, problems: list) -> None:
    count = len(problems)
    print(f"{name}: {count} problem{'s' if count != 1 else ''}:", file=sys.stderr)
    for problem in problems:
        print(f"  {problem}", file=sys.stderr)


def cmd_check(args: argparse.Namespace) -> int:
    root = _root(args)
    names = args.env or inventory.all_names(root)
    if not names:
        print(f"no environments with a catalogue under {root / 'inventories'}", file=sys.stderr)
        return EXIT_INVALID
    failed = False
    for name in names:
        try:
            inv = inventory.find(name, root)
        except inventory.InventoryError as exc:
            failed = True
            print(f"{name}: {exc}", file=sys.stderr)
            continue
        result = inventory.check(inv)
        if result.ok:
            present = [s for s in result.sites if s.present]
            domains = sum(len(s.domains) for s in present)
            print(
                f"{inv.name}: OK: {len(result.sites)} sites ({len(present)} present), "
                f"{domains} domains"
            )
        else:
            failed = True
            _report(inv.name, result.problems)
    return EXIT_INVALID if failed else EXIT_OK


def cmd_urls(args: argparse.Namespace) -> int:
    inv = inventory.find(args.env, _root(args))
    result = inventory.check(inv)
    if not result.ok:
        _report(inv.name, result.problems)
        return EXIT_INVALID
    scheme, port = inventory.public_endpoint(inv)
    if args.port is not None:
        port = args.port
    suffix = "" if port == {"http": 80, "https": 443}[scheme] else f":{port}"
    for site in result.sites:
        if site.present:
            concrete = [d for d in site.domains if not d.startswith("*.")]
            wildcards = [d for d in site.domains if d.startswith("*.")]
            urls = [f"{scheme}://{d}{suffix}/" for d in concrete]
            urls += [f"(and any name matching {d})" for d in wildcards]
            print(f"{site.name:<16} {'  '.join(urls)}")
    return EXIT_OK


def cmd_hosts(args: argparse.Namespace) -> int:
    inv = inventory.find(args.env, _root(args))
    result = inventory.check(inv)
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


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"a port is between 1 and 65535, got {value}")
    return value


def cmd_release_build(args: argparse.Namespace) -> int:
    root = _root(args)
    built = release.build(root, Path(args.out), python=args.python)
    if args.json:
        print(json.dumps(built.as_dict()))
    else:
        state = "built" if built.changed else "already built"
        print(f"release {built.release_id} {state}: {built.archive}")
        print(f"wheelhouse: {built.wheelhouse}")
    return EXIT_OK


def cmd_release_id(args: argparse.Namespace) -> int:
    print(release.release_id(_root(args)))
    return EXIT_OK


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="sitekit",
        description="Manage the site catalogue of a sitekit checkout and build its releases.",
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

    check = sub.add_parser(
        "check",
        parents=[common],
        help="validate environments' site catalogues",
        description="Validate the site catalogue of each ENV (all environments when none is "
        "given). Every problem is listed, naming the environment, the site and the field. "
        "Exit status: 0 when all are valid, 1 when any is not.",
    )
    check.add_argument(
        "env", nargs="*", metavar="ENV", help="environment name (local) or inventory directory"
    )
    check.set_defaults(func=cmd_check)

    urls = sub.add_parser(
        "urls",
        parents=[common],
        help="print the URLs of an environment's sites",
        description="Print each present site's URLs (one line per site, canonical domain "
        "first), from the catalogue and the environment's public scheme and port.",
    )
    urls.add_argument("env", metavar="ENV", help="environment name (local) or inventory directory")
    urls.add_argument("--port", type=_port, help="public port (default: the inventory's)")
    urls.set_defaults(func=cmd_urls)

    hosts = sub.add_parser(
        "hosts",
        parents=[common],
        help="print hosts-file lines for an environment's domains",
        description="Print one hosts-file line per present site: the address of the "
        "environment's entry point (its first lb host, else its first web host) followed by "
        "the site's domains. Wildcard domains cannot be listed in a hosts file and are left out.",
    )
    hosts.add_argument(
        "env", metavar="ENV", help="environment name (vagrant) or inventory directory"
    )
    hosts.set_defaults(func=cmd_hosts)

    rel = sub.add_parser(
        "release",
        help="build the release that a deploy ships",
        description="Releases are the codebase (manage.py, project/, settings/, sitekit/, "
        "requirements.txt) identified by a hash of their content.",
    )
    rel_sub = rel.add_subparsers(dest="release_command", metavar="ACTION", required=True)
    build = rel_sub.add_parser(
        "build",
        parents=[common],
        help="write the release archive and its wheelhouse",
        description="Write OUT/<release-id>.tar.gz and a wheelhouse of the pinned runtime "
        "requirements (fetched once per requirements file). Nothing is rebuilt when it "
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
    build.set_defaults(func=cmd_release_build)
    rid = rel_sub.add_parser(
        "id", parents=[common], help="print the release id of the working tree"
    )
    rid.set_defaults(func=cmd_release_id)
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.func(args)
    except (inventory.InventoryError, release.ReleaseError) as exc:
        print(f"sitekit: {exc}", file=sys.stderr)
        return EXIT_INVALID


if __name__ == "__main__":
    sys.exit(main())
