#!/usr/bin/python
# The work is done by the action plugin of the same name: it renders on the control machine and
# applies the result on the host with sitekit.deploy.site_files_apply.

from __future__ import annotations

DOCUMENTATION = r"""
---
module: site_files
short_description: Render and apply one file (or directory) per site and concern in one task
description:
  - Renders every spec in O(files) once per site in O(sites), with the site bound to
    O(loop_var) the way a looped M(ansible.builtin.template) task binds it, and applies all of
    them on the host in one module call, writing only the files whose content, mode or owner
    differ (atomically, by rename).
  - Paths and owners are given as expressions evaluated per site, usually fields of the
    resolved model (C(site.env_file), C(site.user)), so that they are defined once, in
    C(sitekit.model), and not repeated here.
  - Ansible renders each spec's first, middle and last site and the first site of each shape
    (which fields it has, which are empty, the values of fields that take few values); when
    plain Jinja2 (Ansible's core filters and this collection's, every filter's iterator a list
    as in Ansible, the values that are the same for every site resolved once by Ansible, any
    other variable defined but unusable) renders those exactly alike, it renders the others,
    and Ansible any it cannot. At 10,000 server blocks that is seconds instead of a minute.
  - Supports check mode and diff mode. The diff of a file marked O(files[].secret) names the
    file but never shows its contents, and secret contents are never part of the task result.
version_added: "0.2.0"
options:
  sites:
    description: The masters or sites, e.g. C({{ sitekit_masters }}). Required unless O(sites_from).
    type: list
    elements: dict
  sites_from:
    description: >-
      The name of one of the preflight's model variables (e.g. C(sitekit_present_sites)),
      whose list is read in place from its registered result (C(sitekit_preflight)) instead of
      O(sites) (give one or the other): Ansible's templating of an argument of 10,000 sites took
      18 s.
    type: str
  loop_var:
    description: Name under which each site is visible to the templates and variables.
    type: str
    default: site
  prune:
    description: >-
      Directories to clear of what this call did not write (files no site has any more), in
      the same module call.
    type: list
    elements: dict
    default: []
    suboptions:
      path:
        description: The directory (not recursed into).
        type: str
        required: true
      patterns:
        description: Shell patterns of the file names to consider.
        type: list
        elements: str
        default: ["*"]
      keep:
        description: Shell patterns of file names to leave in place even though not written here.
        type: list
        elements: str
        default: []
  find:
    description: >-
      After writing, list what lies directly in each of C(paths) (files, directories, links)
      whose name matches one of C(patterns) (regular expressions matched at the start of the
      name, as M(ansible.builtin.find) with C(use_regex)): in the same call, what a role needs to
      tell what is left over. Nothing is removed.
    type: list
    elements: dict
    default: []
    suboptions:
      paths:
        description: Directories to list (not recursed into).
        type: list
        elements: str
        required: true
      patterns:
        description: Regular expressions of the names to list.
        type: list
        elements: str
        required: true
  install:
    description: >-
      Install what this call wrote into a staging copy (a mirror of the live layout, so what
      is tested is byte for byte what is installed) once it passes a test, in the same module
      call: when anything staged differs from the live files, O(install.test) runs (for nginx,
      C(nginx -t) on the staged main configuration); only when it succeeds are the differing
      files installed, each atomically (by rename), and live files no longer staged removed.
      A configuration its test rejects is never written where the service reads it: nothing is
      installed and the task fails with the test's output. Skipped in check mode (render into
      the live paths there). Writes to the staging copy alone do not count as a change. A live
      file with its staged copy's size, mode and modification time (installing gives it that
      time) is taken as installed from it and not read again (rsync's quick check); removing
      the staging copy makes the next call compare every file byte for byte.
    type: dict
    suboptions:
      files:
        description: Single files, each C(src) (staged) installed as C(dest) (live).
        type: list
        elements: dict
        default: []
      dirs:
        description: >-
          Directories mirrored from C(src) (staged) to C(dest) (live): their files matching
          C(patterns) are installed, and live ones matching them but no longer staged removed.
          Subdirectories are not descended into.
        type: list
        elements: dict
        default: []
      test:
        description: Command (argv) run before anything is installed; exit status 0 means valid.
        type: list
        elements: str
        required: true
      reload:
        description: >-
          Command (argv) run once something was installed, e.g. C(nginx -s reload): what was
          tested is what it loads. Its failure fails the task (the files stay installed).
        type: list
        elements: str
  files:
    description: What to render for every site.
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description: Key of this spec in RV(changed_sites).
        type: str
      state:
        description: C(file) renders O(files[].template); C(directory) makes a directory.
        type: str
        choices: [file, directory]
        default: file
      template:
        description: Template, found the way M(ansible.builtin.template) finds its source.
        type: str
      path_var:
        description: Expression giving the site's path, e.g. C(site.env_file).
        type: str
        required: true
      owner_var:
        description: Expression giving the owner (empty means the connecting user).
        type: str
      group_var:
        description: Expression giving the group (defaults to O(files[].owner_var)).
        type: str
      mode:
        description: Octal mode, as a string.
        type: str
      secret:
        description: Never show or return the contents.
        type: bool
        default: false
      validate:
        description: >-
          Command that checks a changed file before it replaces the old one, C(%s) its temporary
          path, as M(ansible.builtin.template)'s C(validate); a refusal fails the task and
          leaves the old file in place.
        type: str
      sites:
        description: >-
          Render this spec for these entries instead of O(sites), e.g. C([{name: nginx}]) for a
          file of the host rendered once in the same call as the per-site ones.
        type: list
        elements: dict
      sites_from:
        description: >-
          Render this spec for a list of the preflight's model instead of O(sites), named as
          O(sites_from) names one (e.g. C(sitekit_media_dirs)) and read in place; the empty
          name renders it for no entry. Not with O(files[].sites).
        type: str
      where:
        description: >-
          Render this spec only for the entries whose fields have these values, e.g.
          C({kind: pool}) for the pools among the masters.
        type: dict
author:
  - sitekit
"""

