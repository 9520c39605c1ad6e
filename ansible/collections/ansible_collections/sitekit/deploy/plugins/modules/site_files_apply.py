#!/usr/bin/python
# Applies what the sitekit.deploy.site_files action rendered; not meant to be used directly.

from __future__ import annotations

import fnmatch
import functools
import grp
import hashlib
import json
import os
import pwd
import re
import stat

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.sitekit.deploy.plugins.module_utils import staged
from ansible_collections.sitekit.deploy.plugins.module_utils.atomic import write_atomic

DOCUMENTATION = r"""
---
module: site_files_apply
short_description: Apply files rendered by M(sitekit.deploy.site_files) (internal)
description:
  - Writes each given file whose content, mode or owner differ, atomically (by rename), and
    makes each given directory; reports what changed per spec and site. Check and diff modes.
version_added: "0.2.0"
options:
  files:
    description: >-
      The rendered entries as one JSON text: a list of mappings of key, site, path, state
      (file or directory), owner, group, mode, secret, validate, and content, or for a secret
      file secret_index (its content's index in O(secret_contents)). A file's entry may give
      only the SHA-256 of its content (digest): when the file on the host has that content it
      is left alone (or only its mode and owner set); when any such file differs, nothing is
      applied and the call returns their indexes (needs), for the action to send their
      content. One text rather than a list of options: Ansible's argument checks and transfer
      took about 2 s per call for 10,000 entries.
    type: str
    required: true
  secret_contents:
    description: The contents of the secret files, which are never logged.
    type: list
    elements: str
    default: []
  prune:
    description: >-
      Directories to clear of what this call did not write: each regular file directly in
      path whose name matches one of patterns (shell patterns), matches none of keep and is
      not among O(files), is removed.
    type: list
    elements: dict
    default: []
  find:
    description: >-
      After writing, list what lies directly in each of C(paths) (files, directories, links)
      whose name matches one of C(patterns) (regular expressions, matched at the start of the
      name, as M(ansible.builtin.find) with C(use_regex) matches them), for the role to decide
      what is left over; nothing is removed.
    type: list
    elements: dict
    default: []
  install:
    description: >-
      After writing and pruning, install what was written to a staging copy once it passes a
      test (files, dirs, test: module_utils/staged.py), then run reload (when
      given and anything was installed); skipped in check mode.
      Writes to the staging copy alone then do not count as a change.
    type: dict
author:
  - sitekit
"""

# What it returns is documented with sitekit.deploy.site_files, but for needs: the indexes of
# the files given by digest alone that the host does not have (nothing applied), for the
# action to send their contents.


_MAX_DIFF = 104448
# An entry's fields (files) and the values of those it may leave out.
_ENTRY = {"key": None, "site": None, "path": None, "state": "file", "content": None,
          "secret_index": None, "digest": None, "owner": None, "group": None, "mode": None,
          "secret": False, "validate": None}
_TEXT = ("key", "site", "path")
_OPTIONAL_TEXT = ("content", "digest", "owner", "group", "mode", "validate")


def _entries(module):
    """The entries of ``files`` (one JSON text), each with every field, a secret file's
    content (secret_content) taken from ``secret_contents``."""
    try:
        given = json.loads(module.params["files"])
    except ValueError as e:
        module.fail_json(msg=f"files is not a JSON list: {e}")
    if not isinstance(given, list):
        module.fail_json(msg="files is not a JSON list")
    secrets = module.params["secret_contents"]
    entries = []
    for index, raw in enumerate(given):
        if not isinstance(raw, dict) or set(raw) - set(_ENTRY):
            module.fail_json(msg=f"files[{index}]: a mapping of {', '.join(_ENTRY)}")
        entry = {**_ENTRY, **raw}
        wrong = [k for k in _TEXT if not isinstance(entry[k], str)]
        wrong += [k for k in _OPTIONAL_TEXT
                  if entry[k] is not None and not isinstance(entry[k], str)]
        if entry["state"] not in ("file", "directory"):
            wrong.append("state")
        if not isinstance(entry["secret"], bool):
            wrong.append("secret")
        at = entry.pop("secret_index")
        if at is not None and not (isinstance(at, int) and 0 <= at < len(secrets)):
            wrong.append("secret_index")
        if wrong:
            module.fail_json(msg=f"files[{index}]: wrong {', '.join(wrong)}")
        entry["secret_content"] = None if at is None else secrets[at]
        entries.append(entry)
    return entries


@functools.cache
def _ids_of(owner, group):
    """(uid, gid) of the names (-1 for None), looked up once per call of the module."""
    uid = -1 if owner is None else pwd.getpwnam(owner).pw_uid
    gid = -1 if group is None else grp.getgrnam(group).gr_gid
    return uid, gid


def _ids(module, owner, group):
    try:
        return _ids_of(owner, group)
    except KeyError as e:
        module.fail_json(msg=f"no such user or group: {e}")


def _attrs_differ(st, mode, uid, gid):
    return (
        (mode is not None and stat.S_IMODE(st.st_mode) != mode)
        or (uid != -1 and st.st_uid != uid)
        or (gid != -1 and st.st_gid != gid)
    )


