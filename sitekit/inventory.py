"""Finding and reading the catalogue of an environment's inventory."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from sitekit.catalogue import POOLS_VAR, Problem, Result, tls_choice_problem, validate
from sitekit.model import private_address
from sitekit.runtime.rules import tls_mode

CATALOGUE_FILE = Path("group_vars") / "all" / "sites.yml"
CATALOGUE_VAR = "sitekit_sites"


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
    as_path = Path(env)
    if "/" not in env and root is not None and (root / "inventories" / env).is_dir():
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
    if not path.is_dir():
        known = ", ".join(all_names(proj)) or "none"
        raise InventoryError(f"no environment '{env}' (known: {known})")
    return Inventory(env, path, proj)


def all_names(root: Path) -> list[str]:
    base = root / "inventories"
    return sorted(p.name for p in base.iterdir() if (p / CATALOGUE_FILE).is_file())


def read_catalogue(inv: Inventory) -> Any:
    """The raw value of ``sitekit_sites`` from the environment's catalogue file."""
    return _read_catalogue_file(inv)[CATALOGUE_VAR]


def _read_catalogue_file(inv: Inventory) -> dict[str, Any]:
    path = inv.catalogue_path
    if not path.is_file():
        raise InventoryError(f"{inv.name}: no catalogue file {path}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise InventoryError(f"{inv.name}: {path} is not valid YAML: {exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InventoryError(f"{inv.name}: {path} cannot be read: {exc}") from None
    if not isinstance(data, dict) or CATALOGUE_VAR not in data:
        raise InventoryError(f"{inv.name}: {path} does not define '{CATALOGUE_VAR}'")
    return data


def other_catalogues(inventory_dir: Path) -> dict[str, Any]:
    """The raw catalogues of the environments next to ``inventory_dir``, by directory name.

    Only each environment's plaintext catalogue file is read (never its vault). An environment
    whose catalogue cannot be read, or that has none, is left out: checking it reports its own
    problem, and it must not stop the others from being checked.
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
            others[path.name] = read_catalogue(Inventory(path.name, path, here.parent.parent))
        except (InventoryError, OSError):
            continue
    return others


def environment_vars(inv: Inventory) -> dict[str, Any]:
    """The environment's plaintext variables (``group_vars/all/main.yml``; {} when absent)."""
    path = inv.path / "group_vars" / "all" / "main.yml"
    data = {}
    if path.is_file():
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            raise InventoryError(f"{inv.name}: {path} is not valid YAML: {exc}") from None
        if not isinstance(data, dict):
            raise InventoryError(f"{inv.name}: {path} must be a mapping of variables")
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
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise InventoryError(f"{inv.name}: {path} cannot be read: {exc}") from None
    children = (data.get("all") or {}).get("children") or {}
    for group in ("lb", "web"):
        hosts = (children.get(group) or {}).get("hosts") or {}
        for name, hostvars in hosts.items():
            if (hostvars or {}).get("ansible_connection") == "local":
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


def check(inv: Inventory) -> Result:
    """Read and validate one environment's catalogue, against its neighbours' domains too."""
    try:
        data = _read_catalogue_file(inv)
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
