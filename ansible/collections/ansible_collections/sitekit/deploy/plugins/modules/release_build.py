# The work is done by the action plugin of the same name, on the control machine.

DOCUMENTATION = r"""
---
module: release_build
short_description: Build the release archive and its wheelhouse on the control machine
description:
  - Runs C(sitekit.release.build) from the checkout, as C(sitekit release build) does; the
    release id is a hash of the codebase's files; the archive (C(OUT/<id>.tar.gz)) and the
    wheelhouse of the pinned requirements are built only when they do not exist yet.
  - Runs on the control machine without connecting to the host, in check mode too.
version_added: "0.4.0"
options:
  project:
    description: The checkout whose codebase is released.
    type: path
    required: true
  out:
    description: The build directory.
    type: path
    required: true
  python:
    description: Interpreter whose pip builds the wheelhouse (default, Ansible's).
    type: path
author:
  - sitekit
"""

RETURN = r"""
release_id:
  description: The release id.
  type: str
  returned: success
archive:
  description: The release archive.
  type: str
  returned: success
wheelhouse:
  description: The wheelhouse directory.
  type: str
  returned: success
wheelhouse_archive:
  description: >-
    The wheelhouse as one tar of its directory, its C(.complete) marker last (what the hosts
    unpack).
  type: str
  returned: success
installer:
  description: >-
    The file name of the pip wheel in the wheelhouse that installs the requirements into a
    release's virtualenv.
  type: str
  returned: success
"""
