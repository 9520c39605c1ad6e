"""TLS on the local stack: every site over https with a certificate from the environment's CA
(verified, never skipped), http redirected to https, unknown names refused at the handshake,
HSTS per site, Mozilla's intermediate profile (TLS 1.2 and 1.3 only, its key-exchange groups and
cipher suites, certificates valid at most 366 days), certificates following the catalogue,
provided certificates from the inventory, and the ACME challenge location.

These run on the session's stack before test_local_stack.py (whose last test stops it) and
leave it deployed as they found it.
"""

from __future__ import annotations

import datetime
import http.client
import json
import re
import secrets
import socket
import ssl
import stat
import subprocess
import time

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.e2e.stack import brand

pytestmark = pytest.mark.e2e


def _https_response(stack, host: str, path: str = "/"):
    """The raw response (headers as a list, repeated ones kept) over verified https."""
    conn = http.client.HTTPSConnection("127.0.0.1", stack.tls_port, timeout=30)
    conn.sock = stack.tls_socket(host)
    try:
        conn.request("GET", path, headers={"Host": host})
        resp = conn.getresponse()
        resp.read()
        return resp.status, resp.getheaders()
    finally:
        conn.close()


def _peer_names(stack, name: str) -> list[str]:
    with stack.tls_socket(name) as conn:
        cert = conn.getpeercert()
    return [value for kind, value in cert["subjectAltName"] if kind == "DNS"]


def test_http_redirects_every_domain_to_https_with_its_host_and_uri(stack, sites):
    _redirects(stack, sites)


def _redirects(stack, sites):
    """Every domain's plain http requests redirected to https, nginx answering them."""
    for site in sites:
        for domain in site["domains"]:
            for path in ("/", "/some/page?x=1&y=2", "/static/x.css"):
                status, headers, _ = stack.request(domain, path, scheme="http")
                assert status == 301, (domain, path, status)
                assert headers["Location"] == f"https://{domain}:{stack.tls_port}{path}"
                assert "X-Sitekit-Site" not in headers  # nginx answered; Django never saw it
                assert "Strict-Transport-Security" not in headers  # never over plain http
            # the host as the client wrote it, normalised by nginx
            status, headers, _ = stack.request(f"{domain.upper()}.:{stack.port}", "/a",
                                               scheme="http")
            assert (status, headers["Location"]) == (301, f"https://{domain}:{stack.tls_port}/a")


def test_every_domain_is_served_over_https_with_a_certificate_for_its_name(stack, sites):
    for site in sites:
        for domain in site["domains"]:
            assert domain in _peer_names(stack, domain)
            status, headers, body = stack.request(domain)  # verified with the stack's CA
            assert (status, headers["X-Sitekit-Site"]) == (200, site["name"])
            assert f'<span class="brand-name">{brand(site["name"])}</span>' in body
    # the same certificate is not trusted without the environment's CA
    untrusted = ssl.create_default_context()
    with pytest.raises(ssl.SSLCertVerificationError):
        stack.tls_socket(sites[0]["domains"][0], untrusted).close()
    # and it names this site's domains only
    assert sites[1]["domains"][0] not in _peer_names(stack, sites[0]["domains"][0])


def test_a_name_no_site_claims_is_refused_during_the_handshake(stack, sites):
    for name in ("unknown.example.org", f"evil.{sites[0]['domains'][0]}", "localhost"):
        with pytest.raises(ssl.SSLError) as refused:
            stack.tls_socket(name).close()
        assert "UNRECOGNIZED_NAME" in str(refused.value).upper(), refused.value
    # no SNI at all (a client that connects by address)
    context = stack.tls_context()
    context.check_hostname = False
    with pytest.raises(ssl.SSLError) as refused:
        context.wrap_socket(socket.create_connection(
            ("127.0.0.1", stack.tls_port), timeout=30)).close()
    assert "UNRECOGNIZED_NAME" in str(refused.value).upper(), refused.value
    # a site's name in SNI and an unknown Host: the default server's 421 Misdirected Request,
    # never a site's answer
    request = "GET / HTTP/1.1\r\nHost: unknown.example.org\r\nConnection: close\r\n\r\n"
    status, headers = stack.raw(request, server_name=sites[0]["domains"][0])
    assert status == 421
    assert "X-Sitekit-Site" not in headers


