#!/usr/bin/python
# Bring every master to its rendered state through supervisorctl, in one module call.

from __future__ import annotations

import re

from ansible.module_utils.basic import AnsibleModule

DOCUMENTATION = r"""
---
module: masters
short_description: Start, apply and gracefully reload the gunicorn masters under supervisor
description:
  - Runs C(supervisorctl update) (supervisor starts the programs that are new, and restarts
    those whose program file changed), then starts every master that is not running, then
    sends C(HUP) (a graceful in-place reload) to the masters of O(reload) that were neither
    started nor restarted by the first two steps.
  - What happened is returned per master name, so that nothing downstream reads
    supervisorctl's output.
  - In check mode nothing is run but C(supervisorctl status); the result says which masters
    would be started or reloaded (C(update)'s effect shows as the program files' changes).
version_added: "0.3.0"
options:
  ctl:
    description: The supervisorctl command line of this host's supervisord.
    type: list
    elements: str
    required: true
  masters:
    description: The masters that should run, each with C(name) and C(program).
    type: list
    elements: dict
    required: true
  reload:
    description: Names of masters whose release, environment or configuration changed.
    type: list
    elements: str
    default: []
author:
  - sitekit
"""

EXAMPLES = r"""
- name: Start new masters, apply changed programs, reload the rest gracefully
  sitekit.deploy.masters:
    ctl: "{{ supervisor_ctl }}"
    masters: "{{ sitekit_masters }}"
    reload: "{{ gunicorn_site_files.changed_sites.env | default([]) }}"
"""

RETURN = r"""
started:
  description: Masters supervisor started or restarted because their program is new or changed.
  type: list
  elements: str
  returned: always
restarted:
  description: Masters that were not running and were started.
  type: list
  elements: str
  returned: always
reloaded:
  description: Masters sent HUP (graceful reload onto the live release and configuration).
  type: list
  elements: str
  returned: always
touched:
  description: All of the above: the masters to wait for.
  type: list
  elements: str
  returned: always
"""

_UPDATED = re.compile(r"^(?P<program>\S+): (added|updated) process group$")
_RUNNING = ("RUNNING", "STARTING")


def _run(module, argv, ok=(0,)):
    rc, out, err = module.run_command(argv)
    if rc not in ok:
        module.fail_json(msg=f"{' '.join(argv)} failed (exit {rc}): {(err or out).strip()}",
                         rc=rc, stdout=out, stderr=err)
    return out


def updated_programs(output):
    """Programs ``supervisorctl update`` added or changed (it starts them itself)."""
    found = []
    for line in output.splitlines():
        match = _UPDATED.match(line.strip())
        if match:
            found.append(match.group("program"))
    return found


def stopped_programs(output, programs):
    """Of ``programs``, those ``supervisorctl status`` lists in a state other than running."""
    stopped = []
    for line in output.splitlines():
        fields = line.split()
        if len(fields) >= 2 and fields[0] in programs and fields[1] not in _RUNNING:
            stopped.append(fields[0])
    return stopped


def main():
    module = AnsibleModule(
        argument_spec={
            "ctl": {"type": "list", "elements": "str", "required": True},
            "masters": {"type": "list", "elements": "dict", "required": True},
            "reload": {"type": "list", "elements": "str", "default": []},
        },
        supports_check_mode=True,
    )
    ctl = module.params["ctl"]
    name_of = {m["program"]: m["name"] for m in module.params["masters"]}
    program_of = {name: program for program, name in name_of.items()}

    changed = False
    started = []
    if not module.check_mode:
        output = _run(module, [*ctl, "update"])
        changed = bool(output.strip())
        started = [p for p in updated_programs(output) if p in name_of]

    rc, out, err = module.run_command([*ctl, "status"])
    if rc not in (0, 3) and not module.check_mode:
        module.fail_json(msg=f"supervisorctl status failed (exit {rc}): {(err or out).strip()}")
    # in check mode on a new host supervisord is not running yet: nothing is stopped
    stopped = stopped_programs(out, name_of) if rc in (0, 3) else []
    if stopped and not module.check_mode:
        _run(module, [*ctl, "start", *stopped])

    reload = [program_of[n] for n in dict.fromkeys(module.params["reload"]) if n in program_of]
    reload = [p for p in reload if p not in started and p not in stopped]
    if reload and not module.check_mode:
        _run(module, [*ctl, "signal", "HUP", *reload])

    def names(programs):
        return [name_of[p] for p in programs]

    module.exit_json(
        changed=changed or bool(stopped or reload),
        started=names(started),
        restarted=names(stopped),
        reloaded=names(reload),
        touched=names(dict.fromkeys(started + stopped + reload)),
    )


if __name__ == "__main__":
    main()