EXAMPLES = r"""
- name: Render each site's environment file and gunicorn configuration
  sitekit.deploy.site_files:
    sites: "{{ sitekit_masters }}"
    files:
      - name: run_dir
        state: directory
        path_var: site.run_dir
        owner_var: site.user
        mode: "0750"
      - name: env
        template: site.env.j2
        path_var: site.env_file
        owner_var: site.user
        mode: "0600"
        secret: true
"""

RETURN = r"""
contents_sent:
  description: >-
    How many files' contents the host was sent. Past 200 files (and not in diff mode) each goes
    first by its SHA-256, and only the contents the host does not have are sent.
  type: int
  returned: always
rendered:
  description: How many files (and directories) Ansible rendered, and how many plain Jinja2 did.
  type: dict
  returned: always
  sample: {ansible: 3, jinja2: 9997}
changed_files:
  description: Paths written (or that would be, in check mode).
  type: list
  elements: str
  returned: always
removed_files:
  description: Paths removed by O(prune) (or that would be, in check mode).
  type: list
  elements: str
  returned: always
found:
  description: What O(find) listed, each with C(path) and C(isdir).
  type: list
  elements: dict
  returned: when O(find) is given
installed:
  description: Live paths O(install) wrote.
  type: list
  elements: str
  returned: when O(install) is given
uninstalled:
  description: Live paths O(install) removed (no longer staged).
  type: list
  elements: str
  returned: when O(install) is given
reloaded:
  description: Whether O(install)'s reload ran.
  type: bool
  returned: when O(install) is given
test_output:
  description: What the test of O(install) printed, when it ran.
  type: str
  returned: when the test ran
changed_sites:
  description: For each spec name, the sites with a changed path.
  type: dict
  returned: always
diff:
  description: One entry per changed path (in diff mode).
  type: list
  elements: dict
  returned: when diff mode is on
"""
