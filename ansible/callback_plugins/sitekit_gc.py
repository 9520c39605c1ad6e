"""Python's garbage collector tuned for the model a deploy holds in memory.

At 10,000 sites the preflight's model is millions of small objects, which every Ansible process
(the controller and each task's worker, forked from it) holds. CPython's collector is triggered
every 700 allocations; as Ansible copies and templates the model, that ran its full collections
over all of them again and again: about a sixth of a no-op deploy's time (33 s against 28 s,
bench/README.md). Collecting after every 100,000 allocations instead leaves the peak memory as it
was (cycles are still collected) and the time of a small catalogue unchanged.

Loaded with the playbook (this directory is next to site.yml), whatever the configuration; it
prints nothing.
"""

from __future__ import annotations

import gc

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = r"""
name: sitekit_gc
type: aggregate
short_description: Tune Python's garbage collector for the model a deploy holds
description:
  - Raises the thresholds of Python's garbage collector in the controller (and so in the
    workers it forks) to (100000, 50, 100); prints nothing.
"""

#: Allocations between collections of the youngest generation, and how many collections of
#: one generation trigger one of the next (CPython's defaults: 700, 10, 10).
THRESHOLDS = (100_000, 50, 100)


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "sitekit_gc"
    CALLBACK_NEEDS_ENABLED = False

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        gc.set_threshold(*THRESHOLDS)
