"""`sitekit plan`'s reading of check-mode results: records, the per-host summary, its words.

The results below are shaped as Ansible 2.19 hands them to a callback in ``--check --diff``
runs of the playbook (trimmed), plus the shape of a module that renders several files in one
task and returns ``diff`` as a list with ``changed_files``/``removed_files``.
"""

import json

import pytest

from sitekit import model, plan
from sitekit.catalogue import validate

ROOT = "/srv/sitekit"
SECRET = "SITEKIT_SECRET_KEY=8c1f3e0b0d6a4b2c9e7f5a3d1b9c7e5f"
ENV_BEFORE = f"DJANGO_SETTINGS_MODULE=settings.harbor\n{SECRET}\nSITEKIT_ALLOWED_HOSTS=a\n"
ENV_AFTER = f"DJANGO_SETTINGS_MODULE=settings.harbor\n{SECRET}\nSITEKIT_ALLOWED_HOSTS=a,b\n"
CATALOGUE = [
    {"name": "harbor", "state": "present"},
    {"name": "meadow", "state": "present"},
    {"name": "ember", "state": "present"},
]
SERVER_BLOCK = "server {{\n    listen 80;\n    server_name {names};\n}}\n"


def template_item(dest, before, after, site, *, new=False):
    """A loop item of ansible.builtin.template that would change ``dest`` (check mode)."""
    diff = {"after_header": "/root/.ansible/tmp/ansible-local-1/tmpab/site.conf.j2",
            "after": after, "before": "" if new else before}
    if not new:
        diff["before_header"] = dest
    return {
        "diff": [diff],
        "changed": True,
        "invocation": {"dest": dest, "module_args": {"dest": dest, "mode": "0644"}},
        "_ansible_no_log": False,
        "site": {"name": site},
        "ansible_loop_var": "site",
        "_ansible_item_label": site,
    }


def unchanged_item(path, site):
    return {
        "diff": {"before": {"path": path}, "after": {"path": path}},
        "path": path,
        "changed": False,
        "state": "file",
        "site": {"name": site},
        "_ansible_item_label": site,
    }


def censored(changed):
    return {
        "changed": changed,
        "_ansible_no_log": True,
        "censored": "the output has been hidden due to the fact that 'no_log: true' was "
        "specified for this result",
    }


def env_files_result(*changed):
    """The no_log loop that renders the env files: results hidden, the loop's shape kept."""
    return {**censored(any(changed)), "results": [censored(c) for c in changed]}


def env_item_args(*sites):
    return [{"dest": f"{ROOT}/etc/sites/{s}.env", "state": None} for s in sites]


def rec(result, task, role, **kw):
    kw.setdefault("host", "web1")
    return plan.record(result, task=task, role=role, **kw)


LAYOUT = model.Layout(env="production", root=ROOT, current=f"{ROOT}/current",
                      etc_dir=f"{ROOT}/etc", run_dir=f"{ROOT}/run", log_dir=f"{ROOT}/log",
                      tls_dir=f"{ROOT}/etc/tls")


def catalogue_record(host="web1", present=None, absent=()):
    """The preflight's result: the model of a catalogue (CATALOGUE's sites unless given)."""
    present = [s["name"] for s in CATALOGUE] if present is None else present
    result = validate(
        [{"name": n, "domains": [f"{n}.example"]} for n in present]
        + [{"name": n, "state": "absent"} for n in absent],
        env="production",
    )
    assert result.ok, result.problems
    return rec({"changed": False,
                "model": model.publish(model.resolve(result, LAYOUT).variables())},
               "Validate the site catalogue", "sitekit", host=host,
               action="sitekit.deploy.catalogue")


def release_records(host="web1", *, new_id="cf06156f23fa", live="cf06156f23fa"):
    switch = {
        "dest": f"{ROOT}/current",
        "src": f"{ROOT}/releases/{new_id}",
        "changed": new_id != live,
        "diff": {
            "before": {"path": f"{ROOT}/current", "src": f"{ROOT}/releases/{live}"},
            "after": {"path": f"{ROOT}/current", "src": f"{ROOT}/releases/{new_id}"},
        },
        "state": "link",
    }
    return [
        rec({"changed": False, "ansible_facts": {"release_id": new_id,
                                                  "release_dir": f"{ROOT}/releases/{new_id}"}},
            "Name the release and its directories", "release", host=host),
        rec(switch, "Switch the live release", "release", host=host,
            action="ansible.builtin.file"),
    ]


