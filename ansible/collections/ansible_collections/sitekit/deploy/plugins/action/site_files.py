"""Render every site's files on the control machine and apply them all with one module call.

A ``template`` task in a loop costs one module round trip per site and file; with hundreds of
sites that dominates a deploy that changes nothing. This action renders each file spec once
per site here, with the site bound to ``loop_var`` exactly as a looped ``template`` task would
see it, and hands the whole set to the ``sitekit.deploy.site_files_apply`` module, which writes only
what differs.

Kept instead of ``ansible.builtin.template`` in a loop for a measured reason: the nginx role's
looped template took about a second per site (16 minutes for 1,000 server blocks; a no-op deploy
4 to 9 minutes for 50 sites against about 1 for 1, bench/README.md), while this one call per host
costs about the same for 1 site or 1,000.
"""

from __future__ import annotations

import os

from ansible.errors import AnsibleActionFail, AnsibleError
from ansible.module_utils.common.text.converters import to_text
from ansible.module_utils.parsing.convert_bool import boolean
from ansible.plugins.action import ActionBase
from ansible.template import trust_as_template

# How the template module renders (its defaults), so that moving a file to this action
# leaves its bytes as they were.
_TEMPLATE_OVERRIDES = {"trim_blocks": True, "lstrip_blocks": False, "newline_sequence": "\n"}
_SPEC_KEYS = {"name", "template", "path_var", "owner_var", "group_var", "mode", "state", "secret"}
# What every site's rendering is joined with (a character no configuration file holds), and
# the name the sites are bound to while they are rendered together.
_SEP = "\x1e"
_SITES = "__sitekit_sites"


def _trailing_newlines(text):
    return len(text) - len(text.rstrip("\n"))


def _expression(name):
    """A template printing expression ``name``, or nothing when it is none."""
    return "{% set __value = (" + name + ") %}{{ '' if __value is none else __value }}"


class ActionModule(ActionBase):
    TRANSFERS_FILES = False

    def _spec(self, raw, index):
        if not isinstance(raw, dict):
            raise AnsibleActionFail(f"files[{index}] must be a mapping")
        unknown = set(raw) - _SPEC_KEYS
        if unknown:
            raise AnsibleActionFail(f"files[{index}]: unknown keys {sorted(unknown)}")
        spec = {
            "name": str(raw.get("name") or f"files[{index}]"),
            "state": str(raw.get("state", "file")),
            "path_var": raw.get("path_var"),
            "owner_var": raw.get("owner_var"),
            "group_var": raw.get("group_var") or raw.get("owner_var"),
            "mode": None if raw.get("mode") is None else str(raw["mode"]),
            "secret": boolean(raw.get("secret", False), strict=False),
            "template": None,
        }
        if spec["state"] not in ("file", "directory"):
            raise AnsibleActionFail(f"files[{index}]: state must be file or directory")
        if not spec["path_var"]:
            raise AnsibleActionFail(f"files[{index}]: path_var is required")
        if spec["state"] == "file":
            if not raw.get("template"):
                raise AnsibleActionFail(f"files[{index}]: template is required for a file")
            try:
                source = self._find_needle("templates", str(raw["template"]))
            except AnsibleError as e:
                raise AnsibleActionFail(to_text(e)) from e
            text = self._loader.get_text_file_contents(source)
            spec["template"] = (source, trust_as_template(text))
        return spec

    def _searchpath(self, task_vars, source):
        # the template's own directory first: it is included by its name (_each)
        paths = [*task_vars.get("ansible_search_path", []), self._loader._basedir]
        found = [p for base in paths for p in (os.path.join(base, "templates"), base)]
        return [os.path.dirname(source), *found] if source else found

    @staticmethod
    def _each(templar, loop_var, sites, body, overrides=None):
        """``body`` rendered once per site (bound to ``loop_var``), in one template call."""
        wrapper = ("{% for " + loop_var + " in " + _SITES + " %}" + body + _SEP
                   + "{% endfor %}")
        options = {"overrides": overrides} if overrides else {}
        rendered = templar.template(trust_as_template(wrapper), escape_backslashes=False,
                                    **options)
        texts = str(rendered or "").split(_SEP)[:-1]
        if len(texts) != len(sites):
            raise AnsibleActionFail(f"a rendered file holds the separator {_SEP!r}")
        return texts

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        args = self._task.args
        sites = args.get("sites") or []
        loop_var = str(args.get("loop_var", "site"))
        specs = [self._spec(raw, i) for i, raw in enumerate(args.get("files") or [])]

        files = [
            {
                "key": spec["name"],
                "site": str(site.get("name", "")) if isinstance(site, dict) else str(site),
                "mode": spec["mode"],
                "state": spec["state"],
                "secret": spec["secret"],
            }
            for site in sites
            for spec in specs
        ]
        # Each template and expression is compiled once and rendered for every site in one
        # call (compiling per site was 85% of the time: 124 s for 1,000 server blocks).
        for index, spec in enumerate(specs):
            source = spec["template"][0] if spec["template"] else None
            templar = self._templar.copy_with_new_env(
                searchpath=self._searchpath(task_vars, source),
                available_variables={**task_vars, _SITES: sites},
            )
            entries = files[index :: len(specs)]
            for key, name in (("path", spec["path_var"]), ("owner", spec["owner_var"]),
                              ("group", spec["group_var"])):
                values = self._each(templar, loop_var, sites, _expression(name)) if name else None
                for n, entry in enumerate(entries):
                    entry[key] = values[n] or None if values else None
            for entry in entries:
                if not entry["path"]:
                    raise AnsibleActionFail(
                        f"{spec['name']}: {spec['path_var']} is empty for {entry['site']}"
                    )
            if spec["template"]:
                include = "{% include " + repr(os.path.basename(source)) + " %}"
                texts = self._each(templar, loop_var, sites, include, _TEMPLATE_OVERRIDES)
                # as the template module ends a file: with the newlines its source ends with
                ending = "\n" * _trailing_newlines(str(spec["template"][1]))
                for entry, text in zip(entries, texts, strict=True):
                    missing = len(ending) - _trailing_newlines(text)
                    text += ending[:missing] if missing > 0 else ""
                    entry["secret_content" if spec["secret"] else "content"] = text

        module_result = self._execute_module(
            module_name="sitekit.deploy.site_files_apply",
            module_args={"files": files},
            task_vars=task_vars,
        )
        module_result.pop("invocation", None)
        result.update(module_result)
        self._remove_tmp_path(self._connection._shell.tmpdir)
        return result
