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

import jinja2
import jinja2.meta
from ansible.errors import AnsibleActionFail, AnsibleError
from ansible.module_utils.common.text.converters import to_text
from ansible.module_utils.parsing.convert_bool import boolean
from ansible.plugins.action import ActionBase
from ansible.template import trust_as_template

# How the template module renders (its defaults), so that moving a file to this action
# leaves its bytes as they were.
_TEMPLATE_OVERRIDES = {"trim_blocks": True, "lstrip_blocks": False, "newline_sequence": "\n"}
_SPEC_KEYS = {"name", "template", "path_var", "owner_var", "group_var", "mode", "state", "secret",
              "sites", "validate"}
_PRUNE_KEYS = {"path", "patterns", "keep"}
# Names never resolved ahead: Ansible's placeholder for an omitted argument and the templating
# helpers, which a template uses as they are.
_NOT_FIXED = {"omit", "lookup", "query", "q", "now", "undef", "range", "dict", "lipsum",
              "cycler", "joiner", "namespace", "hostvars", "vars"}


def _names_used(spec, loop_var):
    """The variables a spec's template and expressions name directly (not through an include),
    but the loop variable."""
    env = jinja2.Environment()  # noqa: S701 - only parsed, never rendered
    texts = [spec["template"][1]] if spec["template"] else []
    texts += ["{{ " + spec[key] + " }}" for key in ("path_var", "owner_var", "group_var")
              if spec[key]]
    names = set()
    for text in texts:
        try:
            names |= jinja2.meta.find_undeclared_variables(env.parse(str(text)))
        except jinja2.TemplateError:
            continue  # Ansible's own templating says what is wrong with it
    names.discard(loop_var)
    return names


def _templates_in(value, depth=0):
    """The template strings in a variable's raw value (its lists and mappings included)."""
    if isinstance(value, str):
        if "{{" in value or "{%" in value:
            yield value
    elif depth < 20 and isinstance(value, dict):
        for item in value.values():
            yield from _templates_in(item, depth + 1)
    elif depth < 20 and isinstance(value, list | tuple):
        for item in value:
            yield from _templates_in(item, depth + 1)


def _depends_on(name, raw_vars, loop_var, seen=None):
    """Whether variable ``name`` names the loop variable, itself or through the variables its
    raw value names."""
    seen = set() if seen is None else seen
    if name in seen:
        return False
    seen.add(name)
    env = jinja2.Environment()  # noqa: S701 - only parsed, never rendered
    for text in _templates_in(raw_vars.get(name)):
        try:
            used = jinja2.meta.find_undeclared_variables(env.parse(text))
        except jinja2.TemplateError:
            return True  # not understood here: left to Ansible, per site
        if loop_var in used or any(_depends_on(n, raw_vars, loop_var, seen) for n in used):
            return True
    return False


