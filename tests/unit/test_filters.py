"""The Ansible filter plugin ``sitekit.deploy.sitekit`` and the rules of the model it reads
(``sitekit.model``, ``sitekit.runtime.rules``): values the roles render."""

import gc
import hashlib
import importlib.util
import json
import re
import sys
from pathlib import Path

import pytest
import yaml
from ansible.errors import AnsibleFilterError

from sitekit import model
from sitekit.catalogue import validate
from sitekit.runtime import rules

REPO = Path(__file__).resolve().parents[2]
PLUGIN = (
    REPO / "ansible/collections/ansible_collections/sitekit/deploy/plugins/filter/sitekit.py"
)


def load_plugin():
    spec = importlib.util.spec_from_file_location("sitekit_filter_plugin", PLUGIN)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


plugin = load_plugin()


def test_published_reads_a_variable_of_the_model_as_the_preflight_returns_it():
    variables = {"sitekit_masters": [{"name": "harbor", "sites": ["harbor"]}],
                 "sitekit_layout": {"tls_dir": "/srv/tls"}}
    value = model.publish(variables)
    assert set(value) == {"digest", "json"}
    assert json.loads(value["json"]) == variables
    assert value["digest"] == hashlib.sha256(value["json"].encode()).hexdigest()
    masters = plugin.published(value, "sitekit_masters")
    assert masters == variables["sitekit_masters"]
    # decoded once per process: another copy of the same result reads the same objects
    assert plugin.published(dict(value), "sitekit_masters") is masters
    assert plugin.published(value, "sitekit_layout") == {"tls_dir": "/srv/tls"}
    with pytest.raises(AnsibleFilterError, match="no variable 'sitekit_tls_sites'"):
        plugin.published(value, "sitekit_tls_sites")
    # a result without the model (the preflight failed or did not run)
    with pytest.raises(AnsibleFilterError, match="run the preflight"):
        plugin.published(None, "sitekit_masters")


class _Lazy(list):
    """A list as Ansible's templating hands one to a filter (a lazy copy of a variable)."""

    class _lazy_options:  # Ansible's name
        template = True

    def _non_lazy_copy(self):
        return list(self)


def test_a_list_of_the_model_is_read_as_it_is_any_other_through_ansible():
    entries = [{"name": "harbor", "note": "{{ not a template of ours }}"}, {"name": "ember"},
               {"name": "meadow"}]
    value = model.publish({"sitekit_catalogue": entries})
    published = plugin.published(value, "sitekit_catalogue")
    raw = plugin._raw(_Lazy(published))
    assert type(raw) is list and raw == entries  # the model's: data, read in place
    lookalike = _Lazy([dict(e) for e in entries])  # the same contents, other objects
    assert plugin._raw(lookalike) is lookalike  # holds a template: left to Ansible
    # the model's first and last entries around another one: not the model's list
    spliced = _Lazy([published[0], {"name": "x", "note": "{{ y }}"}, published[-1]])
    assert plugin._raw(spliced) is spliced
    plain = plugin._raw(_Lazy([{"name": "harbor"}]))
    assert type(plain) is list and plain == [{"name": "harbor"}]  # no template: unwrapped


def test_a_filter_s_output_handed_to_another_is_unwrapped_without_a_walk():
    class Output(_Lazy):  # as Ansible wraps what a filter returns: never templated
        class _lazy_options:
            template = False

    value = Output([{"note": "{{ stays as it is }}"}])
    raw = plugin._raw(value)
    assert type(raw) is list and raw == [{"note": "{{ stays as it is }}"}]


def test_the_sitekit_role_names_every_variable_of_the_model_as_the_actions_read_it():
    """The role's vars and the actions' alias() are one text: an action reads a list in place
    only when the variable is the role's (else Ansible templates it, 10,000 sites at a time)."""
    sys.path.insert(0, str(REPO / "ansible" / "collections"))
    from ansible_collections.sitekit.deploy.plugins.plugin_utils.model import alias

    role_vars = yaml.safe_load((REPO / "roles" / "sitekit" / "vars" / "main.yml").read_text())
    variables = model.resolve(validate([{"name": "harbor", "domains": ["harbor.localhost"]}],
                                       env="local"), model.Layout()).variables()
    assert set(role_vars) == set(variables)
    assert {name: role_vars[name] for name in variables} == {n: alias(n) for n in variables}