def nginx_blocks_record(host="web1", **kw):
    items = [
        template_item(f"{ROOT}/etc/nginx/sites/harbor.conf",
                      SERVER_BLOCK.format(names="harbor.example"),
                      SERVER_BLOCK.format(names="harbor.example shop.harbor.example"), "harbor"),
        unchanged_item(f"{ROOT}/etc/nginx/sites/meadow.conf", "meadow"),
    ]
    return rec({"changed": True, "results": items}, "Render one server block per present site",
               "nginx", host=host, notify=["Nginx configuration changed"], **kw)


def command_skipped_by_check_mode(argv):
    return {"changed": False, "skipped": True, "msg": plan.CHECK_MODE_SKIP, "rc": 0,
            "invocation": {"module_args": {"argv": argv}}}


# what each handler runs (what the plan reads, never the handler's name)
HANDLER_ARGV = {
    "Test the nginx configuration": ["prlimit", "--nofile=1024:1024", "--", "/usr/sbin/nginx",
                                     "-c", "x", "-t"],
    "Reload nginx": ["prlimit", "--nofile=1024:1024", "--", "/usr/sbin/nginx", "-c", "x",
                     "-s", "reload"],
    "Reload supervisord": ["/usr/bin/supervisorctl", "-c", "x", "reload"],
}


def handler(task, role, host="web1", *, runs=True):
    """A notified handler as check mode runs it: a command that would run, or its condition
    was false."""
    result = (command_skipped_by_check_mode(HANDLER_ARGV[task]) if runs else
              {"changed": False, "skip_reason": "Conditional result was False"})
    return rec(result, task, role, host=host, status="skipped", handler=True)


def domain_added(host="web1"):
    """A domain added to harbor: its server block and env file change, nginx reloads."""
    return [
        catalogue_record(host),
        *release_records(host),
        rec(env_files_result(True, False, False),
            "Render each site's environment file (readable by the site's user only)",
            "gunicorn_site", host=host, no_log=True, item_args=env_item_args(
                "harbor", "meadow", "ember")),
        nginx_blocks_record(host),
        handler("Test the nginx configuration", "nginx", host),
        handler("Reload nginx", "nginx", host),
        handler("Reload the nginx service", "nginx", host, runs=False),
    ]


def summary(records):
    return plan.summarise({"tasks": records, "stats": {}}, "production")


# --- files from each result shape ----------------------------------------------------------


def test_a_changed_template_in_a_loop_names_its_destination_with_a_short_diff():
    files = nginx_blocks_record()["files"]
    assert [(f["path"], f["change"], f["secret"]) for f in files] == [
        (f"{ROOT}/etc/nginx/sites/harbor.conf", "changed", False)
    ]
    assert "-    server_name harbor.example;" in files[0]["diff"]
    assert "+    server_name harbor.example shop.harbor.example;" in files[0]["diff"]


def test_a_new_file_is_created_at_its_destination_not_at_the_template_s_temporary_copy():
    item = template_item(f"{ROOT}/etc/supervisor/sitekit-acme.conf", "", "[program:x]\n",
                         "acme", new=True)
    files = plan.files_of({"changed": True, "results": [item]})
    assert [(f["path"], f["change"]) for f in files] == [
        (f"{ROOT}/etc/supervisor/sitekit-acme.conf", "created")
    ]


def test_no_log_loop_items_are_named_from_their_arguments_and_show_nothing():
    entry = rec(env_files_result(True, False, True), "Render env files", "gunicorn_site",
                no_log=True, item_args=env_item_args("harbor", "meadow", "ember"))
    assert entry["files"] == [
        {"path": f"{ROOT}/etc/sites/harbor.env", "change": "changed", "kind": "file",
         "secret": True, "diff": None, "attributes": {}},
        {"path": f"{ROOT}/etc/sites/ember.env", "change": "changed", "kind": "file",
         "secret": True, "diff": None, "attributes": {}},
    ]


def test_an_env_file_with_its_contents_in_the_result_is_still_secret():
    # a task that forgot no_log: the file's name marks it secret
    item = template_item(f"{ROOT}/etc/sites/harbor.env", ENV_BEFORE, ENV_AFTER, "harbor")
    entry = rec({"changed": True, "results": [item]}, "Render env files", "gunicorn_site")
    assert entry["files"][0]["secret"] is True
    assert entry["files"][0]["diff"] is None
    assert SECRET not in json.dumps(entry)