@pytest.mark.parametrize(
    ("version", "accepted"),
    [(ssl.TLSVersion.TLSv1_1, False), (ssl.TLSVersion.TLSv1_2, True),
     (ssl.TLSVersion.TLSv1_3, True)],
)
def test_tls_1_2_and_1_3_only(stack, sites, version, accepted):
    domain = sites[0]["domains"][0]
    context = stack.tls_context(minimum=version, maximum=version)
    if not accepted:
        context.set_ciphers("DEFAULT:@SECLEVEL=0")  # let this client offer TLS 1.1
        with pytest.raises(ssl.SSLError) as refused:
            stack.tls_socket(domain, context).close()
        # the server's alert, not the client declining to try
        assert "ALERT_PROTOCOL_VERSION" in str(refused.value).upper(), refused.value
        return
    with stack.tls_socket(domain, context) as conn:
        assert conn.version() == {ssl.TLSVersion.TLSv1_2: "TLSv1.2",
                                  ssl.TLSVersion.TLSv1_3: "TLSv1.3"}[version]
        cipher = conn.cipher()[0]
        if version == ssl.TLSVersion.TLSv1_2:
            assert cipher.startswith("ECDHE-") and ("GCM" in cipher or "CHACHA20" in cipher)


# Mozilla's "intermediate" configuration (https://ssl-config.mozilla.org/guidelines/5.7.json),
# written out here so that a change to the role's defaults is caught, not followed.
INTERMEDIATE_GROUPS = ("X25519", "prime256v1", "secp384r1")
INTERMEDIATE_TLS13 = ("TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384",
                      "TLS_CHACHA20_POLY1305_SHA256")
INTERMEDIATE_TLS12 = (
    "ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256",
    "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-RSA-AES256-GCM-SHA384",
    "ECDHE-ECDSA-CHACHA20-POLY1305", "ECDHE-RSA-CHACHA20-POLY1305",
    "DHE-RSA-AES128-GCM-SHA256", "DHE-RSA-AES256-GCM-SHA384", "DHE-RSA-CHACHA20-POLY1305",
)
INTERMEDIATE_LIFESPAN = datetime.timedelta(days=366)


def _s_client(stack, domain: str, *options: str) -> str | None:
    """One handshake by ``openssl s_client`` (the certificate verified with the stack's CA):
    the key exchange it used (``X25519``, ``prime256v1``, ...), or None when it failed."""
    proc = subprocess.run(
        ["openssl", "s_client", "-connect", f"127.0.0.1:{stack.tls_port}",
         "-servername", domain, "-CAfile", str(stack.ca), "-verify_return_error", *options],
        input="", capture_output=True, text=True, timeout=30, check=False)
    if proc.returncode != 0:
        return None
    key = re.search(r"^Server Temp Key: (?:ECDH, )?([^,]+),", proc.stdout, re.MULTILINE)
    assert key, proc.stdout
    return {"P-256": "prime256v1", "P-384": "secp384r1"}.get(key[1], key[1])


def test_only_the_intermediate_key_exchange_groups_are_accepted(stack, sites):
    domain = sites[0]["domains"][0]
    for group in INTERMEDIATE_GROUPS:  # each one alone: accepted
        assert _s_client(stack, domain, "-tls1_3", "-groups", group) == group, group
    # OpenSSL's own defaults beyond the profile: refused (X448 and secp521r1 with ECDHE, the
    # FFDHE groups of TLS 1.3)
    for group in ("X448", "secp521r1", "ffdhe2048", "ffdhe3072"):
        assert _s_client(stack, domain, "-tls1_3", "-groups", group) is None, group
    # TLS 1.2: the client's first choice is taken when the profile has it, never otherwise
    # (P-256 is offered last: the certificate's curve, which a TLS 1.2 client must accept)
    for group in INTERMEDIATE_GROUPS:
        offered = ":".join(dict.fromkeys([group, "prime256v1"]))
        assert _s_client(stack, domain, "-tls1_2", "-groups", offered) == group, group
    for group in ("X448", "secp521r1"):
        offered = f"{group}:prime256v1"
        assert _s_client(stack, domain, "-tls1_2", "-groups", offered) == "prime256v1", group


