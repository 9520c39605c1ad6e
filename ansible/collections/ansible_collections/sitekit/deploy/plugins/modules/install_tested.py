#!/usr/bin/python
# Installs a configuration that was rendered into a staging directory, only once it passed its test.

from __future__ import annotations

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.sitekit.deploy.plugins.module_utils import staged

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


def main():
    module = AnsibleModule(
        argument_spec=staged.STAGED_OPTIONS,
        supports_check_mode=True,
    )
    try:
        p = module.params
        files, remove = staged.plan(p["files"], p["dirs"], module.check_mode)
    except staged.StagedError as e:
        module.fail_json(msg=str(e))
    result = {
        "changed": bool(files or remove),
        "installed": [dest for dest, _, _ in files],
        "removed": remove,
    }
    if not result["changed"] or module.check_mode:
        module.exit_json(**result)
    try:
        output = staged.install(module.params["test"], files, remove)
    except staged.StagedError as e:
        failed = {"installed": [], "removed": []}
        if e.output is not None:
            failed["test_output"] = e.output
        if e.rc is not None:
            failed["rc"] = e.rc
        module.fail_json(msg=str(e), **failed)
    module.exit_json(test_output=output, **result)


if __name__ == "__main__":
    main()