def test_a_module_returning_one_diff_per_file_and_lists_of_paths():
    result = {
        "changed": True,
        "diff": [
            {"before_header": f"{ROOT}/etc/sites/harbor.gunicorn.py",
             "after_header": f"{ROOT}/etc/sites/harbor.gunicorn.py",
             "before": "workers = 2\n", "after": "workers = 3\n"},
            {"before_header": f"{ROOT}/etc/sites/harbor.secrets",
             "after_header": f"{ROOT}/etc/sites/harbor.secrets"},  # secret: headers only
            {"before_header": f"{ROOT}/etc/sites/acme.gunicorn.py", "before": "",
             "after_header": f"{ROOT}/etc/sites/acme.gunicorn.py", "after": "workers = 2\n"},
        ],
        "changed_files": [f"{ROOT}/etc/sites/harbor.gunicorn.py",
                          f"{ROOT}/etc/sites/harbor.secrets",
                          f"{ROOT}/etc/sites/acme.gunicorn.py",
                          f"{ROOT}/etc/sites/harbor.env"],
        "removed_files": [f"{ROOT}/etc/sites/old.gunicorn.py", f"{ROOT}/etc/sites/old.env"],
    }
    files = {f["path"].rsplit("/", 1)[1]: f for f in plan.files_of(result)}
    assert list(files) == ["harbor.gunicorn.py", "harbor.secrets", "acme.gunicorn.py",
                           "harbor.env", "old.gunicorn.py", "old.env"]
    assert files["harbor.gunicorn.py"]["diff"] == ["@@ -1 +1 @@", "-workers = 2", "+workers = 3"]
    assert files["harbor.secrets"]["secret"] and files["harbor.secrets"]["diff"] is None
    assert files["harbor.env"]["secret"]
    assert files["acme.gunicorn.py"]["change"] == "created"
    assert [files[n]["change"] for n in ("old.gunicorn.py", "old.env")] == ["removed"] * 2


def test_the_module_shape_in_a_single_task_drives_the_masters():
    result = {
        "changed": True,
        "diff": [{"before_header": f"{ROOT}/etc/sites/harbor.env",
                  "after_header": f"{ROOT}/etc/sites/harbor.env"}],
        "changed_files": [f"{ROOT}/etc/sites/harbor.env",
                          f"{ROOT}/etc/supervisor/sitekit-acme.conf"],
        "created_files": [f"{ROOT}/etc/supervisor/sitekit-acme.conf"],
        "removed_files": [f"{ROOT}/etc/supervisor/sitekit-ember.conf"],
    }
    catalogue = catalogue_record(present=["harbor", "meadow", "acme"], absent=["ember"])
    host = summary([catalogue, rec(result, "Render the sites", "gunicorn_site")]).hosts[0]
    assert host.masters == {"start": ["acme"], "restart": [], "reload": ["harbor"],
                            "stop": ["ember"]}


def test_file_module_removals_and_new_directories():
    removed = {
        "path": f"{ROOT}/etc/sites/ember.env",
        "changed": True,
        "diff": {"before": {"path": f"{ROOT}/etc/sites/ember.env", "state": "file"},
                 "after": {"path": f"{ROOT}/etc/sites/ember.env", "state": "absent"}},
        "item": f"{ROOT}/etc/sites/ember.env",
    }
    created = {
        "path": f"{ROOT}/run/acme",
        "changed": True,
        "diff": {"before": {"path": f"{ROOT}/run/acme", "state": "absent"},
                 "after": {"path": f"{ROOT}/run/acme", "state": "directory", "mode": "0750"}},
        "state": "directory",
    }
    files = plan.files_of({"changed": True, "results": [removed, created]})
    assert [(f["path"], f["change"], f["kind"], f["secret"]) for f in files] == [
        (f"{ROOT}/etc/sites/ember.env", "removed", "file", True),
        (f"{ROOT}/run/acme", "created", "directory", False),
    ]
    assert files[1]["attributes"] == {"mode": [None, "0750"]}


def test_the_task_s_diff_false_keeps_contents_out():
    files = nginx_blocks_record(show_diff=False)["files"]
    assert files[0]["path"].endswith("harbor.conf")
    assert files[0]["diff"] is None


