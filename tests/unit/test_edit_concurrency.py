"""Edits at the same moment, and edits killed half-way: real `sitekit` processes on a copy of
the checkout.

Nothing here depends on timing. A process is parked at a chosen point of its write (just
before the rename that puts a file in place, when everything before it is done) by a wrapper
that patches ``os.replace``/``os.rename`` in that process only, reports on stderr that it is
parked and waits for a line on stdin; the test then starts a second command, resumes the
first or kills it (SIGKILL). The waits below are bounds that a broken build trips, not delays
that a working one relies on.
"""

import fcntl
import os
import select
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from sitekit import editor

REPO = Path(__file__).resolve().parents[2]
SITEKIT = REPO / ".venv" / "bin" / "sitekit"
CATALOGUE = Path("group_vars/all/sites.yml")
BOUND = 60  # seconds: what a stuck process is given before the test fails

#: Runs `sitekit` (its arguments follow), parked before the rename (os.replace, os.rename)
#: of a path ending with $SITEKIT_TEST_PARK_AT.
PARK = """\
import os, sys

target = os.environ["SITEKIT_TEST_PARK_AT"]


def parking(real):
    def call(src, dst, *args, **kwargs):
        if os.fspath(dst).endswith(target):
            print(f"PARKED before writing {os.fspath(dst)}", file=sys.stderr, flush=True)
            sys.stdin.readline()
        return real(src, dst, *args, **kwargs)
    return call


os.replace = parking(os.replace)
os.rename = parking(os.rename)

from sitekit.cli import main

sys.exit(main(sys.argv[1:]))
"""


@pytest.fixture
def checkout(copy_checkout, tmp_path):
    """The code (manage.py, settings/, project/) and two environments, local and staging."""
    (tmp_path / "park.py").write_text(PARK)
    return copy_checkout("local", "staging")


class Command:
    """A `sitekit --project ROOT ARGS...` process; ``park_at`` parks it (see PARK)."""

    def __init__(self, root, *args, park_at=None):
        self.args = ["--project", str(root), *args]
        env = dict(os.environ)
        if park_at:
            env["SITEKIT_TEST_PARK_AT"] = park_at
            command = [sys.executable, str(root.parent / "park.py"), *self.args]
        else:
            command = [str(SITEKIT), *self.args]
        self.proc = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
        self.pid = self.proc.pid
        self.err_seen = b""

    @property
    def shown(self):
        """How the command names itself to a process that waits for it."""
        return f"pid {self.pid} (sitekit {' '.join(self.args)})"

    def line(self):
        """The next line of its stderr ('' when it ended without one), within BOUND."""
        fd = self.proc.stderr.fileno()
        deadline = time.monotonic() + BOUND
        data = b""
        while not data.endswith(b"\n"):
            ready, _, _ = select.select([fd], [], [], max(0, deadline - time.monotonic()))
            assert ready, f"no line on stderr within {BOUND} s (got {data!r})"
            chunk = os.read(fd, 1)
            if not chunk:
                break
            data += chunk
        self.err_seen += data
        return data.decode()

    def parked(self):
        said = self.line()
        assert said.startswith("PARKED before writing "), said + self.finish()[2]

    def resume(self):
        self.proc.stdin.write(b"\n")
        self.proc.stdin.flush()

    def kill(self):
        os.kill(self.pid, signal.SIGKILL)
        assert self.proc.wait(BOUND) == -signal.SIGKILL

    def finish(self):
        out, err = self.proc.communicate(timeout=BOUND)
        return self.proc.returncode, out.decode(), (self.err_seen + err).decode()


def sitekit(root, *args):
    return subprocess.run([str(SITEKIT), "--project", str(root), *args],
                          capture_output=True, text=True, timeout=BOUND, check=False)


def catalogue(root, env="local"):
    return yaml.safe_load((root / "inventories" / env / CATALOGUE).read_text())["sitekit_sites"]


def entry(root, name, env="local"):
    return next((e for e in catalogue(root, env) if e["name"] == name), None)


def site_ids(root):
    """SITE_ID of each site's settings module in the checkout."""
    found = {}
    for path in (root / "settings").glob("*.py"):
        for line in path.read_text().splitlines():
            if line.startswith("SITE_ID = "):
                found[path.stem] = int(line.removeprefix("SITE_ID = "))
    return found


