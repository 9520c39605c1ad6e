"""``sitekit manage``: run a management command of one site, in its environment, on a web host.

The command runs with the site's own settings module (``settings.<site>``, a pooled site's too),
its master's env file (a pooled site's: its pool's) and the live release, as the master's user:
directly when the environment's web host is this machine (``ansible_connection: local``), else
over SSH with the inventory's connection variables and ``sudo -u <master user>``.
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
import textwrap
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sitekit import inventory, model
from sitekit.echo import clean

EXIT_USAGE = 2
#: The role defaults the layout falls back on (roles/sitekit/defaults/main.yml).
DEFAULTS = {"sitekit_mode": "local", "sitekit_root": "/srv/sitekit", "sitekit_user_prefix": "sk-",
            "sitekit_web_group": "web"}


def _withheld(key: str) -> bool:
    """Variables of the caller's environment that never reach the command (the env file's)."""
    return key.startswith("SITEKIT_") or key == "DJANGO_SETTINGS_MODULE"


class ManageError(Exception):
    """A usage error of `sitekit manage`: one line, exit status 2."""


@dataclass(frozen=True)
class Target:
    """Where and how a site's management commands run."""

    site: str
    settings_module: str
    master: str
    user: str  # "" in local mode: the deploying user
    current: str
    env_file: str
    host: str
    local: bool
    hostvars: Mapping[str, Any]


def _render(value: Any, context: Mapping[str, Any], name: str) -> Any:
    """A variable's value with its Jinja expressions evaluated (from the inventory's own
    variables, ``inventory_dir`` and ``inventory_hostname``; filters dirname and basename)."""
    if not isinstance(value, str) or "{" not in value:
        return value
    import jinja2
    from jinja2.sandbox import SandboxedEnvironment

    env = SandboxedEnvironment(undefined=jinja2.StrictUndefined)
    env.filters.update(dirname=os.path.dirname, basename=os.path.basename)
    for _ in range(5):  # a variable naming another one
        try:
            value = env.from_string(value).render(**context)
        except jinja2.TemplateError as exc:
            raise ManageError(f"{name}: {value!r} cannot be resolved here ({exc})") from None
        if "{" not in value:
            break
    return value


def _mapping(value: Any) -> dict[Any, Any]:
    return value if isinstance(value, dict) else {}


@dataclass
class _Source:
    """What one inventory file says of the web hosts: ``all.vars``, the group's vars, the
    group's hosts (in order) and every host's own variables, wherever it is listed."""

    all_vars: dict[Any, Any]
    group_vars: dict[Any, Any]
    group_hosts: list[str]
    host_vars: dict[str, dict[Any, Any]]


def _source(inv: inventory.Inventory, path: Path, group: str) -> _Source:
    top = _mapping(_mapping(inventory.read_yaml_file(inv, path)).get("all"))
    children = _mapping(top.get("children"))
    web = _mapping(children.get(group))
    host_vars: dict[str, dict[Any, Any]] = {}
    listings = [top.get("hosts"), *(_mapping(g).get("hosts") for g in children.values())]
    for listed in listings:
        for name, own in _mapping(listed).items():
            host_vars.setdefault(str(name), {}).update(_mapping(own))
    return _Source(_mapping(top.get("vars")), _mapping(web.get("vars")),
                   [str(n) for n in _mapping(web.get("hosts"))], host_vars)


def extra_source(given: str) -> Path:
    """An extra inventory file given with -i (a YAML file, as ansible-playbook reads one)."""
    path = Path(given).expanduser()
    if not path.is_file():
        what = "a directory" if path.is_dir() else "no such file"
        raise ManageError(f"-i {clean(given)}: {what} (give an inventory file in YAML, "
                          "such as the hosts.yml of an inventory)")
    return path.resolve()


def web_hosts(inv: inventory.Inventory, group: str = "web",
              extra: list[Path] | tuple[Path, ...] = ()) -> dict[str, dict[str, Any]]:
    """The hosts of the web group (``hosts.yml``), each with its variables: the environment's
    (``group_vars/all/main.yml``), then ``all.vars``, the group's and the host's own.

    ``extra`` inventory files add to it as further ``-i`` do to ansible-playbook's inventory:
    their ``all.vars``, web group vars and web hosts join the environment's, and a host's own
    variables, wherever the file lists the host, join that host's (a later file wins)."""
    path = inv.path / "hosts.yml"
    if not path.is_file():
        raise ManageError(f"{inv.name}: no hosts file {inv.label(path)}")
    sources = [_source(inv, path, group)] + [_source(inv, p, group) for p in extra]
    base = {**DEFAULTS, **inventory.environment_vars(inv)}
    for source in sources:
        base.update(source.all_vars)
    for source in sources:
        base.update(source.group_vars)
    names = list(dict.fromkeys(n for source in sources for n in source.group_hosts))
    hosts = {}
    for name in names:
        own: dict[Any, Any] = {}
        for source in sources:
            own.update(source.host_vars.get(name, {}))
        hosts[name] = {**base, **own, "inventory_hostname": name,
                       "inventory_dir": str(inv.path)}
    if not hosts:
        raise ManageError(f"{inv.name}: {inv.label(path)} has no host in the '{group}' group")
    return hosts


