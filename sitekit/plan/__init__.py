"""``sitekit plan``: what a deploy would change, read from a check-mode run of the playbook.

Two halves, so that the rules live in one place and can be tested without Ansible:

* :mod:`sitekit.plan.record` turns one task result into a plain record: the task and its role,
  whether it would change something, and the files it would create, change or remove, each
  with a short diff unless it is secret. The ``sitekit.deploy.plan`` callback plugin calls it
  for every task while ``ansible-playbook --check --diff`` runs, and writes the records as JSON.
* :mod:`sitekit.plan.summary` reads those records and says, per host, which files change, which
  gunicorn masters would start, reload gracefully, restart or stop (asking the model which
  master owns a file), whether nginx reloads and whether a new release would go live; its
  :func:`render` words that for people.
"""

from sitekit.plan.record import (
    CHECK_MODE_SKIP,
    FORMAT,
    MAX_DIFF_LINES,
    SECRET_PATTERNS,
    SHOWN_DIFF_LINES,
    files_of,
    is_secret_path,
    record,
    service_action,
)
from sitekit.plan.summary import MASTER_ACTIONS, HostPlan, Plan, render, summarise

__all__ = [
    "CHECK_MODE_SKIP",
    "FORMAT",
    "MASTER_ACTIONS",
    "MAX_DIFF_LINES",
    "SECRET_PATTERNS",
    "SHOWN_DIFF_LINES",
    "HostPlan",
    "Plan",
    "files_of",
    "is_secret_path",
    "record",
    "render",
    "service_action",
    "summarise",
]