def _apply_dir(module, entry, mode, uid, gid):
    path = entry["path"]
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        st = None
    if st is not None and not stat.S_ISDIR(st.st_mode):
        module.fail_json(msg=f"{path} exists and is not a directory")
    if st is not None and not _attrs_differ(st, mode, uid, gid):
        return None
    before = {"path": path, "state": "absent" if st is None else "directory"}
    if not module.check_mode:
        if st is None:
            # missing parents are made too, as the file module makes them
            os.makedirs(path, 0o700)
        os.chown(path, uid, gid)
        if mode is not None:
            os.chmod(path, mode)
    after_mode = f"{mode:04o}" if mode is not None else "unchanged"
    return {
        "before_header": path,
        "after_header": path,
        "before": f"{before['state']}\n",
        "after": f"directory, mode {after_mode}\n",
    }


class _Invalid(Exception):
    pass


def _validator(module, command):
    """What checks a new file before it replaces the old one: *command*, its %s the file."""
    if not command:
        return None

    def check(tmp):
        rc, out, err = module.run_command(command % tmp)
        if rc != 0:
            raise _Invalid(f"{command % tmp} refused it: {(err or out).strip()}")

    return check


def _only_digest(entry):
    return (entry["state"] == "file" and entry["digest"] is not None
            and entry["content"] is None and entry["secret_content"] is None)


def _read(path):
    try:
        with open(path, "rb") as f:
            return f.read(), os.fstat(f.fileno())
    except FileNotFoundError:
        return None, None


def _same_file(a, b):
    """Whether two stats are of one file left as it was (inode, size, modification and change
    times)."""
    return (a.st_ino, a.st_dev, a.st_size, a.st_mtime_ns, a.st_ctime_ns) == (
        b.st_ino, b.st_dev, b.st_size, b.st_mtime_ns, b.st_ctime_ns)


def _needs(module, files):
    """Indexes of the entries given by digest alone whose file does not have that content
    (missing, or other bytes), and the stat of each file found with its digest (by index); in
    check mode without diff none is needed: that it differs is all there is to say."""
    if module.check_mode and not module._diff:
        return [], {}
    needs, holding = [], {}
    for index, entry in enumerate(files):
        if _only_digest(entry):
            try:
                with open(entry["path"], "rb") as f:
                    before = os.fstat(f.fileno())
                    old = f.read()
                    after = os.fstat(f.fileno())
            except FileNotFoundError:
                old = None
            if old is None or hashlib.sha256(old).hexdigest() != entry["digest"]:
                needs.append(index)
            elif _same_file(before, after):  # not written to while it was read
                holding[index] = before
    return needs, holding


def _apply_file(module, entry, mode, uid, gid, held=None):
    """Write the entry's file where its content, mode or owner differ. ``held``: the stat of
    the file when _needs found it holding the entry's digest; still the same file, it is not
    read again (at 10,000 server blocks, 0.3 s)."""
    path = entry["path"]
    if held is not None and _only_digest(entry):
        try:
            st = os.stat(path)
        except FileNotFoundError:
            st = None
        if st is not None and _same_file(st, held) and not _attrs_differ(st, mode, uid, gid):
            return None
    old, st = _read(path)
    if _only_digest(entry):
        if old is None or hashlib.sha256(old).hexdigest() != entry["digest"]:
            if not module.check_mode:  # it changed on the host since _needs read it
                raise _Invalid("changed on the host during the deploy; nothing of it was "
                               "written: run the deploy again")
            # check mode without diff: that it differs is all there is to say
            return {"before_header": path, "after_header": path,
                    "prepared": f"{path}: {'created' if old is None else 'changed'}\n"}
        new = old
    else:
        new = (entry["secret_content"] if entry["secret"] else entry["content"] or "").encode()
    if old == new and not _attrs_differ(st, mode, uid, gid):
        return None
    if not module.check_mode:
        target_mode = mode if mode is not None else (stat.S_IMODE(st.st_mode) if st else 0o644)
        write_atomic(path, new, target_mode, uid, gid, _validator(module, entry["validate"]))
    if entry["secret"]:
        what = "created" if old is None else ("changed" if old != new else "mode or owner changed")
        return {
            "before_header": path,
            "after_header": path,
            "prepared": f"{path}: {what} (secret: contents not shown)\n",
        }
    if len(new) > _MAX_DIFF or (old is not None and len(old) > _MAX_DIFF):
        return {"before_header": path, "after_header": path, "dst_larger": _MAX_DIFF}
    return {
        "before_header": path,
        "after_header": path,
        "before": "" if old is None else old.decode(errors="replace"),
        "after": new.decode(errors="replace"),
    }


