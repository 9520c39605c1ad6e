"""Validate the site catalogue on the control machine and publish its normalised form."""

from __future__ import annotations

from pathlib import Path

from ansible.plugins.action import ActionBase
from ansible_collections.sitekit.deploy.plugins.plugin_utils.checkout import ensure_importable

ensure_importable()

from sitekit.catalogue import validate  # noqa: E402
from sitekit.inventory import other_catalogues  # noqa: E402


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        args = self._task.args
        env = str(args.get("environment", ""))
        # The other environments are the inventories next to this one (inventories/<env>):
        # a domain may be configured in one of them only.
        inventory_dir = args.get("inventory_dir") or (task_vars or {}).get("inventory_dir")
        others = other_catalogues(Path(str(inventory_dir))) if inventory_dir else {}
        checked = validate(
            args.get("sites"),
            env=env,
            project_root=args.get("project_root"),
            others=others,
            pools=args.get("pools") or None,
        )
        result["changed"] = False
        if not checked.ok:
            count = len(checked.problems)
            result["failed"] = True
            result["problems"] = [str(p) for p in checked.problems]
            result["msg"] = (
                f"The site catalogue has {count} problem{'s' if count != 1 else ''}; "
                "nothing was changed on any host.\n" + "\n".join(result["problems"])
            )
            return result
        sites = [site.as_dict() for site in checked.sites]
        result["ansible_facts"] = {
            "sitekit_catalogue": sites,
            "sitekit_pool_catalogue": [pool.as_dict() for pool in checked.pools],
            "sitekit_masters": checked.masters(),
        }
        present = sum(1 for site in sites if site["state"] == "present")
        result["msg"] = f"{len(sites)} sites valid ({present} present)"
        return result