def _compile_once(templar):
    """Keep what ``templar`` compiles (a template or an expression, by its text and options)
    for its later calls: Ansible compiles again on every call. Without the engine's hook (another
    ansible-core than the pinned one) it is left as it is: slower, the same output."""
    engine = getattr(templar, "_engine", None)
    compile_template = getattr(engine, "_compile_template", None)
    if compile_template is None:
        return
    compiled = {}

    def cached(template, options):
        key = (str(template), repr(options))
        if key not in compiled:
            compiled[key] = compile_template(template, options)
        return compiled[key]

    engine._compile_template = cached


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
            "sites": raw.get("sites"),
            "validate": None if raw.get("validate") is None else str(raw["validate"]),
        }
        if spec["sites"] is not None and not isinstance(spec["sites"], list):
            raise AnsibleActionFail(f"files[{index}]: sites must be a list")
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

    @staticmethod
    def _prune(raw, index):
        if not isinstance(raw, dict) or not raw.get("path") or set(raw) - _PRUNE_KEYS:
            raise AnsibleActionFail(
                f"prune[{index}] must be a mapping of path, patterns and keep (path required)"
            )
        return {
            "path": str(raw["path"]),
            "patterns": [str(p) for p in raw.get("patterns") or ["*"]],
            "keep": [str(p) for p in raw.get("keep") or []],
        }

    @staticmethod
    def _find(args):
        raw = args.get("find") or []
        if not isinstance(raw, list) or any(
            not isinstance(e, dict) or set(e) != {"paths", "patterns"} for e in raw
        ):
            raise AnsibleActionFail("find must be a list of mappings of paths and patterns")
        return raw

    @staticmethod
    def _install(args):
        raw = args.get("install")
        if raw is None:
            return None
        if (not isinstance(raw, dict) or not raw.get("test")
                or set(raw) - {"files", "dirs", "test", "reload"}):
            raise AnsibleActionFail(
                "install must be a mapping of files, dirs, test and reload (test required)"
            )
        return raw

    def _searchpath(self, task_vars, source):
        paths = [*task_vars.get("ansible_search_path", []), self._loader._basedir]
        if source:
            paths.append(os.path.dirname(source))
        return [p for base in paths for p in (os.path.join(base, "templates"), base)]

    @staticmethod
    def _render(spec, templar, site):
        def var(name):
            if not name:
                return None
            value = templar.template(trust_as_template("{{ " + name + " }}"))
            return str(value) if value not in (None, "") else None

        entry = {
            "key": spec["name"],
            "site": str(site.get("name", "")) if isinstance(site, dict) else str(site),
            "path": var(spec["path_var"]),
            "owner": var(spec["owner_var"]),
            "group": var(spec["group_var"]),
            "mode": spec["mode"],
            "state": spec["state"],
            "secret": spec["secret"],
            "validate": spec["validate"],
        }
        if not entry["path"]:
            raise AnsibleActionFail(
                f"{spec['name']}: {spec['path_var']} is empty for {entry['site']}"
            )
        if spec["template"]:
            rendered = templar.template(
                spec["template"][1], escape_backslashes=False, overrides=_TEMPLATE_OVERRIDES
            )
            text = "" if rendered is None else str(rendered)
            entry["secret_content" if spec["secret"] else "content"] = text
        return entry

    def _invariant(self, task_vars, specs, loop_var):
        """The value of each variable the specs name, when it is the same for every site: one
        whose raw value names the loop variable (itself or through the variables it names) is
        left out, and so is one that cannot be resolved without it."""
        names = set().union(*(_names_used(spec, loop_var) for spec in specs)) if specs else set()
        names = {n for n in names if n in task_vars and n not in _NOT_FIXED}
        if not names:
            return {}
        base = {k: v for k, v in task_vars.items() if k != loop_var}
        templar = self._templar.copy_with_new_env(available_variables=base)
        fixed = {}
        for name in sorted(names):
            if _depends_on(name, task_vars, loop_var):
                continue
            try:
                fixed[name] = templar.template(trust_as_template("{{ " + name + " }}"))
            except Exception:  # noqa: S112 - templated per site, where its error is reported
                continue
        return fixed

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        args = self._task.args
        sites = args.get("sites") or []
        loop_var = str(args.get("loop_var", "site"))
        specs = [self._spec(raw, i) for i, raw in enumerate(args.get("files") or [])]
        prune = [self._prune(raw, i) for i, raw in enumerate(args.get("prune") or [])]

        # One templar per spec, its compilations kept for every site: compiling the template
        # and each path expression again per site was 85% of the time (124 s for 1,000 server
        # blocks). Each site is still rendered with itself bound to loop_var in the variables,
        # exactly as a looped template task sees it.
        templars = []
        for spec in specs:
            source = spec["template"][0] if spec["template"] else None
            templar = self._templar.copy_with_new_env(
                searchpath=self._searchpath(task_vars, source), available_variables=task_vars
            )
            _compile_once(templar)
            templars.append(templar)

        # The variables the specs name that do not depend on the site, resolved once here:
        # Ansible templates a variable again wherever it is named, in every site's file (for
        # a thousand sites, most of the time). One that cannot be resolved without the loop
        # variable (or fails) is left to be templated per site, as before.
        fixed = self._invariant(task_vars, specs, loop_var)

        # spec by spec, in the order given (a directory before the files in it)
        files = []
        for spec, templar in zip(specs, templars, strict=True):
            for site in sites if spec["sites"] is None else spec["sites"]:
                site_vars = dict(task_vars)
                site_vars.update(fixed)
                site_vars[loop_var] = site
                templar.available_variables = site_vars
                files.append(self._render(spec, templar, site))

        module_result = self._execute_module(
            module_name="sitekit.deploy.site_files_apply",
            module_args={"files": files, "prune": prune, "find": self._find(args),
                         "install": self._install(args)},
            task_vars=task_vars,
        )
        module_result.pop("invocation", None)
        result.update(module_result)
        self._remove_tmp_path(self._connection._shell.tmpdir)
        return result
