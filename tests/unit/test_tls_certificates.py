"""The sitekit.deploy.tls_certificates module: each site's certificate and key by its TLS mode.

Each test runs a small real playbook against localhost (no mocks of Ansible) and reads the
files it leaves with the cryptography package.
"""

from __future__ import annotations

import datetime
import grp
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import AuthorityInformationAccessOID, NameOID

from sitekit.runtime.rules import SITE_NAME_RE

ROOT = Path(__file__).resolve().parents[2]
PLAYBOOK_BIN = Path(sys.executable).with_name("ansible-playbook")


def run(tmp: Path, sites, *, provided=None, check=False, group=None,
        renew_days=None, **options) -> tuple[int, dict | None, str]:
    args = {
        "dir": str(tmp / "tls"), "ca_dir": str(tmp / "ca"), "ca_name": "unit CA",
        "sites": sites, "provided": provided or {}, "acme_live_dir": str(tmp / "live"),
        "name_pattern": SITE_NAME_RE.pattern, **({"group": group} if group else {}),
        **({"renew_days": renew_days} if renew_days else {}), **options,
    }
    play = [{
        "name": "certificates", "hosts": "localhost", "gather_facts": False,
        "tasks": [
            {"name": "Certificates", "sitekit.deploy.tls_certificates": args, "register": "r"},
            {"name": "Show", "ansible.builtin.copy": {
                "content": "{{ r | to_json }}", "dest": str(tmp / "result.json"), "mode": "0600"},
             "check_mode": False},
        ],
    }]
    path = tmp / "play.yml"
    path.write_text(yaml.safe_dump(play, sort_keys=False))
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible" / "ansible.cfg"),
               ANSIBLE_NOCOLOR="1")
    (tmp / "result.json").unlink(missing_ok=True)
    proc = subprocess.run(
        [str(PLAYBOOK_BIN), "-i", "localhost,", "-c", "local", str(path),
         "-e", f"ansible_python_interpreter={sys.executable}", *(["--check"] if check else [])],
        env=env, capture_output=True, text=True, timeout=120, check=False)
    result = (json.loads((tmp / "result.json").read_text())
              if (tmp / "result.json").exists() else None)
    return proc.returncode, result, proc.stdout + proc.stderr


def cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def names(c: x509.Certificate) -> list[str]:
    ext = c.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    return sorted(ext.value.get_values_for_type(x509.DNSName))


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def issue(domains, *, ocsp=False, ca=None):
    """A certificate for *domains* (with an OCSP responder URL if asked): (cert PEM, key PEM)."""
    now = datetime.datetime.now(datetime.UTC)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, domains[0])])
    builder = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(days=1))
               .not_valid_after(now + datetime.timedelta(days=60))
               .add_extension(x509.SubjectAlternativeName([x509.DNSName(d) for d in domains]),
                              critical=False))
    if ocsp:
        builder = builder.add_extension(x509.AuthorityInformationAccess([
            x509.AccessDescription(AuthorityInformationAccessOID.OCSP,
                                   x509.UniformResourceIdentifier("http://ocsp.example.org"))]),
            critical=False)
    c = builder.sign(key, hashes.SHA256())
    pem = serialization.Encoding.PEM
    return (c.public_bytes(pem).decode(),
            key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()).decode())


HARBOR = {"name": "harbor", "domains": ["harbor.example", "www.harbor.example"],
          "mode": "self-signed"}
MEADOW = {"name": "meadow", "domains": ["meadow.example"], "mode": "self-signed"}


def test_self_signed_sites_get_certificates_from_one_ca_and_converge(tmp_path):
    rc, result, out = run(tmp_path, [HARBOR, MEADOW])
    assert rc == 0, out
    assert result["changed"]
    ca = cert(tmp_path / "ca" / "ca.pem")
    assert mode(tmp_path / "ca" / "ca.key") == 0o600
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    for site in (HARBOR, MEADOW):
        directory = tmp_path / "tls" / site["name"]
        assert mode(directory) == 0o750
        assert mode(directory / "privkey.pem") == 0o600
        leaf = cert(directory / "fullchain.pem")
        assert names(leaf) == sorted(site["domains"])
        leaf.verify_directly_issued_by(ca)
    assert result["ocsp"] == [] and result["acme_pending"] == [] and result["acme"] == []
    assert "PRIVATE KEY" not in out

    rc, result, out = run(tmp_path, [HARBOR, MEADOW])
    assert rc == 0, out
    assert (result["changed"], result["changes"]) == (False, [])


