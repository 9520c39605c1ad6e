"""The certificates module, given its sites from the preflight's model in place.

``sites_from`` names a list of the model (``sitekit_tls_sites``; the empty name: no site) that
the action reads where the preflight registered it, instead of an argument Ansible templates
(10,000 sites). The module then runs on the host with those sites as its ``sites``, as one
JSON text, which Ansible hands over as it is (a list of 10,000 sites took about a second).
"""

from __future__ import annotations

import json

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase
from ansible_collections.sitekit.deploy.plugins.plugin_utils.model import read_list


class ActionModule(ActionBase):
    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        args = dict(self._task.args)
        if "sites_from" in args:
            name = args.pop("sites_from")
            if args.get("sites") is not None:
                raise AnsibleActionFail("give sites or sites_from, not both")
            args["sites"] = json.dumps(read_list("" if name is None else name, task_vars),
                                       separators=(",", ":"))
        module_result = self._execute_module(
            module_name="sitekit.deploy.tls_certificates", module_args=args, task_vars=task_vars)
        module_result.pop("invocation", None)
        result.update(module_result)
        self._remove_tmp_path(self._connection._shell.tmpdir)
        return result