def test_the_controller_tunes_its_collector_and_decodes_the_model_once_then_stops():
    spec = importlib.util.spec_from_file_location(
        "sitekit_controller_callback",
        REPO / "ansible" / "callback_plugins" / "sitekit_controller.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    callback = module.CallbackModule()
    assert gc.get_threshold() == (100_000, 50, 100)  # the controller's collector, tuned
    value = model.publish({"sitekit_masters": [{"name": "callback-test"}]})

    class Result:
        def __init__(self):
            self.result = {"changed": False, "model": value}

    assert value["digest"] not in model._DECODED
    callback.v2_runner_on_ok(Result())
    assert model._DECODED[value["digest"]] == {"sitekit_masters": [{"name": "callback-test"}]}
    assert not callback.disabled  # the preflight may still return on other hosts
    callback.v2_playbook_on_task_start(None, False)
    assert callback.disabled  # the next task: no more copies of its results for this plugin


def test_filters_are_registered_under_their_names():
    filters = plugin.FilterModule().filters()
    assert set(filters) == {
        "published",
        "master_env",
        "server_names_hash",
        "nginx_certificate_map",
        "nginx_server_names",
        "nginx_log_keep",
        "nginx_open_files",
        "sync_catalogue",
        "pool_keeps",
        "pool_files",
        "pick",
        "release_inputs",
        "pool_sites_file",
        "private_addresses",
        "without_secrets",
    }
    assert filters["pool_keeps"] is plugin.pool_keeps


# --- tls_mode, tls_sites, hsts_header ---------------------------------------------------------


@pytest.mark.parametrize(
    ("site", "default", "mode"),
    [
        ({"name": "a"}, "self-signed", "self-signed"),
        ({"name": "a", "tls": None}, "acme", "acme"),
        ({"name": "a", "tls": "provided"}, "acme", "provided"),
        ({"name": "a", "tls": "off"}, "acme", "off"),
        ({"name": "a"}, False, "off"),  # YAML's bare off
    ],
)
def test_tls_mode_is_the_sites_else_the_environments(site, default, mode):
    assert model.site_tls(site, model.Layout(tls=default)) == mode


def test_tls_mode_refuses_an_unknown_mode():
    with pytest.raises(ValueError, match="site 'a': TLS mode 'letsencrypt' is not one of"):
        model.site_tls({"name": "a"}, model.Layout(tls="letsencrypt"))


def test_tls_sites_leaves_out_sites_without_tls():
    sites = [{"name": "a", "domains": ["a.example", "*.a.example"]},
             {"name": "b", "domains": ["b.example"], "tls": "off"},
             {"name": "c", "domains": ["c.example"], "tls": "provided"}]
    assert model.tls_sites(sites, model.Layout(tls="acme")) == [
        {"name": "a", "domains": ["a.example", "*.a.example"], "mode": "acme", "wildcard": True},
        {"name": "c", "domains": ["c.example"], "mode": "provided", "wildcard": False},
    ]


@pytest.mark.parametrize(
    ("policy", "header"),
    [("subdomains", "max-age=300; includeSubDomains"),
     ("preload", "max-age=300; includeSubDomains; preload"),
     ("host", "max-age=300")],
)
def test_hsts_header_follows_the_policy(policy, header):
    assert rules.hsts_header(policy, 300) == header


# --- allowed_hosts -------------------------------------------------------------------------


def test_allowed_hosts_turns_wildcards_into_leading_dots():
    domains = ["harbor.example.org", "*.harbor.example.org", "www.harbor.example.org"]
    assert rules.allowed_hosts(domains) == [
        "harbor.example.org",
        ".harbor.example.org",
        "www.harbor.example.org",
    ]


def test_allowed_hosts_of_no_domains():
    assert rules.allowed_hosts([]) == []


@pytest.mark.parametrize(
    ("host", "domain"),
    [
        ("example.org", "example.org"),
        ("www.example.org", "www.example.org"),  # the exact name before any wildcard
        ("a.example.org", "*.example.org"),
        ("a.b.example.org", "*.example.org"),  # nginx's *. covers every level below
        ("a.shop.example.org", "*.shop.example.org"),  # the longest wildcard
        ("shop.example.org", "*.example.org"),
        ("other.org", None),
        ("example.org.evil", None),
        ("evilexample.org", None),
        ("", None),
    ],
)
def test_server_names_match_as_nginx_routes(host, domain):
    names = rules.ServerNames(["example.org", "www.example.org", "*.example.org",
                               "*.shop.example.org"])
    assert names.match(host) == domain


@pytest.mark.parametrize("host", ["example.org", ".example.org", "org"])
def test_a_wildcard_serves_subdomains_only_which_allowed_hosts_cannot_say(host):
    """``*.example.org`` never serves ``example.org``, though its ALLOWED_HOSTS entry admits it."""
    assert rules.ServerNames(["*.example.org"]).match(host) is None
    assert rules.ServerNames(["*.Example.ORG"]).match("a.example.org") == "*.example.org"


# --- origins -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("scheme", "port", "expected"),
    [
        ("https", None, "https://harbor.example.org"),
        ("https", 443, "https://harbor.example.org"),
        ("https", "443", "https://harbor.example.org"),
        ("http", 80, "http://harbor.example.org"),
        ("http", 8080, "http://harbor.example.org:8080"),
        ("http", "8080", "http://harbor.example.org:8080"),
        ("https", 8443, "https://harbor.example.org:8443"),
        ("https", 80, "https://harbor.example.org:80"),
        ("http", 443, "http://harbor.example.org:443"),
    ],
)
def test_origins_keep_only_a_non_default_port(scheme, port, expected):
    assert rules.origins(["harbor.example.org"], scheme, port) == [expected]


