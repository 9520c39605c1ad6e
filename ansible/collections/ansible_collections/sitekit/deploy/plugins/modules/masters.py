#!/usr/bin/python
# Bring every master to its rendered state, and wait until the masters it touched serve, in one
# module call.
# It speaks supervisord's XML-RPC on the control socket itself instead of running supervisorctl:
# each supervisorctl is a Python start. On a no-op (5 masters running, nothing to reload) the task
# took 0.20 s instead of 0.34 s (ansible.builtin.ping: 0.18 s); supervisorctl update and status
# took 0.14 s of it, the same two calls over XML-RPC take 3 ms.

from __future__ import annotations

import base64
import configparser
import http.client
import json
import os
import socket
import time
import xmlrpc.client

from ansible.module_utils.basic import AnsibleModule

DOCUMENTATION = r"""
---
module: masters
short_description: Start, apply and gracefully reload the gunicorn masters under supervisor
description:
  - Does what C(supervisorctl update) does (supervisor starts the programs that are new,
    restarts those whose program file changed and stops and removes those whose file is gone),
    then starts every master that is not running, then sends C(HUP) (a graceful in-place reload)
    to the masters of O(reload) that were neither started nor restarted by the first two steps.
  - With O(wait), then waits until every master it started, restarted or reloaded answers
    C(/healthz) on its socket (with O(wait.release), serving that release).
  - Talks to supervisord over its XML-RPC interface on the unix control socket (found in
    O(conf), or given as O(socket)); nothing runs supervisorctl.
  - What happened is returned per master name.
  - In check mode only the processes' states are read (none when supervisord does not run yet);
    the result says which masters would be started or reloaded, and nothing is waited for.
    The effect of a changed program file shows as that file's change.
version_added: "0.3.0"
options:
  conf:
    description:
      - The supervisord configuration file. The control socket is its C([supervisorctl])
        C(serverurl) when that is a C(unix://) URL, else its C([unix_http_server]) C(file),
        read as supervisor reads them (inline comments, expansions of C(here), the file's
        directory, and of C(ENV_*)). The C(username) and C(password) of C([supervisorctl]), else
        of C([unix_http_server]), are sent.
      - One of O(conf) and O(socket) is required.
    type: path
  socket:
    description: The supervisord control socket; overrides the one O(conf) names (whose
      credentials are still used).
    type: path
  masters:
    description:
      - The masters that should run, each with C(name) and C(program) (supervisor's group and
        process name).
      - With O(wait), each also with C(socket), C(probe_host) and C(scheme) (what C(/healthz) is
        asked on, with those C(Host) and C(X-Forwarded-Proto) headers).
    type: list
    elements: dict
    required: true
  reload:
    description: Names of masters whose release, environment or configuration changed.
    type: list
    elements: str
    default: []
  wait:
    description:
      - Wait for every master started, restarted or reloaded to answer C(/healthz) with status
        200; polled every 0.02 s, all within one deadline. Not in check mode.
      - A master sent C(HUP) counts only once a worker it did not have when it was signalled
        exists; until its re-exec its old workers answer, from what it is leaving.
    type: dict
    suboptions:
      timeout:
        description: Seconds all of them have to answer, from when the wait begins.
        type: float
        default: 90
      release:
        description: When not empty, the release the C(release) of the answer's JSON must be.
        type: str
        default: ""
author:
  - sitekit
"""

EXAMPLES = r"""
- name: Start new masters, apply changed programs, reload the rest gracefully, wait for them
  sitekit.deploy.masters:
    conf: "{{ supervisor_conf }}"
    masters: "{{ sitekit_masters }}"
    reload: "{{ gunicorn_site_files.changed_sites.env | default([]) }}"
    wait:
      timeout: "{{ gunicorn_site_health_timeout }}"
      release: "{{ release_id | default('') }}"
"""

RETURN = r"""
started:
  description: Masters supervisor started or restarted because their program is new or changed.
  type: list
  elements: str
  returned: always
restarted:
  description: Masters that were not running and were started.
  type: list
  elements: str
  returned: always
reloaded:
  description: Masters sent HUP (graceful reload onto the live release and configuration).
  type: list
  elements: str
  returned: always
touched:
  description: All of the above, the masters waited for.
  type: list
  elements: str
  returned: always
removed:
  description: Program groups supervisor stopped and removed because their program file is gone.
  type: list
  elements: str
  returned: always
waited:
  description: Seconds spent waiting for the touched masters (0 without O(wait)).
  type: float
  returned: always
"""

