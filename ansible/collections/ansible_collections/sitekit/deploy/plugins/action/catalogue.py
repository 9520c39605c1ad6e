"""Validate the site catalogue on the control machine and publish the resolved model.

The one reader of catalogue files (:func:`sitekit.inventory.load_catalogue`) reads the
environment's catalogue file and refuses what Ansible's own loader only warns about (a key
given twice); ansible/ansible.cfg keeps Ansible's loader off the file (its vars plugin,
``ansible/vars_plugins/sitekit_group_vars.py``). A catalogue given to the host otherwise
(host_vars, -e) is used instead of the file's. Then the one validator
(:func:`sitekit.catalogue.validate`, which ``sitekit check`` and the editing commands run too)
checks the catalogue against the environment's TLS choice
and its neighbours' domains (a neighbour whose catalogue cannot be read is a warning);
:func:`sitekit.model.layout_problems` the environment's own settings and secrets. When all is
well, :func:`sitekit.model.resolve` turns the catalogue into what every site and master
becomes on this host, returned as ``model`` (none of it secret): the preflight registers it
and the sitekit role's vars name its parts. Not as host facts, which Ansible deep-copies for
every task (about 2 s a task at 10,000 sites); and as one JSON text
(:func:`sitekit.model.publish`), which Ansible's copies of the result do not walk.
"""

from __future__ import annotations

from pathlib import Path

from ansible.plugins.action import ActionBase
from ansible.template import trust_as_template
from ansible_collections.sitekit.deploy.plugins.plugin_utils.checkout import ensure_importable

from ansible import constants as C

ensure_importable()

from sitekit import model  # noqa: E402
from sitekit.catalogue import Problem, validate  # noqa: E402
from sitekit.inventory import (  # noqa: E402
    CATALOGUE_FILE,
    POOLS_VAR,
    SITES_VAR,
    inventory_catalogue,
    other_catalogues,
)


