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

import functools
import hashlib
import json
import os
from collections.abc import Iterator

import jinja2
import jinja2.meta
from ansible.errors import AnsibleActionFail, AnsibleError
from ansible.module_utils.common.text.converters import to_text
from ansible.module_utils.parsing.convert_bool import boolean
from ansible.plugins.action import ActionBase
from ansible.template import trust_as_template
from ansible.utils.display import Display
from ansible_collections.sitekit.deploy.plugins.plugin_utils.checkout import ensure_importable
from ansible_collections.sitekit.deploy.plugins.plugin_utils.model import (
    PREFLIGHT,
    from_model,
    read_list,
    registered,
)

ensure_importable()

from sitekit.siteids import cache_dir  # noqa: E402

display = Display()

# How the template module renders (its defaults), so that moving a file to this action
# leaves its bytes as they were.
_TEMPLATE_OVERRIDES = {"trim_blocks": True, "lstrip_blocks": False, "newline_sequence": "\n"}
_SPEC_KEYS = {"name", "template", "path_var", "owner_var", "group_var", "mode", "state", "secret",
              "sites", "sites_from", "where", "validate"}
_PRUNE_KEYS = {"path", "patterns", "keep"}
# Files from which the module is first sent their digests, and their content only where needed.
DIGESTS_FROM = 200
# Names never resolved ahead: Ansible's placeholder for an omitted argument and the templating
# helpers, which a template uses as they are.
_NOT_FIXED = {"omit", "lookup", "query", "q", "now", "undef", "range", "dict", "lipsum",
              "cycler", "joiner", "namespace", "hostvars", "vars"}


def _digest(entry):
    """The SHA-256 of a file's content, None for a directory or a secret (which always goes
    whole)."""
    if entry.get("state") != "file" or entry.get("secret") or entry.get("content") is None:
        return None
    return hashlib.sha256(entry["content"].encode()).hexdigest()


def _by_digest(entry, digest):
    """A file's entry with its content's SHA-256 instead of the content."""
    light = {k: v for k, v in entry.items() if k != "content"}
    light["digest"] = digest
    return light


def _record_path(task_vars, task_name):
    """Where the control machine keeps the digests of the files a host confirmed holding, for a
    task (by the inventory, the host's name and address and the task's name): in sitekit's cache
    directory
    (:func:`sitekit.siteids.cache_dir`); None when there is none."""
    base = cache_dir()
    if base is None:
        return None
    key = "\0".join(str(task_vars.get(k, ""))
                    for k in ("inventory_dir", "inventory_hostname", "ansible_host"))
    name = hashlib.sha256(f"{key}\0{task_name}".encode()).hexdigest()[:32]
    return os.path.join(base, "site-files", f"{name}.json")


def _read_record(path):
    """The record at *path* (path -> digest); None when there is none or it cannot be read."""
    if path is None:
        return None
    try:
        with open(path, encoding="utf-8") as f:
            record = json.load(f)
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def _write_record(path, record):
    """Replace the record at *path* (atomically); a record that cannot be written is only a
    lost shortcut: the next run sends whole what the record does not have."""
    if path is None:
        return
    try:
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(record, f, separators=(",", ":"))
        os.replace(tmp, path)
    except OSError as e:
        display.vvv(f"site_files: the record of confirmed digests was not written: {e}")


#: Shapes of sites past which Ansible renders every site.
MAX_SHAPES = 64


def _shape(site, few):
    """What tells a site's branches apart in a template: which fields it has, which are empty,
    and the values of the fields that take few values across the sites (``few``)."""
    if not isinstance(site, dict):
        return (type(site).__name__,)
    return tuple(sorted(
        (key, (value if key in few else (type(value).__name__, bool(value))))
        for key, value in site.items()))