# supervisor.xmlrpc.Faults
SHUTDOWN_STATE = 6
FAILED = 30
ALREADY_STARTED = 60
_RUNNING = ("RUNNING", "STARTING")
_POLL = 0.02


class SupervisorError(Exception):
    """Why supervisord could not be asked, or what it refused."""


class Unreachable(SupervisorError):
    """Nothing answers on the control socket (supervisord does not run, or not there)."""


def reason(error):
    """An OSError's or HTTP error's words, without the errno."""
    return getattr(error, "strerror", None) or str(error) or type(error).__name__


class UnixHTTPConnection(http.client.HTTPConnection):
    """HTTP over a unix socket (the host name only goes into the Host header)."""

    def __init__(self, path, timeout=None):
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(self.timeout)
            sock.connect(self.unix_path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


class UnixTransport(xmlrpc.client.Transport):
    """xmlrpc.client's transport, connected to a unix socket (one connection, kept alive)."""

    def __init__(self, path, username=None, password=None):
        super().__init__()
        self.unix_path = path
        self.auth = None
        if username:
            token = base64.b64encode(f"{username}:{password or ''}".encode()).decode()
            self.auth = [("Authorization", f"Basic {token}")]

    def make_connection(self, host):
        if self._connection and host == self._connection[0]:
            return self._connection[1]
        self._extra_headers = list(self.auth or [])
        self._connection = host, UnixHTTPConnection(self.unix_path)
        return self._connection[1]


def control_socket(conf):
    """(socket path, username, password) of the supervisord configuration file ``conf``, read as
    supervisorctl reads it: inline ``;`` comments, ``%(here)s`` and ``%(ENV_X)s`` expanded."""
    parser = configparser.RawConfigParser(inline_comment_prefixes=(";", "#"), strict=False)
    try:
        with open(conf, encoding="utf-8") as handle:
            parser.read_file(handle)
    except (OSError, configparser.Error) as error:
        raise SupervisorError(f"cannot read supervisord configuration {conf}: {error}") from error
    expansions = {"here": os.path.dirname(os.path.abspath(conf))}
    expansions.update({f"ENV_{key}": value for key, value in os.environ.items()})

    def get(section, option):
        if not parser.has_option(section, option):
            return None
        value = parser.get(section, option)
        try:
            return (value % expansions).strip()
        except (KeyError, ValueError, TypeError) as error:
            raise SupervisorError(
                f"{conf}: [{section}] {option} = {value!r} cannot be expanded ({error})"
            ) from error

    path = None
    url = get("supervisorctl", "serverurl")
    if url and url.startswith("unix://"):
        path = url[len("unix://"):]
    elif parser.has_section("unix_http_server"):
        path = get("unix_http_server", "file")
    if not path:
        raise SupervisorError(f"{conf} names no unix control socket ([supervisorctl] serverurl "
                              "unix://... or [unix_http_server] file)")
    username = get("supervisorctl", "username")
    password = get("supervisorctl", "password")
    if not username:
        username = get("unix_http_server", "username")
        password = get("unix_http_server", "password")
        if password and password.startswith("{SHA}"):  # only the server can use a hash
            username = password = None
    path = os.path.normpath(os.path.abspath(os.path.expanduser(path)))
    return path, username, password


class Supervisor:
    """supervisord's XML-RPC interface on its unix socket; an error names the socket or the call."""

    def __init__(self, path, username=None, password=None):
        self.path = path
        self.username = username
        self.proxy = xmlrpc.client.ServerProxy(
            "http://localhost/RPC2", transport=UnixTransport(path, username, password))

    def __call__(self, method, *args):
        try:
            return getattr(self.proxy.supervisor, method)(*args)
        except xmlrpc.client.ProtocolError as error:
            if error.errcode == 401:
                given = ("refused the username and password it was given" if self.username
                         else "wants a username and password (conf names none)")
                raise SupervisorError(f"supervisord at unix socket {self.path} {given}") from error
            raise SupervisorError(f"supervisord at unix socket {self.path} answered "
                                  f"{error.errcode} {error.errmsg}") from error
        except (OSError, http.client.HTTPException) as error:
            raise Unreachable(f"cannot reach supervisord at unix socket {self.path}: "
                              f"{reason(error)}") from error


def fault_call(method, name, fault):
    return f"supervisor.{method}({name}) failed: {fault.faultString}"


def update(supervisor):
    """What ``supervisorctl update`` does: ([added, changed, removed] groups, problems)."""
    try:
        added, changed, removed = supervisor("reloadConfig")[0]
    except xmlrpc.client.Fault as fault:
        if fault.faultCode == SHUTDOWN_STATE:
            raise SupervisorError("supervisord is already shutting down") from fault
        raise SupervisorError(f"supervisord could not reread its configuration: "
                              f"{fault.faultString}") from fault
    problems = []
    gone = []
    method = name = None
    try:
        for name in removed:
            method = "stopProcessGroup"
            results = supervisor(method, name)
            fails = [r for r in results if r["status"] == FAILED]
            if fails:
                problems.append(f"program group {name} has problems; not removing it: "
                                + ", ".join(f"{r['name']}: {r['description']}" for r in fails))
                continue
            method = "removeProcessGroup"
            supervisor(method, name)
            gone.append(name)
        for name in changed:
            for method in ("stopProcessGroup", "removeProcessGroup", "addProcessGroup"):
                supervisor(method, name)
        for name in added:
            method = "addProcessGroup"
            supervisor(method, name)
    except xmlrpc.client.Fault as fault:
        raise SupervisorError(fault_call(method, name, fault)) from fault
    return added, changed, gone, problems


def states(supervisor, check_mode):
    """statename of every process supervisord runs, by its program (group and process name)."""
    try:
        infos = supervisor("getAllProcessInfo")
    except Unreachable:
        if check_mode:  # a new host: supervisord is not running yet
            return {}
        raise
    return {info["name"]: info["statename"] for info in infos if info["group"] == info["name"]}


def probe(master, timeout):
    """(release, what it answered) of one GET /healthz on the master's socket; the release is
    None unless it answered 200 with a JSON object."""
    conn = UnixHTTPConnection(master["socket"], timeout=timeout)
    try:
        conn.request("GET", "/healthz", headers={
            "Host": master["probe_host"], "X-Forwarded-Proto": master["scheme"]})
        response = conn.getresponse()
        body = response.read()
    except (OSError, http.client.HTTPException) as error:
        return None, f"no answer ({reason(error)})"
    finally:
        conn.close()
    if response.status != 200:
        return None, f"status {response.status}"
    try:
        release = json.loads(body).get("release")
    except (ValueError, AttributeError):
        return None, "status 200 with a body that is not a JSON object"
    return release, f"status 200, release {release!r}"


def workers(pid):
    """The child processes of *pid*, each as (pid, start time): a pid reused later differs."""
    found = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as f:
                # the fields after the command name, which may hold spaces and parentheses
                fields = f.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if len(fields) > 19 and fields[1] == str(pid):
            found.add((int(entry), fields[19]))
    return found


def wait_for(masters, timeout, release, before=None):
    """Poll every master until all answer (with ``release``) or the deadline; the masters that
    did not, each with its last answer. A master in *before* (name: (its pid, its workers when
    it was sent HUP)) counts only once a worker it did not have then exists: until its re-exec,
    its old workers still answer, from the configuration it is leaving."""
    deadline = time.monotonic() + timeout
    pending = {m["name"]: m for m in masters}
    before = before or {}
    last, stale = {}, set()
    while pending:
        for name, master in list(pending.items()):
            # a new worker first, then the answer: once one exists, the old ones were told to stop
            if name in before and not workers(before[name][0]) - before[name][1]:
                stale.add(name)
                continue
            stale.discard(name)
            left = deadline - time.monotonic()
            seen, last[name] = probe(master, max(min(left, 2.0), _POLL))
            if last[name].startswith("status 200") and (not release or seen == release):
                del pending[name]
        left = deadline - time.monotonic()
        if not pending or left <= 0:
            break
        time.sleep(min(_POLL, left))
    for name in stale & set(pending):  # what they answer, for the message
        last[name] = probe(pending[name], 2.0)[1]
        if last[name].startswith("status 200"):
            last[name] += ", from a worker it had before the reload"
    return {name: last[name] for name in pending}


def main():
    module = AnsibleModule(
        argument_spec={
            "conf": {"type": "path"},
            "socket": {"type": "path"},
            "masters": {"type": "list", "elements": "dict", "required": True},
            "reload": {"type": "list", "elements": "str", "default": []},
            "wait": {"type": "dict", "options": {
                "timeout": {"type": "float", "default": 90},
                "release": {"type": "str", "default": ""},
            }},
        },
        required_one_of=[("conf", "socket")],
        supports_check_mode=True,
    )
    masters = module.params["masters"]
    missing = [m.get("name", m) for m in masters if not m.get("name") or not m.get("program")]
    if missing:
        module.fail_json(msg=f"masters without a name or a program: {missing}")
    name_of = {m["program"]: m["name"] for m in masters}
    program_of = {name: program for program, name in name_of.items()}
    wait = module.params["wait"]
    if wait:
        lacking = [m["name"] for m in masters
                   if not all(m.get(key) for key in ("socket", "probe_host", "scheme"))]
        if lacking:
            module.fail_json(msg="to wait, every master needs socket, probe_host and scheme; "
                                 f"these lack some: {', '.join(lacking)}")

    result = {"changed": False, "started": [], "restarted": [], "reloaded": [], "touched": [],
              "removed": [], "waited": 0.0}

    def names(programs):
        return [name_of[p] for p in programs]

    def fail(msg, **more):
        result.update(more)
        module.fail_json(msg=msg, **result)

    try:
        path = username = password = None
        # a new host in check mode (sitekit plan before the first deploy): supervisord is
        # neither configured nor running yet, and every master is one it would start
        new_host = bool(module.check_mode and module.params["conf"]
                        and not os.path.exists(module.params["conf"]))
        if module.params["conf"] and not new_host:
            path, username, password = control_socket(module.params["conf"])
        supervisor = Supervisor(module.params["socket"] or path, username, password)

        started = []
        if not module.check_mode:
            added, changed, gone, problems = update(supervisor)
            started = [p for p in changed + added if p in name_of]
            result.update(changed=bool(added or changed or gone or problems),
                          started=names(started), removed=gone)
            if problems:
                fail("; ".join(problems))

        running = {} if new_host else states(supervisor, module.check_mode)
        if module.check_mode:
            # what update would add; it starts them itself
            started = [p for p in name_of if p not in running]
        # a master supervisor does not know (no program file) fails to start: BAD_NAME
        stopped = [p for p in name_of if p not in started and running.get(p) not in _RUNNING]
        failures = []
        if not module.check_mode:
            for program in stopped:
                try:
                    supervisor("startProcess", program, True)
                except xmlrpc.client.Fault as fault:
                    if fault.faultCode != ALREADY_STARTED:
                        failures.append(f"master {name_of[program]} (program {program}) did not "
                                        f"start: {fault.faultString}")
        result.update(started=names(started), restarted=names(stopped))
        if failures:
            fail("; ".join(failures), changed=True)

        reload = [program_of[n] for n in dict.fromkeys(module.params["reload"]) if n in program_of]
        reload = [p for p in reload if p not in started and p not in stopped]
        before = {}
        if not module.check_mode:
            for program in reload:
                try:
                    if wait:
                        pid = supervisor("getProcessInfo", program)["pid"]
                        before[name_of[program]] = (pid, workers(pid))
                    supervisor("signalProcess", program, "HUP")
                except xmlrpc.client.Fault as fault:
                    failures.append(f"master {name_of[program]} (program {program}) was not "
                                    f"reloaded: {fault.faultString}")
        touched = list(dict.fromkeys(started + stopped + reload))
        result.update(changed=result["changed"] or bool(started or stopped or reload),
                      reloaded=names(reload), touched=names(touched))
        if failures:
            fail("; ".join(failures))
    except SupervisorError as error:
        fail(str(error))
    except xmlrpc.client.Fault as fault:
        fail(f"supervisord refused: {fault.faultString}")

    if wait and touched and not module.check_mode:
        begun = time.monotonic()
        release = wait["release"] or ""
        late = wait_for([m for m in masters if m["program"] in touched], wait["timeout"], release,
                        before)
        result["waited"] = round(time.monotonic() - begun, 2)
        if late:
            serving = f"serve release {release}" if release else "answer /healthz"
            fail(f"within {wait['timeout']:g} s, these masters did not {serving}: "
                 + "; ".join(f"{name} (last: {seen})" for name, seen in late.items()),
                 late=late)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