def test_only_the_intermediate_cipher_suites_are_accepted(stack, sites):
    domain = sites[0]["domains"][0]
    # TLS 1.3: its three suites, not OpenSSL's CCM ones
    for suite in (*INTERMEDIATE_TLS13, "TLS_AES_128_CCM_SHA256", "TLS_AES_128_CCM_8_SHA256"):
        accepted = _s_client(stack, domain, "-tls1_3", "-ciphersuites", suite) is not None
        assert accepted == (suite in INTERMEDIATE_TLS13), suite
    # TLS 1.2: every cipher this client knows, one at a time. The sites' certificates are
    # ECDSA and there is no dhparam file: of the profile's list, its ECDHE-ECDSA ciphers.
    client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client.set_ciphers("ALL:@SECLEVEL=0")
    known = [c["name"] for c in client.get_ciphers() if c["protocol"] == "TLSv1.2"]
    assert len(known) > 30 and set(INTERMEDIATE_TLS12) <= set(known)
    accepted = []
    for name in known:
        context = stack.tls_context(minimum=ssl.TLSVersion.TLSv1_2,
                                    maximum=ssl.TLSVersion.TLSv1_2)
        context.set_ciphers(f"{name}:@SECLEVEL=0")
        try:
            with stack.tls_socket(domain, context) as conn:
                assert conn.cipher()[0] == name
                accepted.append(name)
        except ssl.SSLError:
            pass
    assert sorted(accepted) == sorted(c for c in INTERMEDIATE_TLS12 if c.startswith("ECDHE-ECDSA"))
    # the RSA and DHE ciphers of the list cannot be shown by a handshake here: nginx is told
    # exactly the profile's list (and its groups, and its protocols)
    conf = (stack.root / "etc" / "nginx" / "nginx.conf").read_text()
    assert f"ssl_ciphers {':'.join(INTERMEDIATE_TLS12)};" in conf
    assert f"ssl_ecdh_curve {':'.join(INTERMEDIATE_GROUPS)};" in conf
    assert "ssl_protocols TLSv1.2 TLSv1.3;" in conf


def test_self_signed_certificates_are_valid_at_most_366_days(stack, sites):
    now = datetime.datetime.now(datetime.UTC)
    for site in sites:
        with stack.tls_socket(site["domains"][0]) as conn:
            served = x509.load_der_x509_certificate(conn.getpeercert(binary_form=True))
        lifespan = served.not_valid_after_utc - served.not_valid_before_utc
        assert lifespan <= INTERMEDIATE_LIFESPAN, (site["name"], lifespan)
        assert served.not_valid_before_utc <= now <= served.not_valid_after_utc


def test_hsts_is_on_every_https_response_once(stack, sites):
    for site in sites:
        domain = site["domains"][0]
        for path in ("/", "/healthz", "/no-such-page", f"/static/{site['name']}/site.css"):
            status, headers = _https_response(stack, domain, path)
            values = [v for k, v in headers if k.lower() == "strict-transport-security"]
            assert values == ["max-age=31536000; includeSubDomains"], (domain, path, status)


def test_certificate_files_are_private(host, stack, sites):
    tls = host.file(str(stack.root / "etc" / "tls"))
    assert tls.is_directory and tls.mode & 0o007 == 0, oct(tls.mode)
    ca_key = host.file(str(stack.root / "etc" / "tls-ca" / "ca.key"))
    assert ca_key.is_file and ca_key.mode == 0o600, oct(ca_key.mode)
    for site in sites:
        directory = stack.root / "etc" / "tls" / site["name"]
        assert host.file(str(directory)).mode & 0o007 == 0
        key = host.file(str(directory / "privkey.pem"))
        assert key.is_file and key.mode == 0o600, oct(key.mode)
        cert = x509.load_pem_x509_certificate((directory / "fullchain.pem").read_bytes())
        ca = x509.load_pem_x509_certificate(stack.ca.read_bytes())
        assert cert.issuer == ca.subject
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        assert sorted(names.value.get_values_for_type(x509.DNSName)) == sorted(site["domains"])