def test_with_a_group_its_members_read_the_keys_and_without_it_they_no_longer_can(tmp_path):
    """What nginx's workers need when they pick each session's certificate by name: the
    sites' directories and keys readable by their group, and private again when they do not."""
    group = next(g for g in ("www-data", "nogroup") if _group_exists(g))
    gid = grp.getgrnam(group).gr_gid
    rc, result, out = run(tmp_path, [HARBOR, MEADOW], group=group)
    assert rc == 0, out
    tls = tmp_path / "tls"
    assert (mode(tls), tls.stat().st_gid) == (0o750, gid)
    for site in (HARBOR, MEADOW):
        directory = tls / site["name"]
        assert (mode(directory), directory.stat().st_gid) == (0o750, gid)
        key, chain = directory / "privkey.pem", directory / "fullchain.pem"
        assert (mode(key), key.stat().st_gid) == (0o640, gid)
        assert (mode(chain), chain.stat().st_gid) == (0o644, gid)
    # the CA is never the group's
    assert (mode(tmp_path / "ca" / "ca.key"), (tmp_path / "ca" / "ca.key").stat().st_gid) == (
        0o600, os.getegid())
    rc, result, out = run(tmp_path, [HARBOR, MEADOW], group=group)
    assert (rc, result["changed"]) == (0, False), out

    # the new configuration chooses certificates per site, but the running one still has the
    # workers read the keys (a deploy may stop before it installs the new one): still theirs
    live = tmp_path / "00-default.conf"
    live.write_text("ssl_certificate /tls/$sitekit_tls_site/fullchain.pem;\n")
    switching = {"share": False, "live_config": str(live), "live_marker": "$sitekit_tls_site"}
    rc, result, out = run(tmp_path, [HARBOR, MEADOW], group=group, **switching)
    assert (rc, result["changed"], result["shared"]) == (0, False, True), out
    assert (mode(tls / "harbor" / "privkey.pem"), tls.stat().st_gid) == (0o640, gid)

    # once the running configuration names each site's certificate: nginx's master reads them
    # as root, so they are private to the module's own group again, the same keys kept
    live.write_text("ssl_reject_handshake on;\n")
    before = (tls / "harbor" / "privkey.pem").read_bytes()
    rc, result, out = run(tmp_path, [HARBOR, MEADOW], group=group, **switching)
    assert rc == 0 and result["changed"] and not result["shared"], out
    key = tls / "harbor" / "privkey.pem"
    assert (mode(key), key.stat().st_gid, key.read_bytes()) == (0o600, os.getegid(), before)
    assert tls.stat().st_gid == os.getegid()
    rc, result, out = run(tmp_path, [HARBOR, MEADOW], group="no-such-group-here")
    assert rc != 0 and "group 'no-such-group-here' does not exist on the host" in out


def _group_exists(name: str) -> bool:
    try:
        grp.getgrnam(name)
    except KeyError:
        return False
    return True


def lifetime(c: x509.Certificate) -> datetime.timedelta:
    return c.not_valid_after_utc - c.not_valid_before_utc


def test_self_signed_certificates_are_valid_at_most_366_days(tmp_path):
    """Mozilla's intermediate profile: a certificate lifespan of at most 366 days."""
    assert run(tmp_path, [HARBOR])[0] == 0
    leaf = tmp_path / "tls" / "harbor" / "fullchain.pem"
    assert lifetime(cert(leaf)) == datetime.timedelta(days=365)
    assert cert(leaf).not_valid_before_utc <= datetime.datetime.now(datetime.UTC)

    # one issued for 397 days (as before) is issued again, with the same key
    ca = cert(tmp_path / "ca" / "ca.pem")
    ca_key = serialization.load_pem_private_key((tmp_path / "ca" / "ca.key").read_bytes(), None)
    key = serialization.load_pem_private_key(
        (tmp_path / "tls" / "harbor" / "privkey.pem").read_bytes(), None)
    now = datetime.datetime.now(datetime.UTC)
    long_lived = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "harbor.example")]))
        .issuer_name(ca.subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=397))
        .add_extension(x509.SubjectAlternativeName(
            [x509.DNSName(d) for d in HARBOR["domains"]]), critical=False)
        .sign(ca_key, hashes.SHA256()))
    leaf.write_bytes(long_lived.public_bytes(serialization.Encoding.PEM))
    rc, result, out = run(tmp_path, [HARBOR])
    assert rc == 0, out
    assert any("harbor/fullchain.pem: issued again (valid longer than 366 days)" in c
               for c in result["changes"]), result["changes"]
    assert lifetime(cert(leaf)) == datetime.timedelta(days=365)
    assert cert(leaf).public_key() == key.public_key()
    assert run(tmp_path, [HARBOR])[1]["changed"] is False