def _prune(module, prune, written):
    """Remove what each prune entry names and this call did not write; return their paths."""
    removed = []
    for entry in prune:
        try:
            names = sorted(
                e.name for e in os.scandir(entry["path"]) if e.is_file(follow_symlinks=False)
            )
        except FileNotFoundError:
            continue
        for name in names:
            path = os.path.join(entry["path"], name)
            if (
                path in written
                or not any(fnmatch.fnmatchcase(name, p) for p in entry["patterns"])
                or any(fnmatch.fnmatchcase(name, p) for p in entry["keep"])
            ):
                continue
            if not module.check_mode:
                try:
                    os.unlink(path)
                except FileNotFoundError:
                    continue
                except OSError as e:
                    module.fail_json(msg=f"{path}: {e}")
            removed.append(path)
    return removed


def _find(specs):
    """What lies directly in each spec's paths with a name matching one of its patterns."""
    found = []
    for spec in specs:
        patterns = [re.compile(p) for p in spec["patterns"]]
        for path in spec["paths"]:
            try:
                entries = sorted(os.scandir(path), key=lambda e: e.name)
            except (FileNotFoundError, NotADirectoryError):
                continue
            found += [
                {"path": e.path, "isdir": e.is_dir(follow_symlinks=False)}
                for e in entries
                if any(p.match(e.name) for p in patterns)
            ]
    return found


def _install(module, spec, written):
    """Install the staged copy once it passes its test; what the result says of it."""
    staged_files = {f["src"] for f in spec["files"]}
    staged_dirs = {d["src"] for d in spec["dirs"]}
    live = [p for p in written if p not in staged_files and os.path.dirname(p) not in staged_dirs]
    done = {"installed": [], "uninstalled": []}
    if module.check_mode:
        return done
    try:
        files, remove = staged.plan(spec["files"], spec["dirs"])
        output = staged.install(spec["test"], files, remove) if files or remove else None
    except staged.StagedError as e:
        failed = {"installed": [], "uninstalled": []}
        if e.output is not None:
            failed["test_output"] = e.output
        module.fail_json(msg=str(e), **failed)
    done = {"installed": [dest for dest, *_ in files], "uninstalled": remove,
            "reloaded": False}
    if output is not None:
        done["test_output"] = output
        if spec["reload"]:
            rc, out, err = module.run_command(spec["reload"])
            if rc != 0:
                module.fail_json(
                    msg=f"installed, but {' '.join(spec['reload'])} failed (exit {rc}): "
                    f"{(err or out).strip()}",
                    **{k: done[k] for k in ("installed", "uninstalled", "test_output")},
                )
            done["reloaded"] = True
    # the staging copy is the module's own: only what went live (or any other file) is a change
    done["changed"] = bool(live or files or remove)
    return done


def main():
    module = AnsibleModule(
        argument_spec={
            "files": {"type": "str", "required": True},
            "secret_contents": {"type": "list", "elements": "str", "default": [],
                                "no_log": True},
            "find": {
                "type": "list",
                "elements": "dict",
                "default": [],
                "options": {
                    "paths": {"type": "list", "elements": "path", "required": True},
                    "patterns": {"type": "list", "elements": "str", "required": True},
                },
            },
            "install": {
                "type": "dict",
                "options": {**staged.STAGED_OPTIONS, "reload": {"type": "list", "elements": "str"}},
            },
            "prune": {
                "type": "list",
                "elements": "dict",
                "default": [],
                "options": {
                    "path": {"type": "str", "required": True},
                    "patterns": {"type": "list", "elements": "str", "default": ["*"]},
                    "keep": {"type": "list", "elements": "str", "default": []},
                },
            },
        },
        supports_check_mode=True,
    )
    files = _entries(module)
    needs, holding = _needs(module, files)
    if needs:
        module.exit_json(changed=False, needs=needs)
    changed_files, diffs = [], []
    changed_sites = {}
    for index, entry in enumerate(files):
        changed_sites.setdefault(entry["key"], [])
        mode = None if entry["mode"] is None else int(entry["mode"], 8)
        uid, gid = _ids(module, entry["owner"], entry["group"])
        try:
            diff = (_apply_dir(module, entry, mode, uid, gid) if entry["state"] == "directory"
                    else _apply_file(module, entry, mode, uid, gid, holding.get(index)))
        except (OSError, _Invalid) as e:
            module.fail_json(msg=f"{entry['path']}: {e}", changed_files=changed_files)
        if diff is None:
            continue
        changed_files.append(entry["path"])
        if entry["site"] not in changed_sites[entry["key"]]:
            changed_sites[entry["key"]].append(entry["site"])
        diffs.append(diff)
    removed = _prune(module, module.params["prune"], {e["path"] for e in files})
    diffs += [{"before": {"path": p, "state": "file"}, "after": {"path": p, "state": "absent"}}
              for p in removed]
    result = {
        "changed": bool(changed_files or removed),
        "changed_files": changed_files,
        "removed_files": removed,
        "changed_sites": changed_sites,
    }
    if module.params["find"]:
        result["found"] = _find(module.params["find"])
    if module.params["install"]:
        result.update(_install(module, module.params["install"], changed_files + removed))
    if module._diff:
        result["diff"] = diffs
    module.exit_json(**result)


if __name__ == "__main__":
    main()
