"""Editing an environment's site catalogue, and scaffolding the code of a new site.

``sitekit domain add|remove`` and ``sitekit site add|remove|move`` are planned here. Planning
reads the catalogue file and, for a new site, the codebase, and returns a :class:`Change`: the
file's text before and after, the files a new site needs, what to tell the user, and the
problems that refuse the edit. Nothing is written until :func:`apply`.

How an edit keeps the file as it was:

* the file is edited through ruamel.yaml's round-trip model, so comments, key order, flow or
  block lists and quoting stay; a file that the model cannot reproduce byte for byte even
  without an edit (a list spread over several lines, unusual spacing) is refused rather than
  reformatted;
* comment lines that follow the place where a line is added or removed stay where they were,
  relative to the lines around them; only the removed line's own comment goes with it;
* the new text is read back with the same YAML reader as ``sitekit check`` and the deploy, and
  must hold exactly the intended data; then the whole catalogue is validated
  (:func:`sitekit.catalogue.validate`).

One edit at a time: :func:`~sitekit.editor.lock.editing` locks the catalogue (and, for an edit
that creates a site's code, the codebase) before it is read, and the change is planned and
written while the locks are held; a second edit waits, then reads what the first wrote.

The modules: :mod:`~sitekit.editor.change` (what an edit would do),
:mod:`~sitekit.editor.document` (the round-trip document), :mod:`~sitekit.editor.checks`
(the checks every edit shares), :mod:`~sitekit.editor.commands` (the edits),
:mod:`~sitekit.editor.lock` (one edit at a time),
:mod:`~sitekit.editor.scaffold` (a new site's code, from ``site_template/``) and
:mod:`~sitekit.editor.write` (writing a change).
"""

from sitekit.editor.change import DEPLOY_HINT, Change, Source, read_source
from sitekit.editor.checks import BRAND_MAX, check_brand, check_name
from sitekit.editor.commands import add_domains, add_site, move_site, remove_domains, remove_site
from sitekit.editor.lock import WAIT_SECONDS, editing
from sitekit.editor.scaffold import default_brand, next_site_id, palette, scaffold, unlisted_code
from sitekit.editor.write import EditError, apply, remove_leftovers

__all__ = [
    "BRAND_MAX",
    "DEPLOY_HINT",
    "WAIT_SECONDS",
    "Change",
    "EditError",
    "Source",
    "add_domains",
    "add_site",
    "apply",
    "check_brand",
    "check_name",
    "default_brand",
    "editing",
    "move_site",
    "next_site_id",
    "palette",
    "read_source",
    "remove_domains",
    "remove_leftovers",
    "remove_site",
    "scaffold",
    "unlisted_code",
]
