"""Finding and reading the catalogue of an environment's inventory."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sitekit import loader
from sitekit.catalogue import (
    POOLS_VAR,
    SITES_VAR,
    Problem,
    Result,
    Unreadable,
    tls_choice_problem,
    validate,
)
from sitekit.crosschecks import file_problems
from sitekit.echo import shown
from sitekit.model import private_address
from sitekit.runtime.rules import tls_mode

CATALOGUE_FILE = Path("group_vars") / "all" / "sites.yml"
CATALOGUE_VAR = SITES_VAR


class InventoryError(Exception):
    """An inventory that cannot be found or read."""


@dataclass
class Inventory:
    name: str
    path: Path
    project_root: Path

    @property
    def catalogue_path(self) -> Path:
        return self.path / CATALOGUE_FILE

    def label(self, path: Path) -> str:
        """A file of the inventory as messages show it: relative to the checkout, when in it."""
        return shown_path(path, self.project_root)


def shown_path(path: Path, root: Path) -> str:
    """``path`` as messages show it: relative to the checkout ``root`` when inside it."""
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


def project_root(start: Path | None = None) -> Path:
    """The checkout holding ``inventories/`` and ``settings/``, found upwards from ``start``."""
    here = (start or Path.cwd()).resolve()
    for candidate in (here, *here.parents):
        if (candidate / "inventories").is_dir() and (candidate / "settings").is_dir():
            return candidate
    raise InventoryError(
        f"no sitekit checkout found at or above {here} (looked for 'inventories/' and 'settings/')"
    )


def find(env: str, root: Path | None = None) -> Inventory:
    """Resolve ``env`` (a name such as ``local`` or a path such as ``inventories/local``)."""
    if not env.strip():
        raise InventoryError(
            "an environment name cannot be empty: give one such as 'local', or an inventory "
            "directory (inventories/local); without any, `sitekit check` checks them all"
        )
    as_path = Path(env)
    by_name = "/" not in env and env not in (".", "..")  # a name, not inventories/ itself
    if by_name and root is not None and (root / "inventories" / env).is_dir():
        return Inventory(env, root / "inventories" / env, root)
    if as_path.is_dir():
        path = as_path.resolve()
        try:
            proj = project_root(path)
        except InventoryError:
            proj = path.parent.parent
        return Inventory(path.name, path, proj)
    proj = root or project_root()
    path = proj / "inventories" / env
    if not by_name or not path.is_dir():
        known = ", ".join(all_names(proj)) or "none"
        raise InventoryError(f"no environment {shown(env)} (known: {known})")
    return Inventory(env, path, proj)


def all_names(root: Path) -> list[str]:
    base = root / "inventories"
    return sorted(p.name for p in base.iterdir() if (p / CATALOGUE_FILE).is_file())


def load_catalogue(
    env: str, text: str, label: str, base: str | None = None
) -> tuple[dict[str, Any] | None, list[Problem]]:
    """The variables of a catalogue file's ``text`` (``sitekit_sites``, ``sitekit_pools``), or
    the problems that keep it from being read (``label``: the file as shown to the user;
    ``base``: the text it was edited from, when it was, :func:`sitekit.loader.load`).

    The one reading of a catalogue file, for ``sitekit check``, the editing commands and the
    preflight: :func:`sitekit.loader.load` (a key given twice, a value YAML cannot construct,
    nesting or aliases beyond measure are problems naming the site, the field and the line).
    """
    loaded = loader.load(text, base)
    if not loaded.ok:
        return None, file_problems(env, loaded, label)
    if not isinstance(loaded.data, dict) or CATALOGUE_VAR not in loaded.data:
        return None, [Problem(env, "", "", f"{label} does not define '{CATALOGUE_VAR}'")]
    return loaded.data, []


def read_catalogue(inv: Inventory) -> Any:
    """The raw value of ``sitekit_sites`` from the environment's catalogue file; InventoryError
    (its first problem) when the file cannot be read."""
    data, problems = read_catalogue_file(inv)
    if data is None:
        raise InventoryError(str(problems[0]))
    return data[CATALOGUE_VAR]


def read_catalogue_file(inv: Inventory) -> tuple[dict[str, Any] | None, list[Problem]]:
    """The environment's catalogue file read by :func:`load_catalogue`, or why it cannot be."""
    path = inv.catalogue_path
    if not path.is_file():
        return None, [Problem(inv.name, "", "", f"no catalogue file {path}")]
    try:
        text = path.read_bytes().decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return None, [Problem(inv.name, "", "", f"{inv.label(path)} cannot be read: {exc}")]
    return load_catalogue(inv.name, text, inv.label(path))


def inventory_catalogue(
    inventory_dir: Path, env: str
) -> tuple[dict[str, Any] | None, list[Problem]]:
    """The variables of the catalogue file of the inventory at ``inventory_dir`` (named
    ``env``) as :func:`load_catalogue` reads them, or what keeps it from being read; (None, [])
    when there is no such file.

    The preflight reads the file with it: ansible/ansible.cfg leaves the file to this reader
    alone (Ansible's own warns where this one refuses, a key given twice, and took 3.5 s at
    10,000 sites)."""
    path = Path(inventory_dir).resolve()
    inv = Inventory(env, path, path.parent.parent)  # inventories/<env> in its checkout
    if not inv.catalogue_path.is_file():
        return None, []
    return read_catalogue_file(inv)