def test_a_new_domain_is_covered_and_a_gone_site_removed(tmp_path):
    assert run(tmp_path, [HARBOR, MEADOW])[0] == 0
    key_before = (tmp_path / "tls" / "harbor" / "privkey.pem").read_bytes()
    grown = dict(HARBOR, domains=[*HARBOR["domains"], "shop.harbor.example"])

    rc, planned, out = run(tmp_path, [grown], check=True)  # reported, nothing written
    assert rc == 0, out
    reissued = "harbor/fullchain.pem: issued again (domains changed) by the environment's CA"
    assert any(reissued in c and "for 3 domain(s)" in c for c in planned["changes"]), planned

    assert names(cert(tmp_path / "tls" / "harbor" / "fullchain.pem")) == sorted(HARBOR["domains"])
    assert (tmp_path / "tls" / "meadow").is_dir()

    rc, result, out = run(tmp_path, [grown])
    assert rc == 0, out
    assert names(cert(tmp_path / "tls" / "harbor" / "fullchain.pem")) == sorted(grown["domains"])
    assert (tmp_path / "tls" / "harbor" / "privkey.pem").read_bytes() == key_before
    assert not (tmp_path / "tls" / "meadow").exists()
    assert any("meadow: removed" in c for c in result["changes"])


def test_sites_as_one_json_text_are_the_same_sites_and_a_bad_text_is_refused(tmp_path):
    """The action hands over the model's sites as one JSON text: the same certificates as the
    list; a text that is not a list of mappings fails, saying so, and writes nothing."""
    rc, result, out = run(tmp_path, json.dumps([HARBOR, MEADOW]))
    assert rc == 0 and result["changed"], out
    assert names(cert(tmp_path / "tls" / "meadow" / "fullchain.pem")) == MEADOW["domains"]
    assert (run(tmp_path, [HARBOR, MEADOW])[1]["changes"]) == []

    for bad, message in (("[{", "sites is neither a list nor a JSON text of one"),
                         (json.dumps(["harbor"]), "sites must be a list of mappings")):
        (tmp_path / "bad").mkdir(exist_ok=True)
        rc, _, out = run(tmp_path / "bad", bad)
        assert rc != 0 and message in out, out
        assert not (tmp_path / "bad" / "tls").exists()


def test_a_new_ca_reissues_every_certificate(tmp_path):
    assert run(tmp_path, [HARBOR])[0] == 0
    (tmp_path / "ca" / "ca.key").unlink()
    rc, _, out = run(tmp_path, [HARBOR])
    assert rc == 0, out
    cert(tmp_path / "tls" / "harbor" / "fullchain.pem").verify_directly_issued_by(
        cert(tmp_path / "ca" / "ca.pem"))