def test_the_acme_challenge_location_serves_the_webroot_over_http(stack, sites):
    _acme_challenges(stack, sites)


def _acme_challenges(stack, sites):
    """Every domain's ACME challenges served over http from the webroot."""
    webroot = stack.root / "var" / "acme" / ".well-known" / "acme-challenge"
    token = "sitekit-test-token_0123456789"
    (webroot / token).write_text("token.thumbprint")
    try:
        for site in sites:
            for domain in site["domains"]:
                status, headers, body = stack.request(
                    domain, f"/.well-known/acme-challenge/{token}", scheme="http")
                assert (status, body) == (200, "token.thumbprint"), domain
                assert headers["Content-Type"] == "text/plain"
        status, _, _ = stack.request(sites[0]["domains"][0], "/.well-known/acme-challenge/nope",
                                     scheme="http")
        assert status == 404
    finally:
        (webroot / token).unlink()


def _catalogue_run(stack, tmp_path, catalogue, *extra):
    extra_vars = tmp_path / "vars.json"
    extra_vars.write_text(json.dumps({"sitekit_sites": catalogue, **dict(extra)}))
    return stack.playbook("-e", f"@{extra_vars}", "--tags", "sites")


def test_a_new_domain_is_covered_and_hsts_follows_the_sites_policy(stack, sites, tmp_path):
    changed = [dict(s) for s in sites]
    target, policy = changed[0], changed[1]
    new_domain = f"shop.{target['domains'][0]}"
    target["domains"] = [*target["domains"], new_domain]
    policy["hsts"] = "host"
    run = _catalogue_run(stack, tmp_path, changed)
    try:
        assert run.returncode == 0, run.output[-4000:]
        assert new_domain in _peer_names(stack, new_domain)
        status, headers, _ = stack.request(new_domain)
        assert (status, headers["X-Sitekit-Site"]) == (200, target["name"])
        _, headers = _https_response(stack, policy["domains"][0], "/")
        values = [v for k, v in headers if k.lower() == "strict-transport-security"]
        assert values == ["max-age=31536000"]
    finally:
        restored = stack.playbook("--tags", "sites")
    assert restored.returncode == 0, restored.output[-4000:]
    assert new_domain not in _peer_names(stack, target["domains"][0])
    with pytest.raises(ssl.SSLError):
        stack.tls_socket(new_domain).close()


# --- provided certificates ---------------------------------------------------------------


def _own_ca(tmp_path, domains):
    """A CA of the test's own and a certificate it issued for *domains*: (ca, cert, key) PEMs."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test provided CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(days=1))
          .not_valid_after(now + datetime.timedelta(days=30))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, domains[0])]))
            .issuer_name(ca_name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(d) for d in domains]),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    ca_file = tmp_path / "provided-ca.pem"
    ca_file.write_bytes(ca.public_bytes(pem))
    return ca_file, cert.public_bytes(pem).decode(), key.private_bytes(
        pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()


def _provided(tmp_path, sites):
    """The catalogue with its last site on a certificate of the test's own CA: (catalogue,
    that site, the CA's file, the extra variable that holds the certificate, its key)."""
    changed = [dict(s) for s in sites]
    target = changed[-1]
    target["tls"] = "provided"
    ca_file, cert, key = _own_ca(tmp_path, target["domains"])
    vault = ("sitekit_tls_certificates", {target["name"]: {"certificate": cert, "key": key}})
    return changed, target, ca_file, vault, key


