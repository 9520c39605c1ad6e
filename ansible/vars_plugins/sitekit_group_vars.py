"""Ansible's group_vars and host_vars, but for the environment's site catalogue.

The catalogue file (``group_vars/all/sites.yml``) is read by one reader, sitekit's
(:func:`sitekit.inventory.read_catalogue_file`), in the preflight, which checks and resolves
it. Ansible's own loader read it as well, for nothing: at 10,000 sites that took about 3.5 s of
every run, tagging each of its values with its line. Every other file is loaded as
``host_group_vars`` loads it.
"""

from __future__ import annotations

import os

from ansible.plugins.vars.host_group_vars import VarsModule as HostGroupVars

DOCUMENTATION = """
    name: sitekit_group_vars
    short_description: group_vars and host_vars, the site catalogue left to the preflight
    description:
        - Loads group_vars/ and host_vars/ as ansible.builtin.host_group_vars does, but for each
          inventory's site catalogue file (group_vars/all/sites.yml), which the preflight
          (sitekit.deploy.catalogue) reads with sitekit's reader.
        - Enabled in ansible/ansible.cfg (vars_plugins_enabled) in place of host_group_vars.
    options:
      stage:
        ini:
          - key: stage
            section: vars_host_group_vars
        env:
          - name: ANSIBLE_VARS_PLUGIN_STAGE
      _valid_extensions:
        default: [".yml", ".yaml", ".json"]
        description:
          - Check all of these extensions when looking for variable files.
        env:
          - name: ANSIBLE_YAML_FILENAME_EXT
        ini:
          - key: yaml_valid_extensions
            section: defaults
        type: list
        elements: string
    extends_documentation_fragment:
      - vars_plugin_staging
"""

# sitekit.inventory.CATALOGUE_FILE (not imported: every Ansible command loads this plugin;
# tests/unit/test_preflight.py checks that they agree)
_CATALOGUE = os.sep + os.path.join("group_vars", "all", "sites.yml")


def is_catalogue(path) -> bool:
    """Whether *path* is an inventory's site catalogue file."""
    return str(path).endswith(_CATALOGUE)


class VarsModule(HostGroupVars):
    def load_found_files(self, loader, data, found_files):
        return super().load_found_files(
            loader, data, [found for found in found_files if not is_catalogue(found)])