def test_origins_default_to_https_and_cover_every_domain():
    assert rules.origins(["a.example.org", "*.a.example.org"]) == [
        "https://a.example.org",
        "https://*.a.example.org",
    ]


# --- site_secret ---------------------------------------------------------------------------


def test_site_secret_is_deterministic_per_site():
    secret = model.site_secret("environment-secret", "harbor")
    assert re.fullmatch(r"[0-9a-f]{64}", secret)
    assert model.site_secret("environment-secret", "harbor") == secret
    assert model.site_secret("environment-secret", "meadow") != secret
    assert model.site_secret("other-secret", "harbor") != secret
    assert secret != "environment-secret"


@pytest.mark.parametrize("base", ["", None])
def test_site_secret_refuses_an_empty_base(base):
    with pytest.raises(ValueError, match="sitekit_secret_key_base is empty"):
        model.site_secret(base, "harbor")


# --- server_names_hash ---------------------------------------------------------------------


def sites_with(*domain_lists, state="present"):
    return [
        {"name": f"s{i}", "domains": list(domains), "state": state}
        for i, domains in enumerate(domain_lists)
    ]


def test_server_names_hash_defaults_for_a_small_catalogue():
    sizes = plugin.server_names_hash(sites_with(["harbor.localhost"], ["meadow.localhost"]))
    assert sizes == {"bucket_size": 64, "max_size": 512, "names": 2}


@pytest.mark.parametrize("length", [47, 48, 63, 100, 200, 253])
def test_server_names_hash_bucket_holds_the_longest_name(length):
    name = ("a" * (length - 4)) + ".org"
    assert len(name) == length
    bucket = plugin.server_names_hash(sites_with(["short.org"], [name]))["bucket_size"]
    assert bucket >= length + 2
    assert bucket & (bucket - 1) == 0  # a power of two
    assert bucket >= 64