def target(inv: inventory.Inventory, site: str, host: str | None = None,
           root: str | None = None, extra: list[Path] | tuple[Path, ...] = ()) -> Target:
    """Where ``site`` of ``inv`` runs its management commands: on ``host`` (default: the first
    web host), in the layout of its variables (``root``: its sitekit_root, when given;
    ``extra``: further inventory files, see :func:`web_hosts`)."""
    hosts = web_hosts(inv, extra=extra)
    name = host if host is not None else next(iter(hosts))
    if name not in hosts:
        raise ManageError(f"{inv.name}: no web host {clean(name)!r} (web hosts: "
                          f"{', '.join(hosts)})")
    hostvars = hosts[name]

    def var(key: str, default: Any = None) -> Any:
        return _render(hostvars.get(key, default), hostvars, key)

    if root:  # as `-e sitekit_root=DIR` deploys it (make up STACK=DIR)
        hostvars = {**hostvars, "sitekit_root": root}
    mode, top = var("sitekit_mode"), var("sitekit_root")
    current = var("sitekit_current", f"{top}/current")
    etc_dir = var("sitekit_etc_dir", f"{top}/etc" if mode == "local" else "/etc/sitekit")
    layout = model.Layout(env=inv.name, mode=mode, root=top, current=current, etc_dir=etc_dir,
                          user_prefix=var("sitekit_user_prefix"))
    result = inventory.check(inv)
    if not result.ok:
        raise ManageError(f"{inv.name}: the catalogue has problems (see `sitekit check "
                          f"{inv.name}`): {result.problems[0]}")
    resolved = model.resolve(result, layout)
    entry = next((s for s in resolved.sites if s["name"] == site), None)
    if entry is None:
        known = ", ".join(s["name"] for s in resolved.present_sites) or "none"
        raise ManageError(f"{inv.name}: no site {clean(site)!r} in the catalogue "
                          f"(present sites: {known})")
    if entry["state"] != "present":
        raise ManageError(f"{inv.name}: site {site!r} is absent: it runs nowhere (bring it "
                          f"back with `sitekit site add {inv.name} {site}` and deploy)")
    master = resolved.master_of(pool if (pool := entry.get("pool")) else site)
    assert master is not None
    return Target(site=site, settings_module=entry["settings_module"], master=master["name"],
                  user=master["user"], current=current, env_file=master["env_file"],
                  host=name, local=hostvars.get("ansible_connection") == "local",
                  hostvars=hostvars)


def local_command(t: Target, command: list[str], passed: Mapping[str, str],
                  environ: Mapping[str, str]) -> tuple[list[str], dict[str, str], str]:
    """``(argv, environment, working directory)`` of the command on this machine: the live
    release (resolved once), the caller's environment without its SITEKIT_* variables, those
    ``passed`` by --env, the site's settings module and its master's env file."""
    release = os.path.realpath(t.current)
    env = {k: v for k, v in environ.items() if not _withheld(k)}
    env.update(passed)
    env.update(DJANGO_SETTINGS_MODULE=t.settings_module, SITEKIT_ENV_FILE=t.env_file)
    return [f"{release}/venv/bin/python", "manage.py", *command], env, release


def ssh_command(hostvars: Mapping[str, Any], host: str) -> tuple[list[str], str]:
    """``ssh`` with the inventory's connection variables of ``host``, and its address."""

    def var(key: str) -> Any:
        return _render(hostvars.get(key), hostvars, key)

    argv = ["ssh"]
    if var("ansible_port"):
        argv += ["-p", str(var("ansible_port"))]
    if var("ansible_user"):
        argv += ["-l", str(var("ansible_user"))]
    if var("ansible_ssh_private_key_file"):
        argv += ["-i", str(var("ansible_ssh_private_key_file"))]
    for key in ("ansible_ssh_common_args", "ansible_ssh_extra_args"):
        if var(key):
            argv += shlex.split(str(var(key)))
    return argv, str(var("ansible_host") or host)