def temporaries(root):
    """Every temporary a sitekit write makes, wherever an edit writes."""
    places = [root, root / "settings", root / "project" / "sites"]
    places += [p.parent for p in root.glob("inventories/*/" + str(CATALOGUE))]
    return sorted(
        p.relative_to(root).as_posix()
        for place in places
        for p in place.iterdir()
        if p.name.endswith(".tmp") or p.name.startswith(".sitekit-new-")
    )


def waiting(first, what, env="local"):
    return (
        f"sitekit: {env}: waiting for {first.shown} to finish editing {what} (at most 30 s)\n"
    )


# --- two edits at once ---------------------------------------------------------------------


def test_two_domain_adds_at_once_both_land(checkout):
    label = "inventories/local/group_vars/all/sites.yml"
    # A has read the catalogue, planned and validated its edit, and is about to replace the file
    a = Command(checkout, "domain", "add", "local", "harbor", "a.localhost",
                park_at=str(Path("local") / CATALOGUE))
    a.parked()
    b = Command(checkout, "domain", "add", "local", "harbor", "b.localhost")
    said = b.line()  # B waits for A (had it not, it would have finished: '')
    a.resume()
    results = {"a.localhost": a.finish(), "b.localhost": b.finish()}
    domains = entry(checkout, "harbor")["domains"]
    for domain, (code, out, _) in results.items():
        # an edit that reports success is in the file
        if code == 0 and f"wrote {label}" in out:
            assert domain in domains, f"{domain}: said 'wrote' but the file has {domains}"
    assert [code for code, _, _ in results.values()] == [0, 0], results
    assert domains == ["harbor.localhost", "www.harbor.localhost", "a.localhost", "b.localhost"]
    assert said == waiting(a, label)
    # B applied its change to what A wrote: its diff shows A's domain as context
    assert "-    domains: [harbor.localhost, www.harbor.localhost, a.localhost]" in (
        results["b.localhost"][1]
    )


@pytest.mark.parametrize("other_env", ["local", "staging"])
def test_two_site_adds_at_once_get_their_own_site_ids(checkout, other_env):
    """The second `site add` (in the same environment, or in another one: the code is
    shared) waits for the first, then takes the next SITE_ID; no site's code is orphaned."""
    # A has created project/sites/acme/ and is about to put settings/acme.py (SITE_ID 4) in
    a = Command(checkout, "site", "add", "local", "acme", "acme.localhost",
                park_at="settings/acme.py")
    a.parked()
    b = Command(checkout, "site", "add", other_env, "zenith", "zenith.localhost")
    said = b.line()
    a.resume()
    results = {"acme": a.finish(), "zenith": b.finish()}
    for (name, (code, out, _)), env in zip(results.items(), ["local", other_env], strict=True):
        if code == 0 and "wrote" in out:
            assert entry(checkout, name, env) is not None, f"{name}: said 'wrote', not in {env}"
    assert [code for code, _, _ in results.values()] == [0, 0], results
    ids = site_ids(checkout)
    assert (ids["acme"], ids["zenith"]) == (4, 5)
    assert "new to the codebase: SITE_ID 5" in results["zenith"][1]
    check = sitekit(checkout, "check")
    assert check.returncode == 0, check.stderr
    assert check.stderr == ""  # no site's code without a catalogue entry
    assert said == waiting(a, "the sites' code (settings/, project/sites/)", other_env)