def test_a_provided_certificate_is_served_and_its_key_kept_private(stack, sites, tmp_path):
    changed, target, ca_file, vault, key = _provided(tmp_path, sites)
    run = _catalogue_run(stack, tmp_path, changed, vault)
    try:
        assert run.returncode == 0, run.output[-4000:]
        assert key.strip().splitlines()[1] not in run.output  # never printed
        context = ssl.create_default_context(cafile=str(ca_file))
        for domain in target["domains"]:
            with stack.tls_socket(domain, context) as conn:  # verified with the test's own CA
                assert conn.getpeercert()["issuer"] == ((("commonName", "test provided CA"),),)
        directory = stack.root / "etc" / "tls" / target["name"]
        assert stat.S_IMODE((directory / "privkey.pem").stat().st_mode) == 0o600
        assert (directory / "privkey.pem").read_text().strip() == key.strip()
        # the other sites keep the environment's CA
        assert stack.request(sites[0]["domains"][0])[0] == 200
    finally:
        restored = stack.playbook("--tags", "sites")
    assert restored.returncode == 0, restored.output[-4000:]
    assert stack.request(target["domains"][0])[0] == 200  # the environment's CA again


def test_a_provided_site_without_its_certificate_stops_the_preflight(stack, sites, tmp_path):
    changed = [dict(s) for s in sites]
    changed[-1]["tls"] = "provided"
    before = {p: p.stat().st_mtime_ns for p in (stack.root / "etc").rglob("*")}
    run = _catalogue_run(stack, tmp_path, changed)
    assert run.returncode != 0
    assert (f"local: site '{changed[-1]['name']}': field 'tls': 'provided' but "
            "sitekit_tls_certificates has no certificate and key for it") in run.output
    assert "TASK [nginx : Put every TLS site's certificate and key in place]" not in run.output
    assert {p: p.stat().st_mtime_ns for p in (stack.root / "etc").rglob("*")} == before


def test_a_provided_certificate_for_other_names_is_refused_naming_them(stack, sites, tmp_path):
    changed = [dict(s) for s in sites]
    target = changed[-1]
    target["tls"] = "provided"
    _, cert, key = _own_ca(tmp_path, ["elsewhere.example.org"])
    before = {p: p.stat().st_mtime_ns for p in (stack.root / "etc" / "nginx").rglob("*")}
    run = _catalogue_run(stack, tmp_path, changed,
                         ("sitekit_tls_certificates",
                          {target["name"]: {"certificate": cert, "key": key}}))
    assert run.returncode != 0
    assert (f"site '{target['name']}': the provided certificate does not cover "
            f"{', '.join(target['domains'])}") in run.output
    assert {p: p.stat().st_mtime_ns for p in (stack.root / "etc" / "nginx").rglob("*")} == before
    assert stack.request(target["domains"][0])[0] == 200


# --- certificates chosen by name ---------------------------------------------------------


def _certificate_directives(stack) -> dict[str, int]:
    """Live configuration file name -> how many ssl_certificate directives it holds."""
    sites_dir = stack.root / "etc" / "nginx" / "sites"
    return {p.name: len(re.findall(r"^\s*ssl_certificate\s", p.read_text(), re.MULTILINE))
            for p in sorted(sites_dir.glob("*.conf"))}


