#!/usr/bin/python
# Installs a configuration that was rendered into a staging directory, only once it passed its test.

from __future__ import annotations

import fnmatch
import os
import stat
import subprocess

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.sitekit.deploy.plugins.module_utils.atomic import write_atomic

DOCUMENTATION = r"""
---
module: install_tested
short_description: Install staged configuration files only after they pass a test
description:
  - Compares staged files with the live ones they replace. When anything differs, runs
    O(test) (for nginx, C(nginx -t) on the staged main configuration); only when it succeeds
    are the differing files installed, each atomically (by rename), and live files that are no
    longer staged removed. When the test fails nothing is installed, the live files stay as
    they were, and the module fails with the test's output.
  - The staged copy is a mirror of the live layout, so what is tested is byte for byte what
    is installed.
  - Check mode reports what would be installed or removed, without running the test; what
    is not staged yet is left out (the tasks that stage it report it).
version_added: "0.2.0"
options:
  files:
    description: Single files, each C(src) (staged) installed as C(dest) (live).
    type: list
    elements: dict
    default: []
  dirs:
    description: >-
      Directories mirrored from C(src) (staged) to C(dest) (live): the files of C(src)
      matching C(patterns) (default C(*)) are installed, and files of C(dest) matching them
      but absent from C(src) are removed. Subdirectories are not descended into.
    type: list
    elements: dict
    default: []
  test:
    description: Command (argv) run before anything is installed; exit status 0 means valid.
    type: list
    elements: str
    required: true
author:
  - sitekit
"""

RETURN = r"""
installed:
  description: Live paths written (or that would be, in check mode).
  type: list
  elements: str
  returned: always
removed:
  description: Live paths removed (or that would be, in check mode).
  type: list
  elements: str
  returned: always
test_output:
  description: What the test printed, when it ran.
  type: str
  returned: when the test ran
"""


def _read(path):
    try:
        with open(path, "rb") as f:
            return f.read(), os.fstat(f.fileno())
    except FileNotFoundError:
        return None, None


def _plan(module, files, dirs):
    """(pairs to install, live paths to remove)."""
    pairs = [(f["src"], f["dest"]) for f in files]
    remove = []
    for d in dirs:
        src, dest = d["src"], d["dest"]
        patterns = d.get("patterns") or ["*"]

        def wanted(name, patterns=patterns):
            return any(fnmatch.fnmatchcase(name, p) for p in patterns)

        if not os.path.isdir(src):
            if module.check_mode:  # not staged yet: the staging tasks report what they would write
                continue
            module.fail_json(msg=f"{src}: staged directory missing")
        staged = sorted(
            n for n in os.listdir(src) if wanted(n) and os.path.isfile(os.path.join(src, n))
        )
        pairs += [(os.path.join(src, n), os.path.join(dest, n)) for n in staged]
        if os.path.isdir(dest):
            remove += [
                os.path.join(dest, n)
                for n in sorted(os.listdir(dest))
                if wanted(n) and n not in staged and not os.path.isdir(os.path.join(dest, n))
            ]
    install = []
    for src, dest in pairs:
        new, new_st = _read(src)
        if new is None:
            if module.check_mode:
                continue
            module.fail_json(msg=f"{src}: staged file missing")
        old, old_st = _read(dest)
        if old != new or stat.S_IMODE(old_st.st_mode) != stat.S_IMODE(new_st.st_mode):
            install.append((src, dest, new, stat.S_IMODE(new_st.st_mode)))
    return install, remove


def main():
    module = AnsibleModule(
        argument_spec={
            "files": {
                "type": "list",
                "elements": "dict",
                "default": [],
                "options": {
                    "src": {"type": "path", "required": True},
                    "dest": {"type": "path", "required": True},
                },
            },
            "dirs": {
                "type": "list",
                "elements": "dict",
                "default": [],
                "options": {
                    "src": {"type": "path", "required": True},
                    "dest": {"type": "path", "required": True},
                    "patterns": {"type": "list", "elements": "str"},
                },
            },
            "test": {"type": "list", "elements": "str", "required": True},
        },
        supports_check_mode=True,
    )
    install, remove = _plan(module, module.params["files"], module.params["dirs"])
    result = {
        "changed": bool(install or remove),
        "installed": [dest for _, dest, _, _ in install],
        "removed": remove,
    }
    if not result["changed"] or module.check_mode:
        module.exit_json(**result)

    test = module.params["test"]
    try:
        proc = subprocess.run(test, capture_output=True, text=True, check=False)
    except OSError as e:
        module.fail_json(msg=f"cannot run the test {' '.join(test)}: {e}", installed=[], removed=[])
    output = (proc.stdout + proc.stderr).strip()
    if proc.returncode != 0:
        module.fail_json(
            msg=(
                f"the new configuration failed its test ({' '.join(test)}): nothing was "
                f"installed, the running configuration is unchanged.\n{output}"
            ),
            rc=proc.returncode,
            test_output=output,
            installed=[],
            removed=[],
        )

    for _, dest, data, mode in install:
        try:
            write_atomic(dest, data, mode)
        except OSError as e:
            module.fail_json(msg=f"{dest}: {e}", test_output=output)
    for path in remove:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        except OSError as e:
            module.fail_json(msg=f"{path}: {e}", test_output=output)
    module.exit_json(test_output=output, **result)


if __name__ == "__main__":
    main()