def test_lineinfile_style_headers_name_the_file():
    result = {"changed": True, "diff": [
        {"before_header": "/etc/hosts (content)", "before": "a\n", "after": "a\nb\n",
         "after_header": "/etc/hosts (content)"},
        {"before_header": "/etc/hosts (file attributes)", "before": {"mode": "0644"},
         "after": {"mode": "0600"}},
    ]}
    files = plan.files_of(result)
    assert [f["path"] for f in files] == ["/etc/hosts"]
    assert files[0]["attributes"] == {"mode": ["0644", "0600"]}


def test_unchanged_skipped_and_failed_results_name_no_files():
    assert plan.files_of(unchanged_item("/x", "harbor")) == []
    assert plan.files_of({"changed": True, "skipped": True, "path": "/x"}) == []
    assert rec({"changed": True, "path": "/x", "msg": "boom"}, "t", None,
               status="failed")["files"] == []


def test_a_command_skipped_by_check_mode_would_run_and_a_failure_keeps_its_message():
    skipped = {"changed": False, "msg": plan.CHECK_MODE_SKIP, "skipped": True,
               "invocation": {"module_args": {"argv": ["supervisorctl", "update"]}}}
    assert rec(skipped, "Apply the supervisor programs", "gunicorn_site",
               status="skipped")["would_run"] is True
    failed = rec({"msg": "The site catalogue has 1 problem; nothing was changed on any host.\n"
                  "production: site 'meadow': field 'domains[0]': ..."},
                 "Validate the site catalogue", None, status="failed")
    assert failed["msg"].startswith("The site catalogue has 1 problem")
    hidden = rec(censored(False), "Create the database user", "postgresql", status="failed")
    assert hidden["msg"] == "the output is hidden (no_log)"


# --- what a deploy would do ----------------------------------------------------------------


def test_a_domain_added_reloads_that_site_s_master_only_and_nginx():
    host = summary(domain_added()).hosts[0]
    assert [f["path"] for f in host.files] == [
        f"{ROOT}/etc/sites/harbor.env", f"{ROOT}/etc/nginx/sites/harbor.conf"]
    assert host.masters == {"start": [], "restart": [], "reload": ["harbor"], "stop": []}
    assert host.why == {"harbor": "its environment file changed"}
    assert host.nginx == "reload" and host.supervisord == ""
    assert host.release == {"id": "cf06156f23fa"}
    assert host.changes


def test_rendered_plan_of_a_domain_added():
    text = plan.render(summary(domain_added("web1") + domain_added("web2")))
    assert SECRET not in text
    lines = text.splitlines()
    assert lines[0] == "web1:"
    assert f"    change  {ROOT}/etc/sites/harbor.env  (secret: contents not shown)" in lines
    assert "  masters to reload gracefully: harbor (its environment file changed)" in lines
    assert "  nginx: reload (after testing the new configuration)" in lines
    assert "  release: cf06156f23fa stays live" in lines
    assert lines[-1] == ("plan: 2 hosts would change, 4 files, 2 masters to reload gracefully, "
                         "nginx reloads on 2 hosts")


def test_nothing_to_change():
    records = [catalogue_record(), *release_records(),
               rec(env_files_result(False, False, False), "Render env files", "gunicorn_site",
                   no_log=True, item_args=env_item_args("harbor", "meadow", "ember"))]
    result = summary(records)
    assert not result.changes
    assert plan.render(result).splitlines() == [
        "web1: nothing to change (release cf06156f23fa)",
        "nothing to change",
    ]


def test_a_new_release_reloads_every_present_master():
    records = [catalogue_record(), *release_records(new_id="682c23a56fc3")]
    host = summary(records).hosts[0]
    assert host.masters["reload"] == ["ember", "harbor", "meadow"]
    assert host.release == {"id": "682c23a56fc3", "new": True, "live": "cf06156f23fa"}
    text = plan.render(summary(records))
    assert "  release: 682c23a56fc3 goes live (live now: cf06156f23fa)" in text
    assert "  masters to reload gracefully: ember (new release), harbor (new release), " \
        "meadow (new release)" in text
    assert text.endswith("new release 682c23a56fc3\n")


