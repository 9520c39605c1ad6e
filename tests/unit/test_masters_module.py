"""The sitekit.deploy.masters module's reading of supervisorctl: which programs `update` started
and which `status` lists as not running (what it starts, and whom it does not also HUP)."""

import importlib.util
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
MODULE = REPO / "ansible/collections/ansible_collections/sitekit/deploy/plugins/modules/masters.py"
spec = importlib.util.spec_from_file_location("sitekit_masters_module", MODULE)
masters = importlib.util.module_from_spec(spec)
spec.loader.exec_module(masters)


def test_update_output_names_the_programs_it_added_or_changed():
    output = (
        "sitekit-acme: added process group\n"
        "sitekit-harbor: stopped\n"
        "sitekit-harbor: updated process group\n"
        "sitekit-ember: stopped\n"
        "sitekit-ember: removed process group\n"
    )
    assert masters.updated_programs(output) == ["sitekit-acme", "sitekit-harbor"]
    assert masters.updated_programs("") == []


def test_status_output_names_the_masters_that_do_not_run():
    output = (
        "sitekit-harbor                   RUNNING   pid 101, uptime 0:10:00\n"
        "sitekit-meadow                   STARTING  \n"
        "sitekit-ember                    FATAL     Exited too quickly\n"
        "sitekit-shared                   STOPPED   Dec 06 01:00 AM\n"
        "other-program                    STOPPED   not one of ours\n"
    )
    ours = {"sitekit-harbor", "sitekit-meadow", "sitekit-ember", "sitekit-shared"}
    assert masters.stopped_programs(output, ours) == ["sitekit-ember", "sitekit-shared"]
    # supervisord not running (check mode on a new host): nothing listed, nothing stopped
    assert masters.stopped_programs("unix:///x/supervisor.sock no such file\n", ours) == []