def remote_command(t: Target, command: list[str], names: list[str], tty: bool) -> list[str]:
    """The ssh command line running the command on the target host. The values of ``names``
    (--env) are not in it: the remote shell, as the master's user, reads them from its input,
    one line each, before the command starts (and is given the rest of that input)."""
    argv, address = ssh_command(t.hostvars, t.host)
    if tty and not names:
        argv.append("-t")
    run = shlex.join(["env", f"DJANGO_SETTINGS_MODULE={t.settings_module}",
                      f"SITEKIT_ENV_FILE={t.env_file}", "venv/bin/python", "manage.py", *command])
    if names:
        reads = " && ".join(f"IFS= read -r {n} && export {n}" for n in names)
        inner = ["sh", "-c", f"{reads} && exec {run}"]
    else:
        inner = shlex.split(run)
    as_user = ["sudo", "-u", t.user, "--", *inner] if t.user else inner
    remote = f"cd -P {shlex.quote(t.current)} && exec {shlex.join(as_user)}"
    return [*argv, "--", address, remote]


#: Variables the shell, sudo or Python read for themselves: passing the caller's would change
#: how the command is found or run, not what it is given.
RESERVED = frozenset({"PATH", "IFS", "HOME", "SHELL", "USER", "LOGNAME", "PWD", "ENV",
                      "BASH_ENV", "DJANGO_SETTINGS_MODULE"})


def passed_values(names: list[str], environ: Mapping[str, str]) -> dict[str, str]:
    """The caller's variables named by --env (their values are never shown)."""
    values = {}
    for name in names:
        if not model.ENV_KEY_RE.match(name):
            raise ManageError(f"--env {clean(name)!r}: not a variable name")
        if name in RESERVED or name.startswith(("LD_", "PYTHON", "SITEKIT_ENV_FILE")):
            raise ManageError(f"--env {name}: the shell, sudo or Python read it themselves "
                              "(not passed)")
        if name not in environ:
            raise ManageError(f"--env {name}: {name} is not set in this environment")
        if "\n" in environ[name] or "\r" in environ[name]:
            raise ManageError(f"--env {name}: its value has a line break (not passed; the value "
                              "is not shown)")
        values[name] = environ[name]
    return values


def split_command(args: argparse.Namespace) -> list[str]:
    """The COMMAND and its ARGS: everything after the first ``--`` of the command line."""
    raw = shlex.split(args.command_line)[1:]
    if "--" not in raw:
        raise ManageError("no command: give it after '--' (sitekit manage ENV SITE -- COMMAND "
                          "[ARGS...])")
    command = raw[raw.index("--") + 1:]
    extra = list(args.ansible_args)
    if extra[:1] == ["--"]:
        extra = extra[1:]
    # argparse leaves the command to the end of what it does not know: before it, the unknown
    split = len(extra) - len(command)
    if split < 0 or extra[split:] != command:
        raise ManageError("ENV and SITE come before '--' (sitekit manage ENV SITE -- COMMAND)")
    unknown = [a for a in extra[:split] if a != "--"]
    if unknown:
        raise ManageError(f"unrecognized arguments: {' '.join(map(clean, unknown))}")
    if not command:
        raise ManageError("no command after '--' (sitekit manage ENV SITE -- COMMAND [ARGS...])")
    return command


def cmd_manage(args: argparse.Namespace) -> int:
    try:
        command = split_command(args)
        names = list(dict.fromkeys(args.pass_env or []))
        passed = passed_values(names, os.environ)
        root = inventory.project_root(Path(args.project) if args.project else None)
        try:
            inv = inventory.find(args.env, root)
        except inventory.InventoryError as exc:
            raise ManageError(str(exc)) from None
        extra = [extra_source(given) for given in args.inventories or []]
        t = target(inv, args.site, args.host, args.root, extra)
    except (ManageError, inventory.InventoryError) as exc:
        print(f"sitekit manage: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if t.local:
        argv, env, cwd = local_command(t, command, passed, os.environ)
        if not os.path.isfile(argv[0]):
            print(f"sitekit manage: {inv.name}: no live release at {t.current} (deploy first: "
                  "make up)", file=sys.stderr)
            return EXIT_USAGE
        sys.stdout.flush()
        os.chdir(cwd)
        os.execve(argv[0], argv, env)  # noqa: S606 (argv, no shell)
    tty = sys.stdin.isatty()
    argv = remote_command(t, command, names, tty)
    print(f"sitekit manage: {inv.name}: {t.site} on {t.host} as {t.user or 'the SSH user'}",
          file=sys.stderr, flush=True)
    if not names:
        os.execvp(argv[0], argv)  # noqa: S606 (argv, no shell)
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE)
    assert proc.stdin is not None
    proc.stdin.write("".join(f"{passed[n]}\n" for n in names).encode())
    proc.stdin.flush()
    if not tty:  # the rest of this input is the command's
        def forward() -> None:
            try:
                for chunk in iter(lambda: os.read(sys.stdin.fileno(), 65536), b""):
                    proc.stdin.write(chunk)
                    proc.stdin.flush()
                proc.stdin.close()
            except (OSError, ValueError):
                pass
        threading.Thread(target=forward, daemon=True).start()
    else:
        proc.stdin.close()
    return proc.wait()