def other_catalogues(inventory_dir: Path) -> dict[str, Any]:
    """The raw catalogues of the environments next to ``inventory_dir``, by directory name.

    Only each environment's plaintext catalogue file is read (never its vault). One that
    cannot be read is :class:`~sitekit.crosschecks.Unreadable` (the validator warns that its
    domains were not compared): checking it reports its own problems, and it must not stop the
    others from being checked. A directory without a catalogue file is left out.
    """
    here = Path(inventory_dir).resolve()
    others: dict[str, Any] = {}
    try:
        candidates = sorted(here.parent.iterdir())
    except OSError:
        return others
    for path in candidates:
        try:
            if path.resolve() == here or not (path / CATALOGUE_FILE).is_file():
                continue
        except OSError:
            continue
        data, _ = read_catalogue_file(Inventory(path.name, path, here.parent.parent))
        others[path.name] = Unreadable() if data is None else data[CATALOGUE_VAR]
    return others


def read_yaml_file(inv: Inventory, path: Path) -> Any:
    """A YAML file of the inventory besides its catalogue (its variables, its hosts), read by
    :func:`sitekit.loader.load`; InventoryError naming the file and line when it cannot be."""
    label = inv.label(path)
    try:
        loaded = loader.load(path.read_bytes().decode("utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise InventoryError(f"{inv.name}: {label} cannot be read: {exc}") from None
    if not loaded.ok:
        problem = file_problems(inv.name, loaded, label)[0]
        raise InventoryError(str(problem))
    return loaded.data


def environment_vars(inv: Inventory) -> dict[str, Any]:
    """The environment's plaintext variables (``group_vars/all/main.yml``; {} when absent)."""
    path = inv.path / "group_vars" / "all" / "main.yml"
    data = {}
    if path.is_file():
        data = read_yaml_file(inv, path) or {}
        if not isinstance(data, dict):
            raise InventoryError(f"{inv.name}: {inv.label(path)} must be a mapping of variables")
    return data


def public_endpoint(inv: Inventory) -> tuple[str, int, int]:
    """The environment's TLS mode and public ports: ``sitekit_tls`` (``self-signed`` when
    unset), ``sitekit_public_port`` (http, 80) and ``sitekit_tls_port`` (https, 443)."""
    data = environment_vars(inv)
    tls = tls_mode(data.get("sitekit_tls", "self-signed"))
    if tls is None:
        path = inv.path / "group_vars" / "all" / "main.yml"
        raise InventoryError(
            f"{inv.name}: {path}: {tls_choice_problem(data['sitekit_tls'])}"
        )
    port = data.get("sitekit_public_port")
    tls_port = data.get("sitekit_tls_port")
    return (tls, port if isinstance(port, int) else 80,
            tls_port if isinstance(tls_port, int) else 443)


def entry_address(inv: Inventory) -> str:
    """Where browsers of this environment should send the sites' domains.

    The first host of the ``lb`` group, else of the ``web`` group, from ``hosts.yml``
    (its ``sitekit_private_address``, ``ansible_host`` or name); 127.0.0.1 for a local
    connection.
    """
    path = inv.path / "hosts.yml"
    if not path.is_file():
        raise InventoryError(f"{inv.name}: no hosts file {path}")
    children = _mapping(_mapping(read_yaml_file(inv, path)).get("all")).get("children")
    for group in ("lb", "web"):
        hosts = _mapping(_mapping(_mapping(children).get(group)).get("hosts"))
        for name, hostvars in hosts.items():
            if _mapping(hostvars).get("ansible_connection") == "local":
                return "127.0.0.1"
            return private_address(name, hosts)
    raise InventoryError(f"{inv.name}: {path} has no host in the 'lb' or 'web' group")


def validation_context(inventory_dir: Path) -> dict[str, Any]:
    """What :func:`sitekit.catalogue.validate` needs of an environment besides its catalogue:
    the neighbouring environments' catalogues and its TLS choice (``sitekit_tls``). The CLI's
    check and the editing commands take it from here, the preflight from the playbook's
    variables. Raises InventoryError when the environment's ``main.yml`` cannot be read."""
    path = Path(inventory_dir)
    env_vars = environment_vars(Inventory(path.name, path, path.parent.parent))
    return {"others": other_catalogues(path), "tls": env_vars.get("sitekit_tls", "self-signed")}


def _mapping(value: Any) -> dict[Any, Any]:
    return value if isinstance(value, dict) else {}


def check(inv: Inventory) -> Result:
    """Read and validate one environment's catalogue, against its neighbours' domains too."""
    data, problems = read_catalogue_file(inv)
    if data is None:
        return Result([], problems)
    try:
        context = validation_context(inv.path)
    except InventoryError as exc:
        return Result([], [Problem(inv.name, "", "", str(exc).removeprefix(f"{inv.name}: "))])
    return validate(
        data[CATALOGUE_VAR],
        env=inv.name,
        project_root=inv.project_root,
        pools=data.get(POOLS_VAR),
        **context,
    )
