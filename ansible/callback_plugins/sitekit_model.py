"""The preflight's model decoded once, in the controller, as its result arrives.

The preflight returns the model as one JSON text (``sitekit.model.publish``), which Ansible's
copies of a result do not walk. Whoever reads a variable of it decodes that text once per
process (``sitekit.model.published``). Ansible runs each task in a worker it forks from the
controller: decoded here, before the next task's workers are forked, the model is in every
worker's memory from the start, and no worker decodes it again (at 10,000 sites, about 0.3 s a
task that reads it).

Loaded with the playbook (this directory is next to site.yml), whatever the configuration; it
prints nothing.
"""

from __future__ import annotations

from collections.abc import Mapping

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = r"""
name: sitekit_model
type: aggregate
short_description: Decode the preflight's model in the controller, for the workers it forks
description:
  - When a task returns a published model (the sitekit.deploy.catalogue action's C(model)),
    decodes it in the controller, so that the workers of the tasks after it find it decoded;
    prints nothing.
"""


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "sitekit_model"
    CALLBACK_NEEDS_ENABLED = False

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._decoded = False

    def v2_playbook_on_task_start(self, task, is_conditional):
        # Ansible copies every result for each callback that has this hook: once the task that
        # returned the model is over (on every host), this one is done for the run
        if self._decoded:
            self.disabled = True

    def v2_runner_on_ok(self, result):
        value = result.result.get("model")
        if isinstance(value, Mapping) and "digest" in value and "json" in value:
            from ansible_collections.sitekit.deploy.plugins.plugin_utils.checkout import (
                ensure_importable,
            )

            ensure_importable()
            from sitekit.model import published

            published(value)
            self._decoded = True