def test_a_new_release_reloads_each_master_once_a_pool_for_its_sites():
    validated = rec({"changed": False, "model": model.publish({
        "sitekit_catalogue": [{**site, "domains": ["x"]} for site in CATALOGUE],
        "sitekit_masters": [{"name": "harbor", "kind": "site", "sites": ["harbor"]},
                            {"name": "shared", "kind": "pool", "sites": ["meadow", "ember"]}],
    })}, "Validate the site catalogue", None, action="sitekit.deploy.catalogue")
    host = summary([validated, *release_records(new_id="682c23a56fc3")]).hosts[0]
    assert host.masters["reload"] == ["harbor", "shared"]


def test_new_removed_and_changed_programs_start_stop_and_restart_their_masters():
    programs = {
        "changed": True,
        "results": [
            template_item(f"{ROOT}/etc/supervisor/sitekit-acme.conf", "", "[program]\n", "acme",
                          new=True),
            template_item(f"{ROOT}/etc/supervisor/sitekit-meadow.conf", "a=1\n", "a=2\n",
                          "meadow"),
        ],
    }
    removal = {"changed": True, "results": [{
        "path": f"{ROOT}/etc/supervisor/sitekit-ember.conf", "changed": True,
        "diff": {"before": {"path": f"{ROOT}/etc/supervisor/sitekit-ember.conf", "state": "file"},
                 "after": {"path": f"{ROOT}/etc/supervisor/sitekit-ember.conf",
                           "state": "absent"}}}]}
    env = rec(env_files_result(True, True), "Render env files", "gunicorn_site", no_log=True,
              item_args=env_item_args("harbor", "acme"))
    records = [catalogue_record(present=["harbor", "meadow", "acme"], absent=["ember"]),
               *release_records(new_id="682c23a56fc3"), env,
               rec(programs, "Render each site's supervisor program", "gunicorn_site"),
               rec(removal, "Remove what belongs to absent sites", "gunicorn_site")]
    host = summary(records).hosts[0]
    assert host.masters == {"start": ["acme"], "restart": ["meadow"],
                            "reload": ["harbor"], "stop": ["ember"]}
    assert host.why["acme"] == "new supervisor program"
    assert host.why["ember"] == "its supervisor program is removed"


def test_a_failed_task_makes_the_plan_incomplete():
    failed = rec({"msg": "dest must be an existing dir"}, "Unpack the release", "release",
                 status="failed")
    # after a service the deploy would start: the failure is still the host's
    started = rec(command_skipped_by_check_mode(["supervisord", "-c", "x"]), "Start supervisord",
                  "supervisor", status="skipped")
    result = summary([catalogue_record(), started, failed])
    assert result.failures == [{"host": "web1", "task": "release : Unpack the release",
                                "msg": "dest must be an existing dir"}]
    assert plan.render(result).splitlines()[-1] == "the plan is incomplete: 1 task failed"


def test_changes_without_files_are_listed():
    built = rec({"changed": True, "stdout": "{}"}, "Build the release on the control machine",
                "release")
    host = summary([catalogue_record(), built]).hosts[0]
    assert host.other_changes == ["release : Build the release on the control machine"]
    assert host.changes


def test_long_diffs_are_cut_in_the_words_but_kept_in_the_json():
    before = "".join(f"line {i}\n" for i in range(40))
    after = "".join(f"line {i}!\n" for i in range(40))
    item = template_item(f"{ROOT}/etc/nginx/nginx.conf", before, after, "x")
    records = [rec({"changed": True, "results": [item]}, "Render nginx.conf", "nginx")]
    text = plan.render(summary(records))
    assert "more lines (--json has them)" in text
    assert len(summary(records).as_dict()["hosts"]["web1"]["files"][0]["diff"]) == 81


@pytest.mark.parametrize("scenario", ["domain", "module"])
def test_json_never_holds_a_secret(scenario):
    if scenario == "domain":
        records = domain_added()
    else:
        leak = template_item(f"{ROOT}/etc/sites/harbor.env", ENV_BEFORE, ENV_AFTER, "harbor")
        records = [rec({"changed": True, "results": [leak]}, "Render env files",
                       "gunicorn_site")]
    for entry in records:
        assert SECRET not in json.dumps(entry)
    assert SECRET not in json.dumps(summary(records).as_dict())