def test_server_names_hash_bucket_grows_with_the_longest_name():
    short = plugin.server_names_hash(sites_with(["a" * 40 + ".org"]))["bucket_size"]
    long = plugin.server_names_hash(sites_with(["a" * 200 + ".org"]))["bucket_size"]
    assert long > short


def test_server_names_hash_max_size_grows_with_the_number_of_names():
    def max_size(count):
        domains = [f"site{i}.example.org" for i in range(count)]
        return plugin.server_names_hash(sites_with(domains))["max_size"]

    assert max_size(10) == 512
    assert max_size(1000) >= 1000
    assert max_size(5000) > max_size(1000)
    assert max_size(5000) >= 5000


def test_server_names_hash_ignores_absent_sites():
    sites = sites_with(["harbor.localhost"]) + sites_with(["a" * 200 + ".org"], state="absent")
    assert plugin.server_names_hash(sites) == {"bucket_size": 64, "max_size": 512, "names": 1}


def test_the_certificate_map_names_each_domain_s_site_wildcards_included():
    tls = [{"name": "harbor", "domains": ["harbor.localhost", "*.harbor.localhost"],
            "mode": "self-signed"},
           {"name": "meadow", "domains": ["meadow.localhost"], "mode": "provided"}]
    assert plugin.nginx_certificate_map(tls, indent=2).splitlines() == [
        "  harbor.localhost harbor;", "  *.harbor.localhost harbor;", "  meadow.localhost meadow;"]
    assert plugin.nginx_certificate_map([]) == ""
    assert plugin.nginx_server_names(tls, indent=2).splitlines() == [
        "  harbor.localhost", "  *.harbor.localhost", "  meadow.localhost"]
    assert plugin.nginx_server_names([]) == ""


def test_nginx_keeps_the_logs_of_the_present_sites_and_of_unknown_hosts():
    sites = sites_with(["harbor.localhost"]) + sites_with(["gone.localhost"], state="absent")
    sites[0]["name"], sites[1]["name"] = "harbor", "gone"
    assert plugin.nginx_log_keep(sites) == [
        "unknown-host.*", "harbor.access.log*", "harbor.error.log*"]


def test_server_names_hash_of_an_empty_catalogue():
    assert plugin.server_names_hash([]) == {"bucket_size": 64, "max_size": 512, "names": 0}


# --- nginx_open_files ----------------------------------------------------------------------


def test_nginx_open_files_counts_two_logs_per_present_site_and_a_margin():
    assert plugin.nginx_open_files([]) == plugin.NGINX_FIXED_FILES == 128
    sites = sites_with(*[[f"s{i}.example.org"] for i in range(1000)])
    assert plugin.nginx_open_files(sites) == 2 * 1000 + 128
    absent = sites_with(*[[f"gone{i}.example.org"] for i in range(50)], state="absent")
    assert plugin.nginx_open_files(sites + absent) == 2 * 1000 + 128


def test_nginx_open_files_with_one_shared_access_log_do_not_grow_with_the_sites():
    sites = sites_with(*[[f"s{i}.example.org"] for i in range(10000)])
    assert plugin.nginx_open_files(sites, "shared") == plugin.NGINX_FIXED_FILES == 128
    assert plugin.nginx_open_files([], "shared") == 128
    assert plugin.nginx_open_files(sites[:100], "per-site") == 2 * 100 + 128


def test_nginx_open_files_of_1000_sites_exceed_the_usual_soft_limit():
    sites = sites_with(*[[f"s{i}.example.org"] for i in range(1000)])
    assert plugin.nginx_open_files(sites) > 1024
    assert plugin.nginx_open_files(sites[:400]) < 1024


# --- on the validator's output -------------------------------------------------------------


