"""ACME for real on the local stack: a site set to ``tls: acme`` gets its certificate from
pebble (Let's Encrypt's test ACME server, Debian's ``pebble`` package) through certbot's webroot
mode and the real nginx's challenge location, and a renewal reloads nginx without stopping it.

pebble resolves every name to 127.0.0.1 (its pebble-challtestsrv as DNS server) and validates
http-01 challenges on the stack's http port. Skipped, with the reason, where pebble or certbot
is not installed (``apt-get install pebble certbot``).
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import os
import shutil
import socket
import ssl
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.e2e.stack import free_port
from tests.harness import unavailable

pytestmark = pytest.mark.e2e

NEEDED = ("pebble", "pebble-challtestsrv", "certbot")


def _wait_listening(port: int, proc: subprocess.Popen, what: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"{what} exited: {proc.stdout.read() if proc.stdout else ''}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise AssertionError(f"{what} is not listening on {port}")


def _wait_answering_dns(port: int, proc: subprocess.Popen, what: str) -> None:
    """Until the DNS server on ``port`` answers a query (A of probe.test) over UDP."""
    query = (b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00"
             b"\x05probe\x04test\x00\x00\x01\x00\x01")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"{what} exited: {proc.stdout.read() if proc.stdout else ''}")
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(0.2)
            s.sendto(query, ("127.0.0.1", port))
            try:
                if s.recv(512)[:2] == b"\x12\x34":
                    return
            except OSError:  # no answer yet (timeout, or refused while it starts)
                pass
    raise AssertionError(f"{what} does not answer DNS on {port}")


def _tls_pair(directory: Path) -> Path:
    """A certificate for pebble's own https (127.0.0.1, localhost), self-signed: the CA file
    certbot trusts for the ACME API."""
    now = datetime.datetime.now(datetime.UTC)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "pebble api")])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName([
                x509.DNSName("localhost"),
                x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    (directory / "api.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (directory / "api.key").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    return directory / "api.pem"


@pytest.fixture(scope="module")
def pebble(stack, tmp_path_factory):
    missing = [tool for tool in NEEDED if not shutil.which(tool)]
    if missing:
        unavailable(f"not installed: {', '.join(missing)} (apt-get install pebble certbot)")
    work = tmp_path_factory.mktemp("pebble")
    api_ca = _tls_pair(work)
    dns, api, management = free_port(), free_port(), free_port()
    (work / "config.json").write_text(json.dumps({"pebble": {
        "listenAddress": f"127.0.0.1:{api}",
        "managementListenAddress": f"127.0.0.1:{management}",
        "certificate": str(work / "api.pem"), "privateKey": str(work / "api.key"),
        "httpPort": stack.port, "tlsPort": free_port(),
        "ocspResponderURL": "", "externalAccountBindingRequired": False,
    }}))
    env = dict(os.environ, PEBBLE_VA_NOSLEEP="1", PEBBLE_WFE_NONCEREJECT="0",
               PEBBLE_AUTHZREUSE="0")
    procs = [
        subprocess.Popen(["pebble-challtestsrv", "-dns01", f"127.0.0.1:{dns}", "-http01", "",
                          "-https01", "", "-tlsalpn01", "", "-defaultIPv4", "127.0.0.1",
                          "-defaultIPv6", "", "-management", f"127.0.0.1:{free_port()}"],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True),
    ]
    try:
        _wait_answering_dns(dns, procs[0], "pebble-challtestsrv")
        procs.append(subprocess.Popen(
            ["pebble", "-config", str(work / "config.json"), "-dnsserver", f"127.0.0.1:{dns}"],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
        _wait_listening(api, procs[1], "pebble")
        _wait_listening(management, procs[1], "pebble's management")
        context = ssl.create_default_context(cafile=str(api_ca))
        with urllib.request.urlopen(f"https://127.0.0.1:{management}/roots/0",
                                    context=context, timeout=30) as resp:
            (work / "root.pem").write_bytes(resp.read())
        yield {"server": f"https://127.0.0.1:{api}/dir", "api_ca": api_ca,
               "root": work / "root.pem"}
    finally:
        for proc in reversed(procs):
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()


def _served(stack, domain: str, cafile: Path) -> x509.Certificate:
    """The certificate served for *domain*, verified with *cafile* for that name."""
    with stack.tls_socket(domain, ssl.create_default_context(cafile=str(cafile))) as conn:
        return x509.load_der_x509_certificate(conn.getpeercert(binary_form=True))


def _nginx_workers(pid: int) -> set[int]:
    found = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        found |= {int(p) for p in (task / "children").read_text().split()}
    return found


def test_an_acme_site_gets_pebbles_certificate_and_renewal_reloads_nginx(
    stack, sites, pebble, tmp_path, monkeypatch
):
    target = dict(sites[0], tls="acme")
    catalogue = [target, *sites[1:]]
    extra = tmp_path / "vars.json"
    extra.write_text(json.dumps({"sitekit_sites": catalogue,
                                 "nginx_acme_server": pebble["server"]}))
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(pebble["api_ca"]))  # certbot → pebble's API
    config = stack.root / "var" / "letsencrypt"
    try:
        run = stack.playbook("-e", f"@{extra}", "--tags", "sites")
        assert run.returncode == 0, run.output[-5000:]
        assert "TASK [nginx : Obtain a certificate for each ACME site" in run.output

        # every domain of the site: pebble's certificate, verified with pebble's root
        first = None
        for domain in target["domains"]:
            cert = _served(stack, domain, pebble["root"])
            assert "Pebble" in cert.issuer.rfc4514_string()
            names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
            assert sorted(names.value.get_values_for_type(x509.DNSName)) == sorted(
                target["domains"])
            first = first or cert
        live = stack.root / "etc" / "tls" / target["name"] / "fullchain.pem"
        assert os.readlink(live) == str(config / "live" / target["name"] / "fullchain.pem")
        # the other sites keep the environment's CA
        assert stack.request(sites[1]["domains"][0])[0] == 200
        renewal = (config / "renewal" / f"{target['name']}.conf").read_text()
        # the hook tests the configuration, then signals nginx's master (its pid file)
        assert "renew_hook" in renewal and "kill -HUP" in renewal and "nginx.pid" in renewal
        assert "-t" in renewal

        again = stack.playbook("-e", f"@{extra}", "--tags", "sites")
        assert again.returncode == 0, again.output[-4000:]
        assert again.recap["changed"] == 0, again.output[-4000:]

        # renewal, as certbot's timer runs it (here forced): its deploy hook tests the
        # configuration and reloads nginx; the master stays, its workers are replaced
        master = int((stack.root / "run" / "nginx.pid").read_text())
        workers = _nginx_workers(master)
        renew = subprocess.run(
            ["certbot", "renew", "--force-renewal", "--cert-name", target["name"],
             "--config-dir", str(config), "--work-dir", str(config / "work"),
             "--logs-dir", str(config / "logs"), "--non-interactive",
             # certbot otherwise waits up to 8 minutes first when not run from a terminal
             "--no-random-sleep-on-renew"],
            capture_output=True, text=True, timeout=300, check=False)
        assert renew.returncode == 0, renew.stdout + renew.stderr
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and _nginx_workers(master) & workers:
            time.sleep(0.2)
        assert int((stack.root / "run" / "nginx.pid").read_text()) == master  # never stopped
        assert not _nginx_workers(master) & workers, "nginx was not reloaded"
        renewed = _served(stack, target["domains"][0], pebble["root"])
        assert renewed.serial_number != first.serial_number
        print(f"\nACME via pebble: {len(target['domains'])} domains, renewed serial "
              f"{first.serial_number:x} -> {renewed.serial_number:x}, nginx master {master} kept")
    finally:
        restored = stack.playbook("--tags", "sites")
    assert restored.returncode == 0, restored.output[-4000:]
    assert stack.request(target["domains"][0])[0] == 200  # the environment's CA again