def test_a_new_host_starts_its_services_and_reloads_none():
    records = [
        rec(command_skipped_by_check_mode(["supervisord", "-c", "x"]), "Start supervisord",
            "supervisor", status="skipped"),
        handler("Reload supervisord", "supervisor", runs=False),
        nginx_blocks_record(),
        handler("Test the nginx configuration", "nginx"),
        handler("Reload nginx", "nginx", runs=False),
        rec(command_skipped_by_check_mode(["nginx", "-c", "x"]), "Start nginx", "nginx",
            status="skipped"),
        rec({"changed": True, "name": "nginx", "state": "started"}, "Start nginx now and at boot",
            "nginx"),
    ]
    host = summary(records).hosts[0]
    assert (host.supervisord, host.nginx) == ("start", "start")
    assert host.other_changes == []
    text = plan.render(summary(records))
    assert "  supervisord: start" in text and "  nginx: start" in text
    assert "reload" not in text


def test_a_changed_supervisord_configuration_restarts_every_master():
    records = [handler("Reload supervisord", "supervisor"),
               rec({"changed": True, "name": "nginx", "state": "reloaded"},
                   "Reload the nginx service", "nginx", handler=True)]
    host = summary(records).hosts[0]
    assert (host.supervisord, host.nginx) == ("reload", "reload")
    assert "  supervisord: reload (it restarts every master)" in plan.render(summary(records))


def test_binary_and_large_files_are_named_not_shown():
    result = {"changed": True, "dest": "/srv/sitekit/static/logo.png",
              "diff": [{"before_header": "/srv/sitekit/static/logo.png", "dst_binary": 1,
                        "after_header": "/tmp/logo.png", "src_binary": 1}]}
    (found,) = plan.files_of(result)
    assert (found["secret"], found["diff"]) == (False, ["(binary file)"])
    result["diff"] = [{"before_header": "/srv/sitekit/big.txt", "dst_larger": 104448}]
    (found,) = plan.files_of(result)
    assert found["path"] == "/srv/sitekit/big.txt"
    assert found["diff"] == ["(too large to show)"]


def site_files_result(*entries):
    """A single task rendering every site's files, as the site_files module reports them:
    both headers on every entry; a new file has an empty before; a directory is described in
    words; a secret file has no contents, only a prepared line."""
    return {"changed": True, "changed_files": [e["before_header"] for e in entries],
            "diff": list(entries)}


def test_the_shape_of_a_module_that_writes_every_site_s_files():
    run_dir = f"{ROOT}/run/acme"
    program = f"{ROOT}/etc/supervisor/sitekit-acme.conf"
    env_new, env_changed = f"{ROOT}/etc/sites/acme.env", f"{ROOT}/etc/sites/harbor.env"
    result = site_files_result(
        {"before_header": run_dir, "after_header": run_dir, "before": "absent\n",
         "after": "directory, mode 0750\n"},
        {"before_header": env_new, "after_header": env_new,
         "prepared": f"{env_new}: created (secret: contents not shown)\n"},
        {"before_header": env_changed, "after_header": env_changed,
         "prepared": f"{env_changed}: changed (secret: contents not shown)\n"},
        {"before_header": program, "after_header": program, "before": "",
         "after": "[program:sitekit-acme]\n"},
    )
    entry = rec(result, "Render every site's files", "gunicorn_site")
    files = {f["path"]: f for f in entry["files"]}
    assert [(f["change"], f["kind"], f["secret"]) for f in files.values()] == [
        ("created", "directory", False),
        ("created", "file", True),
        ("changed", "file", True),
        ("created", "file", False),
    ]
    assert files[env_new]["diff"] is None and files[env_changed]["diff"] is None
    catalogue = catalogue_record(present=["harbor", "meadow", "ember", "acme"])
    host = summary([catalogue, entry]).hosts[0]
    assert host.masters == {"start": ["acme"], "restart": [], "reload": ["harbor"], "stop": []}