def test_filters_on_a_validated_catalogue():
    result = validate(
        [
            {"name": "harbor", "domains": ["harbor.localhost", "*.harbor.localhost"]},
            {"name": "meadow", "domains": ["meadow.localhost"]},
            {"name": "ember", "state": "absent"},
        ],
        env="local",
        project_root=REPO,
    )
    assert result.ok
    sites = [s.as_dict() for s in result.sites]
    assert rules.allowed_hosts(sites[0]["domains"]) == ["harbor.localhost", ".harbor.localhost"]
    assert plugin.server_names_hash(sites) == {"bucket_size": 64, "max_size": 512, "names": 3}
    assert plugin.sync_catalogue(sites) == [
        {
            "name": "harbor",
            "domain": "harbor.localhost",
            "state": "present",
            "settings_module": "settings.harbor",
        },
        {
            "name": "meadow",
            "domain": "meadow.localhost",
            "state": "present",
            "settings_module": "settings.meadow",
        },
        {"name": "ember", "domain": None, "state": "absent", "settings_module": "settings.ember"},
    ]


# --- private_addresses -----------------------------------------------------------------------


def test_private_address_prefers_the_explicit_one_then_ansible_host_then_the_name():
    hostvars = {
        "web1": {"sitekit_private_address": "10.0.0.11", "ansible_host": "203.0.113.11"},
        "web2": {"ansible_host": "10.0.0.12"},
        "db": {},
    }
    assert plugin.private_addresses(["web1", "web2", "db"], hostvars) == [
        "10.0.0.11",
        "10.0.0.12",
        "db",
    ]