def _samples(sites):
    """The indexes of the sites Ansible renders: the first, middle and last, and the first of
    each shape (:func:`_shape`); every index past MAX_SHAPES shapes."""
    count = len(sites)
    if not count:
        return []
    seen, many = {}, set()
    for site in sites if isinstance(sites[0], dict) else ():
        for key, value in site.items():
            if key in many:
                continue
            if isinstance(value, str | int | float | bool | type(None)):
                values = seen.setdefault(key, set())
                values.add(value)
                if len(values) > 8:
                    many.add(key)
    few = {key for key, values in seen.items() if key not in many}
    chosen, shapes = {0, count // 2, count - 1}, set()
    for index, site in enumerate(sites):
        shape = _shape(site, few)
        if shape not in shapes:
            shapes.add(shape)
            chosen.add(index)
            if len(shapes) > MAX_SHAPES:
                return list(range(count))
    return sorted(chosen)


def _packed(entries):
    """The module's arguments for ``entries``: them as one JSON text (Ansible's argument
    checks and transfer of 10,000 entries as a list took about 2 s a call), each secret file's
    content apart, in ``secret_contents``, which is never logged."""
    public, secrets = [], []
    for entry in entries:
        if entry.get("secret_content") is not None:
            entry = dict(entry)
            secrets.append(str(entry.pop("secret_content")))
            entry["secret_index"] = len(secrets) - 1
        public.append(entry)
    return {"files": json.dumps(public, separators=(",", ":")), "secret_contents": secrets}


class _AnyName(dict):
    """Every filter or test name is known (to the introspection only, which checks them)."""

    def __contains__(self, key):
        return True

    def __missing__(self, key):
        return _unknown

    def get(self, key, default=None):
        return self[key]


def _unknown(*args, **kwargs):
    return None


def _introspection():
    """A Jinja2 environment that only parses and finds names: Ansible's and this collection's
    filters and tests (``sitekit.deploy.pool_keeps``, ``is changed``) count as known."""
    env = jinja2.Environment()  # noqa: S701 - only parsed, never rendered
    env.filters = _AnyName(env.filters)
    env.tests = _AnyName(env.tests)
    return env


def _names_used(spec, loop_var, searchpath=()):
    """The variables a spec's template and expressions name, and the templates it extends or
    includes by a literal name (found in ``searchpath``), but the loop variable."""
    env = _introspection()
    texts = [spec["template"][1]] if spec["template"] else []
    texts += ["{{ " + spec[key] + " }}" for key in ("path_var", "owner_var", "group_var")
              if spec[key]]
    names, seen = set(), set()
    while texts:
        try:
            ast = env.parse(str(texts.pop()))
            names |= jinja2.meta.find_undeclared_variables(ast)
        except jinja2.TemplateError:
            continue  # Ansible's own templating says what is wrong with it
        for name in jinja2.meta.find_referenced_templates(ast):
            found = next((os.path.join(base, name) for base in searchpath if name
                          and os.path.isfile(os.path.join(base, name))), None)
            if found and found not in seen:
                seen.add(found)
                try:
                    with open(found, encoding="utf-8") as source:
                        texts.append(source.read())
                except (OSError, UnicodeDecodeError):
                    continue  # Ansible's own templating says what is wrong with it
    names.discard(loop_var)
    return names


def _plain_filters():
    """The filters a plain Jinja2 environment renders the per-site templates with: Jinja2's,
    Ansible's core ones and this collection's, by their short and full names."""
    from ansible.plugins.filter.core import FilterModule as Core
    from ansible_collections.sitekit.deploy.plugins.filter.sitekit import FilterModule as Own

    found = {}
    for prefix, module in (("ansible.builtin.", Core()), ("sitekit.deploy.", Own())):
        for name, function in module.filters().items():
            found[prefix + name] = function
            if prefix == "ansible.builtin.":
                found.setdefault(name, function)
    return found


def _listing(function):
    """``function`` returning a list where it returns an iterator (Jinja2's map, select,
    unique...), as Ansible makes every filter's and test's output: printed, a list reads as a
    list, not as a generator object."""

    @functools.wraps(function)  # keeps Jinja2's pass_context and the like (its __dict__)
    def wrapper(*args, **kwargs):
        value = function(*args, **kwargs)
        return list(value) if isinstance(value, Iterator) else value

    return wrapper


class _Unresolved:
    """The value of a variable that was not resolved once for every site (it depends on the
    site, or is Ansible's own): defined, as it is for Ansible, but any use of it fails, so the
    site is rendered by Ansible."""

    def _refuse(self, *args, **kwargs):
        raise _NotPlain("a variable resolved per site")

    __str__ = __repr__ = __iter__ = __len__ = __bool__ = __getattr__ = __getitem__ = _refuse
    __eq__ = __ne__ = __lt__ = __le__ = __gt__ = __ge__ = __contains__ = __call__ = _refuse
    __add__ = __radd__ = __mod__ = __mul__ = __hash__ = __int__ = __float__ = _refuse


class _NotPlain(Exception):
    pass


class _Plain:
    """One spec rendered by plain Jinja2, with the values Ansible resolved once for every site
    (and the site itself) as they are: Ansible's templating wraps each value a template reads
    (about 6 ms a server block, a minute for 10,000). Used only once it renders sample sites
    exactly as Ansible does; a site it cannot render (an undefined name, an error) is rendered
    by Ansible."""

    def __init__(self, spec, searchpath, fixed, loop_var, names=()):
        env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(searchpath), undefined=jinja2.StrictUndefined,
            trim_blocks=True, lstrip_blocks=False, newline_sequence="\n",
            keep_trailing_newline=False, autoescape=False,  # noqa: S701 - configuration files, not HTML
            finalize=lambda value: "" if value is None else value)
        env.filters.update(_plain_filters())
        env.filters = {name: _listing(f) for name, f in env.filters.items()}
        env.tests = {name: _listing(f) for name, f in env.tests.items()}
        # every other variable Ansible would see (names) is defined and refuses any use
        unresolved = _Unresolved()
        env.globals.update({name: unresolved for name in names if name not in fixed})
        self.fixed, self.loop_var, self.spec = fixed, loop_var, spec
        self.template = env.from_string(str(spec["template"][1])) if spec["template"] else None
        self.exprs = {key: env.from_string("{{ " + spec[key] + " }}")
                      for key in ("path_var", "owner_var", "group_var") if spec[key]}
        source = str(spec["template"][1]) if spec["template"] else ""
        self.trailing = len(source) - len(source.rstrip("\n"))

    def render(self, site):
        context = {**self.fixed, self.loop_var: site}

        def var(key):
            if key not in self.exprs:
                return None
            value = self.exprs[key].render(context)
            return value if value not in ("", "None") else None

        entry = {
            "key": self.spec["name"],
            "site": str(site.get("name", "")) if isinstance(site, dict) else str(site),
            "path": var("path_var"),
            "owner": var("owner_var"),
            "group": var("group_var"),
            "mode": self.spec["mode"],
            "state": self.spec["state"],
            "secret": self.spec["secret"],
            "validate": self.spec["validate"],
        }
        if not entry["path"]:
            raise ValueError("no path")
        if self.template is not None:
            text = self.template.render(context)
            text += "\n" * max(0, self.trailing - (len(text) - len(text.rstrip("\n"))))
            entry["secret_content" if self.spec["secret"] else "content"] = text
        return entry


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
    if name in seen or name == PREFLIGHT:
        # the preflight's registered result is data (tens of MB at 10,000 sites): it names
        # no variable
        return False
    seen.add(name)
    env = _introspection()
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
            "sites_from": raw.get("sites_from"),
            "where": raw.get("where"),
            "validate": None if raw.get("validate") is None else str(raw["validate"]),
        }
        if spec["sites"] is not None and not isinstance(spec["sites"], list):
            raise AnsibleActionFail(f"files[{index}]: sites must be a list")
        if spec["sites"] is not None and spec["sites_from"] is not None:
            raise AnsibleActionFail(f"files[{index}]: give sites or sites_from, not both")
        if spec["where"] is not None and not isinstance(spec["where"], dict):
            raise AnsibleActionFail(f"files[{index}]: where must be a dict (field: value)")
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

    def _invariant(self, task_vars, specs, loop_var, model):
        """The value of each variable the specs name, when it is the same for every site: one
        whose raw value names the loop variable (itself or through the variables it names) is
        left out, and so is one that cannot be resolved without it. The model's variables are
        read in place."""
        names = set()
        for spec in specs:
            source = spec["template"][0] if spec["template"] else None
            names |= _names_used(spec, loop_var, self._searchpath(task_vars, source))
        names = {n for n in names if n in task_vars and n not in _NOT_FIXED}
        if not names:
            return {}
        base = {k: v for k, v in task_vars.items() if k != loop_var}
        templar = self._templar.copy_with_new_env(available_variables=base)
        fixed = {}
        for name in sorted(names):
            if from_model(name, task_vars, model):
                fixed[name] = model[name]
                continue
            if _depends_on(name, task_vars, loop_var):
                continue
            try:
                fixed[name] = templar.template(trust_as_template("{{ " + name + " }}"))
            except Exception:  # noqa: S112 - templated per site, where its error is reported
                continue
        return fixed

    def _plain(self, spec, task_vars, fixed, loop_var, sites, rendered):
        """A plain renderer of ``spec`` when it renders the sites Ansible has rendered
        (``rendered``: index -> entry) exactly as Ansible did; else None."""
        source = spec["template"][0] if spec["template"] else None
        try:
            searchpath = self._searchpath(task_vars, source)
            # the names the spec reads that Ansible would find: defined, unusable unless fixed
            names = {n for n in _names_used(spec, loop_var, searchpath) | _NOT_FIXED
                     if n in task_vars}
            plain = _Plain(spec, searchpath, fixed, loop_var, names=names)
            differ = [sites[i].get("name", i) if isinstance(sites[i], dict) else i
                      for i, entry in rendered.items() if plain.render(sites[i]) != entry]
            if not differ:
                return plain
            why = f"it renders {differ[0]} otherwise"
        except Exception as e:  # then Ansible renders every site, as before
            why = f"{type(e).__name__}: {e}"
        display.vvv(f"site_files: {spec['name']}: Ansible renders every site ({why})")
        return None

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        args = self._task.args
        model = registered(task_vars)
        if args.get("sites") is not None and args.get("sites_from"):
            raise AnsibleActionFail("give sites or sites_from, not both")
        sites = args.get("sites") or []
        if args.get("sites_from"):
            # a list of the model, read in place (templated as an argument, 10,000 sites took 18 s)
            sites = read_list(args["sites_from"], task_vars)
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

        # each spec's sites: the task's, or its own, those whose fields match its where
        chosen_sites = []
        for index, spec in enumerate(specs):
            chosen = sites if spec["sites"] is None else spec["sites"]
            if spec["sites_from"] is not None:
                # a list of the model, read in place (e.g. every site's upload directory; the
                # empty name: none)
                chosen = read_list(spec["sites_from"], task_vars, f"files[{index}].sites_from")
            if spec["where"]:
                # e.g. the pools among the masters: chosen here, where the list is read in place
                chosen = [s for s in chosen if isinstance(s, dict) and all(
                    s.get(field) == value for field, value in spec["where"].items())]
            chosen_sites.append(chosen)

        # The variables the specs of several sites name that do not depend on the site,
        # resolved once here: Ansible templates a variable again wherever it is named, in every
        # site's file (for a thousand sites, most of the time). One that cannot be resolved
        # without the loop variable (or fails) is left to be templated per site, as before. A
        # spec of one file resolves its names as it renders (resolving a large list whole here,
        # when that file only tests it or hands it to a filter, cost more than the rendering).
        several = [s for s, chosen in zip(specs, chosen_sites, strict=True) if len(chosen) > 1]
        fixed = self._invariant(task_vars, several, loop_var, model)

        def by_ansible(spec, templar, site):
            site_vars = dict(task_vars)
            site_vars.update(fixed)
            site_vars[loop_var] = site
            templar.available_variables = site_vars
            return self._render(spec, templar, site)

        # spec by spec, in the order given (a directory before the files in it)
        files = []
        by_jinja2 = 0
        for spec, templar, spec_sites in zip(specs, templars, chosen_sites, strict=True):
            # Ansible renders the first, middle and last site; the others are rendered by
            # plain Jinja2 when it gives those three exactly what Ansible did
            count = len(spec_sites)
            samples = _samples(spec_sites)
            rendered = {i: by_ansible(spec, templar, spec_sites[i]) for i in samples}
            plain = (self._plain(spec, task_vars, fixed, loop_var, spec_sites, rendered)
                     if count > len(rendered) else None)
            for index, site in enumerate(spec_sites):
                entry = rendered.get(index)
                if entry is None and plain is not None:
                    try:
                        entry = plain.render(site)
                        by_jinja2 += 1
                    except Exception:  # Ansible renders it, and says what is wrong
                        entry = None
                files.append(entry or by_ansible(spec, templar, site))

        def apply(entries):
            return self._execute_module(
                module_name="sitekit.deploy.site_files_apply",
                module_args={**_packed(entries), "prune": prune, "find": self._find(args),
                             "install": self._install(args)},
                task_vars=task_vars,
            )

        # Many files go by their digest: each one the host confirmed holding at the last
        # deploy (the record kept on the control machine) and that still renders the same. The
        # others (changed, or not in the record) go whole, in the same call, so that changing a
        # few of 10,000 server blocks is one module call; without any record, all by digest.
        # When the host does not hold one sent by digest (edited or removed by hand, or never
        # sent), it says which, and they are sent whole in a second call (a no-op deploy of
        # 10,000 server blocks sent 30 MB without digests).
        # Diff mode sends every content, which the diffs show; check mode without it every
        # digest (the host says which files differ, which is all there is to say).
        digests = [_digest(entry) for entry in files]
        record_path = _record_path(task_vars, self._task.get_name())
        light = files
        if len(files) > DIGESTS_FROM and not self._task.diff:
            # without a record (another control machine, a cache lost) every file by digest
            confirmed = None if self._task.check_mode else _read_record(record_path)
            light = [_by_digest(entry, digest) if digest is not None and (
                confirmed is None or confirmed.get(entry["path"]) == digest) else entry
                     for entry, digest in zip(files, digests, strict=True)]
        calls = 1
        module_result = apply(light)
        if module_result.get("needs") and not module_result.get("failed"):
            wanted = set(module_result["needs"])
            light = [files[i] if i in wanted else entry for i, entry in enumerate(light)]
            calls += 1
            module_result = apply(light)
        if module_result.get("needs") and not module_result.get("failed"):
            light = files  # a file changed on the host in between
            calls += 1
            module_result = apply(light)
        if len(files) > DIGESTS_FROM and not module_result.get("failed") and not (
                self._task.check_mode):
            # what the host now holds, for the next deploy
            _write_record(record_path, {entry["path"]: digest for entry, digest in zip(
                files, digests, strict=True) if digest is not None})
        module_result.pop("invocation", None)
        result.update(module_result)
        # how many files Ansible rendered and how many plain Jinja2 did
        result["rendered"] = {"ansible": len(files) - by_jinja2, "jinja2": by_jinja2}
        # how many files' contents the host was sent (the others went by their digest)
        result["contents_sent"] = sum(1 for e in light
                                      if "digest" not in e and e["state"] == "file")
        # how many module calls it took (2 or 3 only when the host lacked a file sent by digest)
        result["module_calls"] = calls
        self._remove_tmp_path(self._connection._shell.tmpdir)
        return result