def test_files_as_the_last_run_left_them_are_not_read_again_but_any_change_is_seen(tmp_path):
    """The record of what was checked (.checked.json) never hides a change: a certificate
    swapped for another, a key edited, a mode changed, a renewal that falls due."""
    assert run(tmp_path, [HARBOR, MEADOW])[0] == 0
    record = tmp_path / "tls" / ".checked.json"
    assert mode(record) == 0o600
    assert sorted(json.loads(record.read_text())) == ["harbor", "meadow"]
    harbor = tmp_path / "tls" / "harbor"
    # meadow's certificate in harbor's place: harbor's is issued again for its own domains
    (harbor / "fullchain.pem").write_bytes((tmp_path / "tls" / "meadow" / "fullchain.pem")
                                           .read_bytes())
    rc, result, out = run(tmp_path, [HARBOR, MEADOW])
    assert rc == 0 and result["changes"] == [
        f"{harbor}/fullchain.pem: issued again (domains changed) by the environment's CA "
        "for 2 domain(s)"], out
    assert names(cert(harbor / "fullchain.pem")) == sorted(HARBOR["domains"])
    # a new key: the certificate no longer matches it
    (harbor / "privkey.pem").write_bytes(serialization.load_pem_private_key(
        (tmp_path / "tls" / "meadow" / "privkey.pem").read_bytes(), None).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    rc, result, out = run(tmp_path, [HARBOR, MEADOW])
    assert rc == 0 and result["changes"] == [
        f"{harbor}/fullchain.pem: issued again (key changed) by the environment's CA "
        "for 2 domain(s)"], out
    # a mode changed by hand
    (harbor / "privkey.pem").chmod(0o644)
    rc, result, out = run(tmp_path, [HARBOR, MEADOW])
    assert rc == 0 and result["changes"] == [f"{harbor}/privkey.pem: key mode 0600"], out
    assert mode(harbor / "privkey.pem") == 0o600
    # unchanged, and due for renewal: renewed whatever the record says
    rc, result, out = run(tmp_path, [HARBOR, MEADOW])
    assert (rc, result["changed"]) == (0, False), out
    rc, result, out = run(tmp_path, [HARBOR], renew_days=400)
    assert rc == 0 and f"{harbor}/fullchain.pem: renewed by the environment's CA for 2 " \
        "domain(s)" in result["changes"], out
    assert sorted(json.loads(record.read_text())) == ["harbor"]  # meadow is gone


def test_acme_sites_get_a_placeholder_then_certbots_certificate(tmp_path):
    site = {"name": "ember", "domains": ["ember.example", "www.ember.example"], "mode": "acme"}
    rc, result, out = run(tmp_path, [site])
    assert rc == 0, out
    assert (result["acme"], result["acme_pending"]) == (["ember"], ["ember"])
    placeholder = tmp_path / "tls" / "ember" / "fullchain.pem"
    assert names(cert(placeholder)) == sorted(site["domains"]) and not placeholder.is_symlink()
    assert run(tmp_path, [site])[1]["changed"] is False  # the placeholder stays

    live = tmp_path / "live" / "ember"
    live.mkdir(parents=True)
    pem, key = issue(site["domains"], ocsp=True)
    (live / "fullchain.pem").write_text(pem)
    (live / "privkey.pem").write_text(key)
    rc, result, out = run(tmp_path, [site])
    assert rc == 0, out
    assert os.readlink(placeholder) == str(live / "fullchain.pem")
    assert os.readlink(tmp_path / "tls" / "ember" / "privkey.pem") == str(live / "privkey.pem")
    assert (result["acme_pending"], result["ocsp"]) == ([], ["ember"])

    grown = dict(site, domains=[*site["domains"], "shop.ember.example"])
    assert run(tmp_path, [grown])[1]["acme_pending"] == ["ember"]  # certbot must re-issue


def test_a_provided_certificate_is_installed(tmp_path):
    pem, key = issue(["meadow.example", "*.meadow.example"])
    site = {"name": "meadow", "domains": ["meadow.example", "www.meadow.example"],
            "mode": "provided"}
    rc, result, out = run(tmp_path, [site], provided={"meadow": {"certificate": pem, "key": key}})
    assert rc == 0, out
    directory = tmp_path / "tls" / "meadow"
    assert (directory / "fullchain.pem").read_text() == pem
    assert (directory / "privkey.pem").read_text() == key
    assert mode(directory / "privkey.pem") == 0o600
    assert result["ocsp"] == []
    assert key.splitlines()[1] not in out


@pytest.mark.parametrize(
    ("given", "message"),
    [
        (None, "site 'meadow': TLS is 'provided' but sitekit_tls_certificates['meadow'] has no "
               "certificate and key"),
        ("other-names", "site 'meadow': the provided certificate does not cover "
                        "www.meadow.example (it is for meadow.example)"),
        ("wrong-key", "site 'meadow': the provided key does not belong to the provided "
                      "certificate"),
        ("not-pem", "site 'meadow': the provided certificate is not PEM"),
    ],
)
def test_a_bad_provided_certificate_is_refused_naming_the_site(tmp_path, given, message):
    site = {"name": "meadow", "domains": ["meadow.example", "www.meadow.example"],
            "mode": "provided"}
    pem, key = issue(["meadow.example"] if given == "other-names" else site["domains"])
    provided = {
        None: {},
        "other-names": {"meadow": {"certificate": pem, "key": key}},
        "wrong-key": {"meadow": {"certificate": pem, "key": issue(["x.example"])[1]}},
        "not-pem": {"meadow": {"certificate": "nonsense", "key": key}},
    }[given]
    rc, _, out = run(tmp_path, [site], provided=provided)
    assert rc != 0
    assert message in out, out[-2000:]
    assert not (tmp_path / "tls" / "meadow" / "fullchain.pem").exists()