@pytest.mark.parametrize("count", [3, 30, 300, 1500])
def test_server_names_hash_sizes_let_nginx_build_the_hash_without_warning(tmp_path, count):
    """nginx -t on a configuration of `count` sites with 5 names each: no hash warning."""
    import shutil
    import subprocess

    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(nginx).exists():
        pytest.fail("nginx is not installed (make system-deps installs it)")
    prefixes = ("", "www.", "shop.", "m.", "blog.")
    sites = [
        {"name": f"site{i:04d}", "state": "present",
         "domains": [f"{p}site{i:04d}.example-shop.org" for p in prefixes]}
        for i in range(count)
    ]
    sizes = plugin.server_names_hash(sites)
    blocks = "".join(
        f"server {{ listen 127.0.0.1:1; server_name {' '.join(s['domains'])}; return 444; }}\n"
        for s in sites
    )
    conf = tmp_path / "nginx.conf"
    conf.write_text(
        f"pid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/error.log;\nevents {{}}\n"
        f"http {{\n server_names_hash_max_size {sizes['max_size']};\n"
        f" server_names_hash_bucket_size {sizes['bucket_size']};\n"
        f" client_body_temp_path {tmp_path}/b; proxy_temp_path {tmp_path}/p;\n"
        f" fastcgi_temp_path {tmp_path}/f; uwsgi_temp_path {tmp_path}/u;\n"
        f" scgi_temp_path {tmp_path}/s;\n"
        f" access_log off;\n{blocks}}}\n"
    )
    proc = subprocess.run([nginx, "-t", "-c", str(conf), "-e", str(tmp_path / "error.log")],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "could not build" not in proc.stderr, proc.stderr


# --- pool_keeps, site_secret_of ---------------------------------------------------------------


def _sites_file(*names):
    import base64

    sites = [{"name": n, "domains": [f"{n}.example"]} for n in names]
    return base64.b64encode(model.pool_sites_json(sites, "http", 80).encode()).decode()


def _env_file(*names):
    """An env file of a release that listed a pool's sites in it."""
    import base64
    import json

    sites = json.dumps([{"name": n, "domains": [f"{n}.example"]} for n in names])
    text = f"# comment\nSITEKIT_POOL=shared\nSITEKIT_POOL_SITES={sites}\n"
    return base64.b64encode(text.encode()).decode()


def test_pool_keeps_lists_the_present_sites_a_pool_still_serves_but_no_longer_has():
    results = [
        # ember moves to its own master, north is now absent, harbor stays
        {"site": {"name": "shared", "kind": "pool", "sites": ["harbor"]},
         "content": _sites_file("harbor", "ember", "north")},
        # a new pool: no sites file yet
        {"site": {"name": "fresh", "kind": "pool", "sites": ["meadow"]}, "failed": True},
        # nothing leaves this one
        {"site": {"name": "quiet", "kind": "pool", "sites": ["fern"]},
         "content": _sites_file("fern")},
        # a pool whose sites an earlier release wrote into its env file: read from there
        {"site": {"name": "older", "kind": "pool", "sites": ["oak"]}, "failed": True},
        {"site": {"name": "older", "kind": "pool", "sites": ["oak"]},
         "content": _env_file("oak", "meadow")},
    ]
    present = ["harbor", "ember", "meadow", "fern", "oak"]
    assert plugin.pool_keeps(results, present) == {"shared": ["ember"], "older": ["meadow"]}
    assert plugin.pool_keeps([], present) == {}
    # what pool_serving is given (pool_files): the pools' own sites come from the masters
    masters = [{"name": "shared", "kind": "pool", "sites": ["harbor"], "sites_file": "/s.json",
                "env_file": "/s.env", "domains": ["harbor.example"]},
               {"name": "ember", "kind": "site", "sites": ["ember"], "sites_file": "",
                "env_file": "/e.env"}]
    assert plugin.pick(masters, ["name", "kind", "nope"]) == [
        {"name": "shared", "kind": "pool"}, {"name": "ember", "kind": "site"}]
    assert plugin.pool_files(masters) == [
        {"name": "shared", "kind": "pool", "sites_file": "/s.json", "env_file": "/s.env"}]
    lean = [{"site": plugin.pool_files(masters)[0],
             "content": _sites_file("harbor", "ember", "north")}]
    assert plugin.pool_keeps(lean, present, masters) == {"shared": ["ember"]}


def test_master_env_is_the_models_with_the_keys_and_a_pools_sites_file_what_it_keeps():
    result = validate(
        [{"name": "harbor", "domains": ["harbor.example"], "pool": "shared"},
         {"name": "ember", "domains": ["ember.example"]}],
        env="local", project_root=REPO, pools={"shared": {}},
    )
    resolved = model.resolve(result, model.Layout(tls="self-signed"))
    pool = resolved.master_of("shared")
    env = plugin.master_env(pool, "b" * 40, {"SITEKIT_DEBUG": "0"})
    assert env["SITEKIT_DEBUG"] == "0"
    assert env["SITEKIT_SECRET_KEY"] == model.site_secret("b" * 40, "shared")
    assert env["SITEKIT_SECRET_KEY_FALLBACKS"] == model.site_secret("b" * 40, "harbor")
    assert env["SITEKIT_POOL_SITES_FILE"] == pool["sites_file"]
    kept = plugin.pool_sites_file(pool, resolved.sites, {"shared": ["ember"]})
    assert [s["name"] for s in json.loads(kept)] == ["harbor", "ember"]
    plain = plugin.pool_sites_file(pool, resolved.sites)
    assert [s["name"] for s in json.loads(plain)] == ["harbor"]
    ember = plugin.master_env(resolved.master_of("ember"), "b" * 40)
    assert ember["SITEKIT_SECRET_KEY_FALLBACKS"] == model.site_secret("b" * 40, "shared")
    assert not any(key in resolved.variables()["sitekit_masters"][0]["env"]
                   for key in model.SECRET_KEYS)


def test_without_secrets_keeps_what_a_deploy_may_hash_and_drops_every_secret():
    env = {"SITEKIT_DB_ENGINE": "postgresql", "SITEKIT_DB_PASSWORD": "pw",
           "SITEKIT_S3_ACCESS_KEY": "ak", "SITEKIT_S3_SECRET_KEY": "sk", "SITEKIT_DEBUG": "0"}
    assert plugin.FilterModule().filters()["without_secrets"](env) == {
        "SITEKIT_DB_ENGINE": "postgresql", "SITEKIT_DEBUG": "0"}
