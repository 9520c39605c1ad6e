#!/usr/bin/python
# Reads, in one call, what every pool's master serves now (the gunicorn_site role's first task).

from __future__ import annotations

import base64

from ansible.module_utils.basic import AnsibleModule

DOCUMENTATION = r"""
---
module: pool_serving
short_description: Read the sites each pool's master serves now, for every pool in one call
description:
  - For each pool, the content of its sites file (C(sites_file)), or, when a release before the
    sites files wrote the pool's sites into its env file (C(env_file)), that file's
    C(SITEKIT_POOL_SITES=) line alone (the env file's other lines, secrets among them, never
    leave the host). A new pool has neither; a file that cannot be read counts as missing.
  - One module call for every pool, where a C(slurp) task in a loop took one round trip per
    pool (about 5 s for 10 pools).
  - Reads only; the same in check mode.
version_added: "0.5.0"
options:
  pools:
    description: The pools' masters (the model's C(sitekit_masters) of kind pool).
    type: list
    elements: dict
    required: true
author:
  - sitekit
"""

EXAMPLES = r"""
- name: Read which sites each pool's master serves now
  sitekit.deploy.pool_serving:
    pools: "{{ sitekit_masters | selectattr('kind', 'eq', 'pool') | list }}"
  register: serving
"""

RETURN = r"""
results:
  description: >-
    One entry per pool: C(site), the pool's master as given, and C(content), the base64 of what
    was read; no C(content) for a pool that has neither file, or whose files cannot be read.
    The input of the C(pool_keeps) filter.
  type: list
  elements: dict
  returned: always
"""

POOL_SITES_LINE = "SITEKIT_POOL_SITES="


def _read(path):
    """The file's bytes; None when it cannot be read (missing, or not readable: as the slurp
    tasks this replaces, whose failures were ignored)."""
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        return None


def served(pool):
    """What the pool's master serves now, as bytes (None: nothing to read)."""
    sites = _read(pool.get("sites_file")) if pool.get("sites_file") else None
    if sites is not None:
        return sites
    env = _read(pool.get("env_file")) if pool.get("env_file") else None
    if env is None:
        return None
    for line in env.decode("utf-8", "replace").splitlines():
        if line.startswith(POOL_SITES_LINE):
            return line.encode()
    return b""


def main():
    module = AnsibleModule(
        argument_spec={"pools": {"type": "list", "elements": "dict", "required": True}},
        supports_check_mode=True,
    )
    results = []
    for pool in module.params["pools"]:
        content = served(pool)
        entry = {"site": pool}
        if content is not None:
            entry["content"] = base64.b64encode(content).decode()
        results.append(entry)
    module.exit_json(changed=False, results=results)


if __name__ == "__main__":
    main()
