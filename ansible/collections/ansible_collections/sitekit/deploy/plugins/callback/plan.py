"""Record what a check-mode run of the playbook would change, for ``sitekit plan``."""

from __future__ import annotations

import json

from ansible.plugins.callback import CallbackBase
from ansible_collections.sitekit.deploy.plugins.module_utils.atomic import write_atomic
from ansible_collections.sitekit.deploy.plugins.plugin_utils.checkout import ensure_importable

ensure_importable()

from sitekit import plan  # noqa: E402

DOCUMENTATION = r"""
name: plan
type: stdout
short_description: Record what a check-mode deploy would change, for sitekit plan
description:
  - Used by C(sitekit plan ENV), which runs C(ansible-playbook --check --diff) with this
    callback and prints what a deploy would change on each host.
  - For every task on every host it records the task, its role, whether it would change
    something, and the files it would create, change or remove (paths from C(diff) entries,
    C(dest)/C(path), C(changed_files)/C(removed_files), loop results), with a short diff
    for files that are not secret. Results hidden by C(no_log), files whose diff carries no
    contents and site environment files (C(*.env)) are recorded by path only.
  - The records are written as JSON to the file named by O(plan_file); without it, the
    summary is printed at the end of the run. Failures are printed as they happen.
  - The rules live in the C(sitekit.plan) module of the checkout.
options:
  plan_file:
    description: File the JSON records are written to.
    type: path
    env:
      - name: SITEKIT_PLAN_FILE
"""

# Arguments of a loop item kept to name its path when its result is hidden (no_log): the
# path only, never an argument that could carry content.
_ITEM_ARGS = ("dest", "path", "state")


def _result_of(result):
    return result.result if hasattr(result, "result") else result._result


def _task_fields(result):
    return result.task_fields if hasattr(result, "task_fields") else result._task_fields


def _task_of(result):
    return result.task if hasattr(result, "task") else result._task


def _host_of(result):
    return result.host if hasattr(result, "host") else result._host


def _command_args(result):
    args = (_task_fields(result) or {}).get("args") or {}
    return {"argv": args["argv"]} if isinstance(args.get("argv"), list) else None


def _truthy(value):
    """A task keyword as given: a boolean, or a template (taken as true: the safe side)."""
    return value if isinstance(value, bool) else bool(value)


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "stdout"
    CALLBACK_NAME = "sitekit.deploy.plan"

    def __init__(self, display=None):
        super().__init__(display)
        self._records = []
        self._items = {}
        from ansible import context  # the command line, parsed before callbacks are loaded

        self._check = bool(context.CLIARGS.get("check"))
        self._diff = bool(context.CLIARGS.get("diff"))

    # loop items: remember each item's path, in loop order, for results hidden by no_log
    def _item(self, result):
        args = (_task_fields(result) or {}).get("args") or {}
        kept = {k: args[k] for k in _ITEM_ARGS if isinstance(args.get(k), str)}
        key = (_host_of(result).get_name(), _task_of(result)._uuid)
        self._items.setdefault(key, []).append(kept)

    def v2_runner_item_on_ok(self, result):
        self._item(result)

    def v2_runner_item_on_failed(self, result):
        self._item(result)

    def v2_runner_item_on_skipped(self, result):
        self._item(result)

    def _record(self, result, status):
        task = _task_of(result)
        host = _host_of(result).get_name()
        items = self._items.pop((host, task._uuid), [])
        role = task._role.get_name(include_role_fqcn=False) if task._role else None
        diff_keyword = getattr(task, "diff", None)
        entry = plan.record(
            _result_of(result),
            host=host,
            task=task.name or task.action,
            role=role,
            action=task.action,
            status=status,
            handler=type(task).__name__ == "Handler",
            no_log=_truthy(task.no_log),
            show_diff=self._diff and diff_keyword is not False,
            notify=task.notify or (),
            # what a command runs tells which service it starts or reloads (argv only)
            args=_command_args(result),
            item_args=items,
        )
        self._records.append(entry)
        if status in ("failed", "unreachable"):
            where = f"{role} : {entry['task']}" if role else entry["task"]
            self._display.display(f"{status.upper()}: {host}: {where}: {entry['msg']}")

    def v2_runner_on_ok(self, result):
        self._record(result, "ok")

    def v2_runner_on_skipped(self, result):
        self._record(result, "skipped")

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._record(result, "ignored" if ignore_errors else "failed")

    def v2_runner_on_unreachable(self, result):
        self._record(result, "unreachable")

    def v2_playbook_on_stats(self, stats):
        data = {
            "format": plan.FORMAT,
            "check_mode": self._check,
            "diff_mode": self._diff,
            "complete": True,
            "tasks": self._records,
            "stats": {host: stats.summarize(host) for host in sorted(stats.processed)},
        }
        target = self.get_option("plan_file")
        if not target:
            self._display.display(plan.render(plan.summarise(data)).rstrip("\n"))
            return
        # written whole or not at all: a reader never sees half a plan
        write_atomic(target, json.dumps(data, indent=1, default=str).encode("utf-8"), 0o600)