def _has_template(value, depth=0):
    """Whether ``value`` needs Ansible's templating: a text in it (its lists and mappings, keys
    included) with a Jinja2 delimiter, or any value that is not a plain text, number, boolean or
    null (a vaulted one). Deeper than YAML would nest a catalogue counts as one."""
    if isinstance(value, str):
        return "{{" in value or "{%" in value or "{#" in value
    if depth > 50:
        return True
    if isinstance(value, dict):
        return any(_has_template(k, depth + 1) or _has_template(v, depth + 1)
                   for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(_has_template(v, depth + 1) for v in value)
    # anything but plain scalars (a vaulted value, for one) is left to Ansible's templating
    return not (value is None or isinstance(value, int | float | bool))


def _trusted(value, depth=0):
    """*value* with every text in it marked as a template (deeper than 50 levels: as it is)."""
    if isinstance(value, str):
        return trust_as_template(value)
    if depth > 50:
        return value
    if isinstance(value, dict):
        return {k: _trusted(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_trusted(v, depth + 1) for v in value]
    return value


def _catalogue_dirs(task_vars, inventory):
    """Where an environment's catalogue file may be: the host's inventory directory, then each
    inventory source's (as Ansible finds group_vars next to each source)."""
    found = [inventory] if inventory is not None else []
    for source in task_vars.get("ansible_inventory_sources") or []:
        path = Path(str(source))
        found.append(path if path.is_dir() else path.parent)
    return found


#: The vars plugin ansible/ansible.cfg enables: whether that configuration is in use.
_CONFIG_PLUGIN = "sitekit_group_vars"
NO_CONFIG = (
    "ansible/ansible.cfg is not in use (ansible-playbook reads ./ansible.cfg or ANSIBLE_CONFIG: "
    "export ANSIBLE_CONFIG=ansible/ansible.cfg in the checkout, as make and sitekit plan do). "
    "The deploy works without it, but Ansible loads the catalogue file itself too (a value YAML "
    "cannot build stops it there, before the preflight; about 3.5 s at 10,000 sites) and runs "
    "with its own defaults (5 forks, no pipelining).")

#: What _catalogue_var returns for a variable that no argument, host variable or file sets.
_NOWHERE = object()


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False

    def _catalogue_var(self, task_vars, name, default, catalogue):
        """The argument ``name``, else the host's variable of that name (one set in host_vars
        or given with -e, or the catalogue file's where Ansible loaded it), else the catalogue
        file's (``catalogue``: as sitekit's reader read it; ansible/ansible.cfg leaves the file
        to this reader alone: Ansible's took 3.5 s of every run at 10,000 sites). Templated
        here, once the file was found readable: templated by Ansible as an argument, an alias
        bomb in the file would never finish before the reader could refuse it."""
        key = name.removeprefix("sitekit_")
        if key in self._task.args:
            return self._task.args[key]
        from_file = name not in task_vars
        if not from_file:
            value = task_vars[name]
        elif catalogue is not None and name in catalogue:
            value = catalogue[name]
        else:
            return default
        if not _has_template(value):
            # plain data, as templating would return it (which took 1.8 s for 10,000 sites)
            return value
        if from_file:
            # the file's texts are templates, as they are when Ansible loads a vars file
            value = _trusted(value)
        templar = self._templar.copy_with_new_env(available_variables=task_vars)
        return templar.template(value)

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        args = self._task.args
        if _CONFIG_PLUGIN not in (C.VARIABLE_PLUGINS_ENABLED or []):
            result["warnings"] = [NO_CONFIG]
        env = str(args.get("environment", ""))
        # The other environments are the inventories next to this one (inventories/<env>):
        # a domain may be configured in one of them only.
        inventory_dir = args.get("inventory_dir") or (task_vars or {}).get("inventory_dir")
        inventory = Path(str(inventory_dir)) if inventory_dir else None
        project_root = args.get("project_root")
        # as `sitekit check`: a catalogue file that cannot be read is not validated
        catalogue, problems = None, []
        directories = _catalogue_dirs(task_vars or {}, inventory)
        for directory in directories:
            catalogue, problems = inventory_catalogue(directory, env)
            if catalogue is not None or problems:
                break
        sites = None
        if not problems:
            sites = self._catalogue_var(task_vars or {}, SITES_VAR, _NOWHERE, catalogue)
        if sites is _NOWHERE:
            sites = None
            if catalogue is None:
                # no catalogue is not an empty one: deploying none would take every site down
                looked = ", ".join(dict.fromkeys(str(d / CATALOGUE_FILE) for d in directories))
                problems = [Problem(env, "", "", (
                    f"no site catalogue: no file {looked or CATALOGUE_FILE}, and no variable "
                    f"{SITES_VAR} for this host"))]
        layout = model.Layout.from_mapping({**(args.get("layout") or {}), "env": env})
        checked = None
        if not problems:
            checked = validate(
                sites,
                env=env,
                project_root=project_root,
                others=other_catalogues(inventory) if inventory else {},
                pools=self._catalogue_var(task_vars or {}, POOLS_VAR, {}, catalogue),
                tls=layout.tls if args.get("layout") else None,
            )
            result["warnings"] = result.get("warnings", []) + [
                str(warning) for warning in checked.warnings]
            problems = list(checked.problems)
        if checked is not None and args.get("layout") and not problems:
            problems += model.layout_problems(
                layout,
                secret_key_base=str(args.get("secret_key_base") or ""),
                db_password=str(args.get("db_password") or ""),
                shared_env=args.get("shared_env") or {},
            )
            problems += model.provided_problems(checked, layout, args.get("certificates"))
        result["changed"] = False
        if problems:
            count = len(problems)
            result["failed"] = True
            result["problems"] = [str(p) for p in problems]
            result["msg"] = (
                f"The site catalogue has {count} problem{'s' if count != 1 else ''}; "
                "nothing was changed on any host.\n" + "\n".join(result["problems"])
            )
            return result
        assert checked is not None
        resolved = model.resolve(checked, layout)
        result["model"] = model.publish(resolved.variables())
        present = len(resolved.present_sites)
        result["msg"] = (
            f"{len(resolved.sites)} sites valid ({present} present), "
            f"{len(resolved.masters)} masters"
        )
        return result