def test_what_a_task_runs_decides_a_service_action_not_its_name():
    renamed = rec(command_skipped_by_check_mode(HANDLER_ARGV["Reload nginx"]),
                  "Apply the new server blocks", "nginx", status="skipped", handler=True)
    misleading = rec(command_skipped_by_check_mode(HANDLER_ARGV["Test the nginx configuration"]),
                     "Reload nginx", "nginx", status="skipped", handler=True)
    assert summary([renamed]).hosts[0].nginx == "reload"
    assert summary([misleading]).hosts[0].nginx == ""
    hook = rec(command_skipped_by_check_mode(
        ["sh", "-c", "prlimit -- /usr/sbin/nginx -t -q && prlimit -- /usr/sbin/nginx -s reload"]),
        "Use the new certificates", "nginx", status="skipped")
    assert summary([hook]).hosts[0].nginx == "reload"
    # the role's reload: nginx -t, then SIGHUP to the master its pid file names
    signal = rec(command_skipped_by_check_mode(
        ["sh", "-c", "prlimit -- /usr/sbin/nginx -t -q && /bin/sh -c "
         "'kill -HUP \"$(cat /srv/sitekit/run/nginx.pid)\"'"]),
        "Use the new certificates", "nginx", status="skipped")
    assert summary([signal]).hosts[0].nginx == "reload"
    other = rec(command_skipped_by_check_mode(["kill", "-HUP", "$(cat /run/gunicorn.pid)"]),
                "Reload something else", "nginx", status="skipped")
    assert summary([other]).hosts[0].nginx == ""


def test_the_model_says_which_master_owns_a_file():
    facts = catalogue_record(present=["harbor"], absent=["ember"])["facts"]
    masters, known = facts["sitekit_masters"], facts["sitekit_known_masters"]
    assert model.owner_of(f"{ROOT}/etc/sites/harbor.env", masters, known) == (
        "harbor", "environment file")
    assert model.owner_of(f"{ROOT}/etc/sites/harbor.gunicorn.py", masters, known) == (
        "harbor", "gunicorn configuration")
    assert model.owner_of("/etc/supervisor/conf.d/sitekit-ember.conf", masters, known) == (
        "ember", "program")
    # not a master's: a file named like one elsewhere, or a name the catalogue does not know
    assert model.owner_of(f"{ROOT}/etc/nginx/harbor.env", masters, known) is None
    assert model.owner_of(f"{ROOT}/etc/supervisor/sitekit-other.conf", masters, known) is None


# --- many sites: a summary a person can read ------------------------------------------------


def many_sites_records(count):
    """``count`` new sites, each a dedicated master: its env file, program and server block."""
    names = [f"s{i:05d}" for i in range(1, count + 1)]
    entries = []
    for name in names:
        for path, after in ((f"{ROOT}/etc/sites/{name}.env", None),
                            (f"{ROOT}/etc/supervisor/sitekit-{name}.conf", f"[program:{name}]\n"),
                            (f"{ROOT}/etc/nginx/sites/{name}.conf", "server {}\n")):
            entries.append({"before_header": path, "after_header": path, "before": "",
                            "after": after} if after else
                           {"before_header": path, "after_header": path,
                            "prepared": f"{path}: created (secret: contents not shown)\n"})
    files = rec(site_files_result(*entries), "Render every site's files", "gunicorn_site")
    return names, [catalogue_record(present=["harbor", *names]), files]


def test_many_files_and_masters_are_summed_up_and_full_lists_them():
    names, records = many_sites_records(500)
    result = summary(records)
    text = plan.render(result)
    lines = text.splitlines()
    assert len(lines) < 12, text
    assert lines[1] == ("  files: 1500 (1500 to create); by directory (sitekit plan --full "
                        "lists each with its diff):")
    assert (f"    create    500 in {ROOT}/etc/nginx/sites/: s00001.conf, s00002.conf, "
            "s00003.conf and 497 more") in lines
    assert (f"    create    500 in {ROOT}/etc/sites/: s00001.env, s00002.env, s00003.env and "
            "497 more") in lines
    assert ("  masters to start: 500; 500 (new supervisor program): s00001, s00002, s00003 and "
            "497 more") in lines
    assert lines[-1] == "plan: 1 host would change, 1500 files, 500 masters to start"
    full = plan.render(result, full=True).splitlines()
    assert f"    create  {ROOT}/etc/sites/s00500.env  (secret: contents not shown)" in full
    assert "  masters to start: " + ", ".join(
        f"{n} (new supervisor program)" for n in names) in full
    assert full[-1] == lines[-1]


def test_a_few_files_are_still_listed_one_by_one():
    _, records = many_sites_records(3)
    lines = plan.render(summary(records)).splitlines()
    assert "  files:" in lines
    assert f"    create  {ROOT}/etc/nginx/sites/s00002.conf" in lines
    assert ("  masters to start: s00001 (new supervisor program), s00002 (new supervisor "
            "program), s00003 (new supervisor program)") in lines