def test_by_name_one_https_server_holds_every_sites_certificate(stack, sites, tmp_path):
    """sitekit_nginx_certificates: sni (auto's choice above 256 TLS sites), on the small
    stack: one TLS context picks each site's certificate by the name the client asks for,
    a provided certificate included; unknown names are refused as before, and per-site
    certificates come back with the setting's default."""
    per_site = _certificate_directives(stack)
    assert per_site["00-default.conf"] == 0
    assert all(per_site[f"{s['name']}.conf"] == 1 for s in sites), per_site
    changed, target, ca_file, vault, _ = _provided(tmp_path, sites)
    by_sni = ("sitekit_nginx_certificates", "sni")
    run = _catalogue_run(stack, tmp_path, changed, vault, by_sni)
    try:
        assert run.returncode == 0, run.output[-4000:]
        by_name = _certificate_directives(stack)
        assert by_name == {**{name: 0 for name in per_site}, "00-default.conf": 1}, by_name
        for site in sites[:-1]:
            for domain in site["domains"]:
                assert sorted(_peer_names(stack, domain)) == sorted(site["domains"])
                status, headers, _ = stack.request(domain)  # verified with the stack's CA
                assert (status, headers["X-Sitekit-Site"]) == (200, site["name"])
        context = ssl.create_default_context(cafile=str(ca_file))
        for domain in target["domains"]:
            with stack.tls_socket(domain, context) as conn:  # the provided one, by its name
                assert conn.getpeercert()["issuer"] == ((("commonName", "test provided CA"),),)
        for name in ("unknown.example.org", f"evil.{sites[0]['domains'][0]}"):
            with pytest.raises(ssl.SSLError) as refused:
                stack.tls_socket(name).close()
            assert "UNRECOGNIZED_NAME" in str(refused.value).upper(), refused.value
        no_sni = stack.tls_context()
        no_sni.check_hostname = False
        with pytest.raises(ssl.SSLError):
            no_sni.wrap_socket(socket.create_connection(
                ("127.0.0.1", stack.tls_port), timeout=30)).close()
        again = _catalogue_run(stack, tmp_path, changed, vault, by_sni)
        assert again.returncode == 0 and again.recap["changed"] == 0, again.output[-4000:]
    finally:
        restored = stack.playbook("--tags", "sites")
    assert restored.returncode == 0, restored.output[-4000:]
    assert _certificate_directives(stack) == per_site
    for site in sites:
        assert stack.request(site["domains"][0])[0] == 200  # the environment's CA again


def _http_servers(stack) -> dict[str, int]:
    """Live configuration file name -> how many servers listen on the http port in it."""
    sites_dir = stack.root / "etc" / "nginx" / "sites"
    listen = re.compile(rf"^\s*listen 127\.0\.0\.1:{stack.port}[ ;]", re.MULTILINE)
    return {p.name: len(listen.findall(p.read_text())) for p in sorted(sites_dir.glob("*.conf"))}


def test_by_name_with_the_shared_log_one_http_server_answers_every_tls_site(
        stack, sites, tmp_path):
    """With certificates chosen by name and the shared access log (auto's choices for large
    catalogues), the TLS sites' http side is one server in 00-default.conf: every domain is
    still redirected to https and answers ACME challenges, the shared log names the site of
    each redirect, and a Host no site claims is still closed unanswered."""
    per_site = _http_servers(stack)
    assert per_site == {**{f"{s['name']}.conf": 1 for s in sites}, "00-default.conf": 1}
    layout = (("sitekit_nginx_certificates", "sni"), ("sitekit_nginx_logs", "shared"))
    run = _catalogue_run(stack, tmp_path, sites, *layout)
    try:
        assert run.returncode == 0, run.output[-4000:]
        # the default server and the one http server of every TLS site
        assert _http_servers(stack) == {**{name: 0 for name in per_site}, "00-default.conf": 2}
        _redirects(stack, sites)
        _acme_challenges(stack, sites)
        marker = f"/sitekit-http-{secrets.token_hex(8)}"
        for site in sites:
            assert stack.request(site["domains"][-1], marker, scheme="http")[0] == 301
        log = stack.root / "log" / "nginx" / "access.log"
        deadline = time.monotonic() + 15  # nginx logs a request once it has answered it
        while len(lines := [ln for ln in log.read_text().splitlines() if marker in ln]) \
                < len(sites) and time.monotonic() < deadline:
            time.sleep(0.1)
        for site in sites:
            line = next((ln for ln in lines if f" {site['domains'][-1]} " in ln), None)
            # the shared log's first field: the site whose name the Host is
            assert line is not None and line.split(" ", 1)[0] == site["name"], (site, lines)
        assert stack.raw("GET / HTTP/1.1\r\nHost: unknown.example.org\r\n"
                         "Connection: close\r\n\r\n") is None  # 444, as before
        again = _catalogue_run(stack, tmp_path, sites, *layout)
        assert again.returncode == 0 and again.recap["changed"] == 0, again.output[-4000:]
    finally:
        restored = stack.playbook("--tags", "sites")
    assert restored.returncode == 0, restored.output[-4000:]
    assert _http_servers(stack) == per_site
    _redirects(stack, sites[:1])
