"""The controller tuned for the model a deploy holds in memory: Python's garbage collector, and
the preflight's model decoded once, before the workers are forked.

At 10,000 sites the preflight's model is millions of small objects, which every Ansible process
(the controller and each task's worker, forked from it) holds.

- CPython's collector is triggered every 700 allocations; as Ansible copies and templates the
  model, that ran its full collections over all of them again and again: about a sixth of a
  no-op deploy's time (33 s against 28 s, bench/README.md). Collecting after every 100,000
  allocations instead leaves the peak memory as it was (cycles are still collected) and the
  time of a small catalogue unchanged.
- The preflight returns the model as one JSON text (``sitekit.model.publish``), which Ansible's
  copies of a result do not walk; whoever reads a variable of it decodes that text once per
  process (``sitekit.model.published``). Decoded here as the result arrives, before the next
  task's workers are forked, the model is in every worker's memory from the start, and no
  worker decodes it again (about 0.3 s a task that reads it at 10,000 sites).

Loaded with the playbook (this directory is next to site.yml), whatever the configuration; it
prints nothing.
"""

from __future__ import annotations

import gc
from collections.abc import Mapping

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = r"""
name: sitekit_controller
type: aggregate
short_description: Tune the controller for the model a deploy holds
description:
  - Raises the thresholds of Python's garbage collector in the controller (and so in the
    workers it forks) to (100000, 50, 100).
  - When a task returns a published model (the sitekit.deploy.catalogue action's C(model)),
    decodes it in the controller, so that the workers of the tasks after it find it decoded.
  - Prints nothing.
"""

#: Allocations between collections of the youngest generation, and how many collections of
#: one generation trigger one of the next (CPython's defaults: 700, 10, 10).
THRESHOLDS = (100_000, 50, 100)


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "sitekit_controller"
    CALLBACK_NEEDS_ENABLED = False

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        gc.set_threshold(*THRESHOLDS)
        self._decoded = False

    def v2_playbook_on_task_start(self, task, is_conditional):
        # Ansible copies every result for each callback that has a runner hook: once the task
        # that returned the model is over (on every host), this one is done for the run
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