@pytest.mark.parametrize(
    ("lock", "args", "what"),
    [
        (
            "inventories/local/group_vars/all/.sites.yml.lock",
            ["domain", "add", "local", "harbor", "b.localhost"],
            "inventories/local/group_vars/all/sites.yml",
        ),
        (
            ".settings.lock",
            ["site", "add", "local", "acme", "acme.localhost"],
            "the sites' code (settings/, project/sites/)",
        ),
    ],
)
def test_an_edit_waits_a_bounded_time_then_refuses(checkout, lock, args, what):
    before = (checkout / "inventories" / "local" / CATALOGUE).read_bytes()
    holder = "pid 4242 (sitekit site add local other other.localhost)"
    with open(checkout / lock, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # as another edit would
        handle.truncate(0)
        handle.write(holder + "\n")
        handle.flush()
        proc = sitekit(checkout, *args, "--wait", "0.5")
        dry = sitekit(checkout, *args, "--dry-run")
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert proc.stderr.splitlines() == [
        f"sitekit: local: waiting for {holder} to finish editing {what} (at most 0.5 s)",
        f"sitekit: local: {what} is still being edited by {holder} after 0.5 s; nothing was "
        "written: run the command again when that one has finished",
    ]
    assert (checkout / "inventories" / "local" / CATALOGUE).read_bytes() == before
    assert not (checkout / "settings" / "acme.py").exists()
    # a dry run writes nothing, so it does not wait
    assert dry.returncode == 0, dry.stderr
    assert dry.stderr == ""


# --- an edit killed half-way ---------------------------------------------------------------

ADD = ("site", "add", "local", "acme", "acme.localhost")


@pytest.mark.parametrize(
    ("park_at", "code_left"),
    [
        # the new package is staged (.sitekit-new-acme-*), not yet in place
        ("project/sites/acme", []),
        # the package is in place; settings/acme.py is written, not yet in place
        ("settings/acme.py", ["project/sites/acme/"]),
        # the code is complete; the catalogue is written, not yet in place
        (str(Path("local") / CATALOGUE), ["settings/acme.py", "project/sites/acme/"]),
    ],
    ids=["staging_the_package", "writing_the_settings_module", "writing_the_catalogue"],
)
def test_a_site_add_killed_half_way_is_finished_by_running_it_again(checkout, park_at, code_left):
    killed = Command(checkout, *ADD, park_at=park_at)
    killed.parked()
    killed.kill()
    left = temporaries(checkout)
    assert left, "the kill left no temporary: the test parks the process too late"
    assert entry(checkout, "acme") is None

    check = sitekit(checkout, "check")
    assert check.returncode == 0, check.stderr  # the catalogues are as they were
    if code_left:
        are = "exist" if len(code_left) > 1 else "exists"
        assert check.stderr.startswith(
            f"warning: site 'acme' is in no environment's catalogue, but "
            f"{' and '.join(code_left)} {are} (left by an interrupted `sitekit site add`?): "
        ), check.stderr
    else:
        assert check.stderr == ""

    again = sitekit(checkout, *ADD)
    assert again.returncode == 0, again.stderr
    assert again.stderr == ""  # the killed process's lock went with it: no waiting
    for path in left:
        assert f"removed {path} (left by an interrupted edit)\n" in again.stdout
    assert temporaries(checkout) == []
    assert entry(checkout, "acme") == {
        "name": "acme", "domains": ["acme.localhost"], "workers": 2, "state": "present"
    }
    # the code is what one uninterrupted run writes
    for rel, text in editor.scaffold("acme", "Acme", 4).items():
        assert (checkout / rel).read_text() == text, rel
    check = sitekit(checkout, "check")
    assert (check.returncode, check.stderr) == (0, "")


def test_a_half_made_site_that_this_command_would_not_make_is_named_for_removal(checkout):
    killed = Command(checkout, *ADD, park_at="settings/acme.py")
    killed.parked()
    killed.kill()
    other = sitekit(checkout, *ADD, "--brand", "Acme & Co")
    assert other.returncode == 1
    assert "local: site 'acme': field 'name': project/sites/acme/ exists but settings/acme.py " \
        "does not, and it is not what this command would create (written by hand, or left by " \
        "an interrupted `sitekit site add` with another --brand): remove project/sites/acme/ " \
        "and run this command again, or write settings/acme.py by hand" in other.stderr
    assert entry(checkout, "acme") is None
    assert temporaries(checkout)  # a refused edit changes nothing, leftovers included
    shutil.rmtree(checkout / "project" / "sites" / "acme")  # as the message says
    again = sitekit(checkout, *ADD, "--brand", "Acme & Co")
    assert again.returncode == 0, again.stderr
    assert temporaries(checkout) == []
    assert (checkout / "settings" / "acme.py").read_text() == editor.scaffold(
        "acme", "Acme & Co", 4)["settings/acme.py"]