DESCRIPTION = (
    "Run `manage.py COMMAND ARGS` for SITE of ENV with the site's settings module "
    "(settings/SITE.py, a pooled site's own too), its master's env file (a pooled site's: its "
    "pool's; the database, secrets and hosts of the deploy) and the live release. When the "
    "environment's web host is this machine (ansible_connection: local, as in `local`), the "
    "command runs here as you, with this terminal: interactive commands such as "
    "createsuperuser and changepassword prompt as usual. Otherwise it runs on one web host "
    "(--host, default the inventory's first) over ssh, with the inventory's ansible_host, "
    "ansible_user, ansible_port, ansible_ssh_private_key_file, ansible_ssh_common_args and "
    "ansible_ssh_extra_args (with those of any -i FILE added, as ansible-playbook merges "
    "several -i), as the master's user (sudo -u sk-SITE, or sk-POOL), from the live "
    "release; ssh gets a terminal (-t) when this input is one. Your own SITEKIT_* variables "
    "never reach the command; --env NAME passes one. Locally it is in the command's "
    "environment; remotely its value is never on a command line nor in a file: it is sent on "
    "the ssh connection's input, one line per variable, and read there by the shell that runs "
    "the command as the master's user (with --env, ssh gets no terminal, so the command cannot "
    "prompt: it gets the rest of this input, none when this input is a terminal)."
)
EPILOG = """\
examples:
  create the first superuser (it prompts for the password):
    sitekit manage local harbor -- createsuperuser
    sitekit manage production harbor -- createsuperuser --username alice --email alice@example.com
  create an editor of harbor with the password you type, then list harbor's editors:
    read -rs SITEKIT_USER_PASSWORD && export SITEKIT_USER_PASSWORD
    sitekit manage production harbor --env SITEKIT_USER_PASSWORD -- \\
        site_editors grant ed harbor --create
    sitekit manage production harbor -- site_editors list harbor
  the same with the connection variables of hosts kept outside the checkout:
    sitekit manage production harbor -i ~/ssh-hosts.yml -- site_editors list harbor

exit status: the command's; 2 on a usage error (unknown environment, site or host, no command
after --). Remotely, the SSH user needs sudo on the host (as the deploy does)."""


def add_command(sub: argparse._SubParsersAction, common: argparse.ArgumentParser,
                command: Any, env_help: str) -> None:
    """Register `sitekit manage` (``command``: the CLI's helper that adds one)."""
    parser = command(sub, "manage", cmd_manage, [common], allow_abbrev=False,
                     help="run a site's management command (manage.py) on a web host",
                     description=textwrap.fill(DESCRIPTION, 79), epilog=EPILOG,
                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("env", metavar="ENV", help=env_help)
    parser.add_argument("site", metavar="SITE", help="the site's name, as in the catalogue")
    parser.add_argument("--host", metavar="HOST",
                        help="the web host to run it on (default: the first of the inventory)")
    parser.add_argument("--env", dest="pass_env", action="append", metavar="NAME",
                        help="pass your environment variable NAME to the command (repeatable; "
                        "unset is an error; never printed; not PATH, IFS, HOME, LD_*, PYTHON* "
                        "and the like, which the shell, sudo or Python read themselves)")
    parser.add_argument("-i", "--inventory", dest="inventories", action="append",
                        metavar="FILE",
                        help="a further inventory file (YAML) whose variables join the "
                        "environment's, as a second -i does for ansible-playbook: e.g. the "
                        "connection variables (ansible_host, ansible_user, "
                        "ansible_ssh_private_key_file, ...) of hosts not in the checkout "
                        "(repeatable; a later file wins)")
    parser.add_argument("--root", metavar="DIR",
                        help="the environment's sitekit_root when it was deployed elsewhere "
                        "than its inventory says (make up STACK=DIR)")
    parser.set_defaults(passes_through=True)
    parser.usage = ("sitekit manage [-h] [--host HOST] [--env NAME]... [-i FILE]... [--root DIR] "
                    "ENV SITE -- COMMAND [ARGS...]")
