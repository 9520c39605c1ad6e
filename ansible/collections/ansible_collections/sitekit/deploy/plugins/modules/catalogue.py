# The work is done by the action plugin of the same name, on the control machine.

DOCUMENTATION = r"""
---
module: catalogue
short_description: Validate the sitekit site catalogue and publish its normalised form
description:
  - Runs C(sitekit.catalogue.validate) from the checkout on the control machine.
  - On any problem the task fails listing every problem with its environment, site and field;
    no connection to the host is made.
  - The inventory's own catalogue file (C(group_vars/all/sites.yml) under O(inventory_dir)) is
    read as C(sitekit check) reads it; what Ansible's loader only warns about (a key given
    twice) is a problem naming the key and its line.
  - A domain that the catalogue of another environment also lists is a problem (a domain
    belongs to one environment only). The other environments are the directories next to
    the inventory (C(inventories/*)); only their plaintext catalogue files
    (C(group_vars/all/sites.yml)) are read, and one that cannot be read is named in a warning
    (its domains are not compared).
  - With O(layout), the environment's own settings are checked too (C(sitekit_mode), the
    TLS choice, the secrets, what every env file holds (O(shared_env)), a certificate in
    O(certificates) for every provided site), and
    the catalogue is resolved by C(sitekit.model.resolve) into what every site and master
    becomes on the host.
  - Otherwise returns the model as RV(model), whose variables are what the roles read
    (the preflight registers it; the sitekit role's vars name its parts with the
    C(sitekit.deploy.published) filter), that is
    C(sitekit_catalogue) (every site, the present ones resolved, with socket, user, program,
    upstream, server block, TLS mode and certificate paths, HSTS header, upload location,
    environment without secrets),
    C(sitekit_present_sites), C(sitekit_pool_catalogue),
    C(sitekit_masters) (one per present dedicated site, one per pool with a present site;
    user, program, run directory, socket, env file, gunicorn configuration, log directory,
    health probe, environment without secrets), C(sitekit_known_masters) (every name the
    catalogue knows), C(sitekit_retired_masters) (those of them that run no master now,
    whose leftovers a deploy retires), C(sitekit_tls_sites),
    C(sitekit_media_dirs) (each present site's upload directory, with local storage) and
    C(sitekit_layout). None of them holds a secret.
version_added: "0.1.0"
options:
  sites:
    description:
      - The catalogue. Without it, the host's C(sitekit_sites) when it has one from elsewhere
        (host_vars, the inventory's vars, -e), else the catalogue file's
        (C(group_vars/all/sites.yml) next to the host's inventory or an inventory source, read
        by sitekit's reader, as ansible/ansible.cfg keeps Ansible's loader off it); templated by
        the action only once the file is found readable (an alias bomb in the file is refused
        by the reader, where Ansible templating the argument would not finish).
    type: list
    elements: raw
  pools:
    description:
      - The pools - pool name to the resources of its master. A site joins one with
        C(pool) set to its name. Without it, as O(sites), from C(sitekit_pools) (none when
        undefined).
    type: raw
  environment:
    description: Environment name used in messages.
    type: str
    default: ""
  project_root:
    description: The codebase whose C(settings/) must hold a module for every site.
    type: path
    required: true
  layout:
    description:
      - The environment's layout (C(sitekit.model.Layout)) - mode, root, current, etc_dir,
        run_dir, log_dir, tls_dir, user_prefix, program_prefix, tls, public_port, tls_port,
        hsts_seconds, db_engine, media_storage, media_root, media_max_bytes, s3_endpoint,
        s3_bucket, web_hosts. Without it the catalogue is validated only.
    type: dict
  secret_key_base:
    description: The environment's secret (checked, never published).
    type: str
  db_password:
    description: The database password (checked, never published).
    type: str
  shared_env:
    description:
      - What every master's env file holds besides its own, C({{ sitekit_shared_env }}). A value
        with a line break or another control character, or starting or ending with white
        space, is a problem named by its variable (one line of an env file is one variable);
        values are never shown nor published.
    type: dict
  certificates:
    description: The provided certificates, C({{ sitekit_tls_certificates }}).
    type: dict
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
    environment: "{{ sitekit_env }}"
    project_root: "{{ playbook_dir | dirname }}"
  register: sitekit_preflight
"""

RETURN = r"""
problems:
  description: One line per problem, when the catalogue is invalid.
  type: list
  elements: str
  returned: failure
model:
  description: >-
    The resolved model (see the description): C(json), its variables by name as one JSON text,
    and C(digest), that text's SHA-256. Not host facts, which Ansible copies for every task;
    one text, which Ansible's copies of a result do not walk (a structure of 10,000 sites is
    over a million nodes). The C(sitekit.deploy.published) filter reads a variable of it,
    decoding the text once per process.
  type: dict
  returned: success
  contains:
    json:
      description: The variables, by name, as JSON.
      type: str
    digest:
      description: The SHA-256 of RV(model.json), hex.
      type: str
"""
