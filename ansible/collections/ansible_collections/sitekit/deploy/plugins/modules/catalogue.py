# The work is done by the action plugin of the same name, on the control machine.

DOCUMENTATION = r"""
---
module: catalogue
short_description: Validate the sitekit site catalogue and publish its normalised form
description:
  - Runs C(sitekit.catalogue.validate) from the checkout on the control machine.
  - On any problem the task fails listing every problem with its environment, site and field;
    no connection to the host is made.
  - A domain that the catalogue of another environment also lists is a problem (a domain
    belongs to one environment only). The other environments are the directories next to
    the inventory (C(inventories/*)); only their plaintext catalogue files
    (C(group_vars/all/sites.yml)) are read, and one that cannot be read is left out.
  - Otherwise sets the facts C(sitekit_catalogue), the sites with every default filled in
    (each with C(pool), C(master) and C(master_settings_module)), C(sitekit_pool_catalogue),
    the pools declared in C(sitekit_pools), and C(sitekit_masters), the gunicorn masters the
    environment runs (one per present dedicated site, one per pool with a present site).
version_added: "0.1.0"
options:
  sites:
    description: The catalogue, usually C({{ sitekit_sites }}).
    type: list
    elements: raw
    required: true
  pools:
    description:
      - The pools, usually C({{ sitekit_pools | default({}) }}) - pool name to the resources
        of its master. A site joins one with C(pool: NAME).
    type: raw
    default: {}
  environment:
    description: Environment name used in messages.
    type: str
    default: ""
  project_root:
    description: The codebase whose C(settings/) must hold a module for every site.
    type: path
    required: true
  inventory_dir:
    description:
      - The environment's inventory directory; its siblings are the other environments.
      - Defaults to the host's C(inventory_dir). Without either, no other environment is read.
    type: path
author:
  - sitekit
"""

EXAMPLES = r"""
- name: Validate the site catalogue
  sitekit.deploy.catalogue:
    sites: "{{ sitekit_sites }}"
    pools: "{{ sitekit_pools | default({}) }}"
    environment: "{{ sitekit_env }}"
    project_root: "{{ playbook_dir | dirname }}"
"""

RETURN = r"""
problems:
  description: One line per problem, when the catalogue is invalid.
  type: list
  elements: str
  returned: failure
ansible_facts:
  description: C(sitekit_catalogue), C(sitekit_pool_catalogue) and C(sitekit_masters).
  type: dict
  returned: success
"""
