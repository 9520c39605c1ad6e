#!/usr/bin/python
# Whether a daemon runs (by its pid file) and its open-files limit, raised when it is below what
# it needs: one module call where pgrep and prlimit took three.

from __future__ import annotations

import os
import pwd
import resource

from ansible.module_utils.basic import AnsibleModule

DOCUMENTATION = r"""
---
module: daemon
short_description: Whether a daemon runs (by its pid file), its open-files limit, raised when below
description:
  - Reads the pid in O(pidfile) and says whether a process named O(name) runs under it (what
    C(pgrep -F pidfile name) says), the open-files limits of that process, and the hard limit of
    the connecting user (how high a process it starts can go without privileges).
  - Raises the running process's soft limit to O(want) when it is below it (and its hard limit
    too when that is below), as C(prlimit --pid) would; a reload keeps the process and its
    limits, so a configuration that opens more files needs the running master raised first.
  - With O(cap), O(want) is taken down to the connecting user's hard limit (a process started
    without privileges cannot go above it). Raises nothing when the limit is below O(need); the
    role's check of the limits then fails with its own message, and nothing has changed. Check
    mode reports the raise without making it.
version_added: "0.4.0"
options:
  pidfile:
    description: The daemon's pid file.
    type: path
    required: true
  name:
    description: What the process's name must contain.
    type: str
    required: true
  want:
    description: The open-files limit the running process should have (none reads only).
    type: int
  need:
    description: The fewest open files the process needs; a limit below it raises nothing.
    type: int
    default: 0
  cap:
    description: Take O(want) down to the connecting user's hard limit.
    type: bool
    default: false
author:
  - sitekit
"""

RETURN = r"""
running:
  description: Whether the pid file names a running process called O(name).
  type: bool
  returned: always
pid:
  description: Its pid (0 when not running).
  type: int
  returned: always
soft:
  description: Its soft open-files limit before any raise (0 when not running).
  type: int
  returned: always
hard:
  description: Its hard open-files limit before any raise (0 when not running).
  type: int
  returned: always
limit:
  description: The limit the process should run with (O(want), capped), 0 without O(want).
  type: int
  returned: always
user_hard:
  description: The connecting user's hard open-files limit (unlimited reads as 1048576).
  type: int
  returned: always
user:
  description: The connecting user's name (whom a process started without privileges runs as).
  type: str
  returned: always
"""

_UNLIMITED = 1048576


def _limit(value):
    return _UNLIMITED if value == resource.RLIM_INFINITY else int(value)


def _below(limit, want):
    return limit != resource.RLIM_INFINITY and limit < want


def _running(pidfile, name):
    try:
        with open(pidfile, encoding="ascii") as f:
            pid = int(f.read().split()[0])
        with open(f"/proc/{pid}/comm", encoding="utf-8") as f:
            return pid if name in f.read() else 0
    except (OSError, ValueError, IndexError):
        return 0


def _user():
    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        return str(os.geteuid())


def main():
    module = AnsibleModule(
        argument_spec={
            "pidfile": {"type": "path", "required": True},
            "name": {"type": "str", "required": True},
            "want": {"type": "int"},
            "need": {"type": "int", "default": 0},
            "cap": {"type": "bool", "default": False},
        },
        supports_check_mode=True,
    )
    p = module.params
    user_hard = _limit(resource.getrlimit(resource.RLIMIT_NOFILE)[1])
    want = p["want"] or 0
    limit = min(want, user_hard) if p["cap"] else want
    pid = _running(p["pidfile"], p["name"])
    result = {"changed": False, "running": bool(pid), "pid": pid, "soft": 0, "hard": 0,
              "limit": limit, "user_hard": user_hard, "user": _user()}
    if not pid:
        module.exit_json(**result)
    try:
        soft, hard = resource.prlimit(pid, resource.RLIMIT_NOFILE)
    except ProcessLookupError:
        module.exit_json(**dict(result, running=False, pid=0))
    except OSError as e:
        module.fail_json(msg=f"cannot read the open-files limit of pid {pid}: {e}")
    result.update(soft=_limit(soft), hard=_limit(hard))
    if limit and limit >= p["need"] and _below(soft, limit):
        result["changed"] = True
        if not module.check_mode:
            # the soft limit; the hard one too only when it is below
            new = (limit, limit if _below(hard, limit) else hard)
            try:
                resource.prlimit(pid, resource.RLIMIT_NOFILE, new)
            except OSError as e:
                module.fail_json(
                    msg=f"cannot raise the open-files limit of pid {pid} to {limit}: {e}"
                )
    module.exit_json(**result)


if __name__ == "__main__":
    main()
