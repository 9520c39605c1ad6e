#!/usr/bin/python
# Puts every site's certificate and key where its server block expects them.
#
# Why a module of our own rather than community.crypto's openssl_* modules: those issue one
# certificate per task, so a catalogue costs a task (a module round trip, plus a loop item's
# stat) per site and file. This one issues or checks every site's certificate in one call:
# measured with 1,000 sites / 5,000 domains, rendering the configuration and issuing all 1,000
# certificates took 4.5 s (docs/tls.md); a looped task costs about a second per site
# (bench/README.md: 16 minutes for 1,000 server blocks before site_files).

from __future__ import annotations

import datetime
import grp
import hashlib
import json
import os
import re
import shutil
import stat

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.sitekit.deploy.plugins.module_utils.atomic import (
    symlink_atomic,
    write_atomic,
)

try:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, NameOID
    HAS_CRYPTOGRAPHY = True
except ImportError:  # reported by the module
    HAS_CRYPTOGRAPHY = False

DOCUMENTATION = r"""
---
module: tls_certificates
short_description: Every site's certificate and key, in one directory per site
description:
  - For each site of O(sites), makes C(<dir>/<site>/<certificate_file>) (the certificate
    followed by its chain) and C(<dir>/<site>/<key_file>) (its private key, mode 0600, or 0640
    with O(group)) by the site's C(mode).
  - C(self-signed) - issued by the environment's own CA (C(<ca_dir>/ca.pem), created once,
    its key never leaves C(ca_dir)) for every domain of the site; issued again when the
    domains change, the CA changed, fewer than O(renew_days) days are left or it is valid
    longer than 366 days (Mozilla's intermediate profile; those issued here are valid 365).
  - C(provided) - the certificate and key given in O(provided) (from ansible-vault); the
    module fails, naming the site, when they are missing, do not match each other or do not
    cover every domain of the site.
  - C(acme) - links to certbot's C(<acme_live_dir>/<site>/) once certbot has a certificate
    there; until then a self-issued placeholder, so that nginx can start and answer the ACME
    challenges. Sites whose certbot certificate is missing or does not cover exactly their
    domains are returned in RV(acme_pending).
  - Directories in O(dir) of sites not in O(sites) are removed.
  - A self-signed site whose certificate and key files are as this module last left them (the
    same inode, size, modification and change times, mode and group, recorded in
    C(<dir>/.checked.json)), for the same domains and CA, is not read again; only its renewal
    date is compared with today's.
  - Supports check mode; private keys never appear in results.
version_added: "0.3.0"
options:
  dir:
    description: Directory holding one directory per site.
    type: path
    required: true
  ca_dir:
    description: Directory of the environment's CA (C(ca.pem), C(ca.key)) for self-signed sites.
    type: path
    required: true
  ca_name:
    description: Common name of the CA.
    type: str
    default: sitekit local CA
  sites:
    description: >-
      The sites served over TLS, each C(name), C(domains), C(mode), as a list or as one JSON
      text of it (how the action hands over O(sites_from); Ansible's checks and transfer of
      10,000 sites as a list took about a second). Required unless O(sites_from).
    type: raw
  sites_from:
    description:
      - The name of the preflight's model variable whose list is O(sites) (C(sitekit_tls_sites)),
        read by the action where the preflight registered it (C(sitekit_preflight)) rather than
        templated as an argument; the empty name is no site. Give O(sites) or this.
    type: str
  provided:
    description: Per site name, C(certificate) (PEM, with its chain) and C(key) (PEM).
    type: dict
    default: {}
  acme_live_dir:
    description: certbot's C(live) directory.
    type: path
    default: /etc/letsencrypt/live
  certificate_file:
    description: File name of a site's certificate (and chain).
    type: str
    default: fullchain.pem
  key_file:
    description: File name of a site's private key.
    type: str
    default: privkey.pem
  name_pattern:
    description:
      - The regular expression a site's name matches (C(sitekit.runtime.rules.SITE_NAME_RE),
        published by the preflight as C(sitekit_layout.name_pattern)). Only directories so
        named are taken for a site's and removed when the site has no TLS any more.
    type: str
    required: true
  renew_days:
    description: A self-signed certificate with fewer days left is issued again.
    type: int
    default: 30
  group:
    description:
      - The group of the processes that read the sites' certificates and keys themselves when
        nginx picks each session's certificate by name (its workers' group). While they do
        (O(share), or the running configuration per O(live_config)), O(dir), each site's
        directory and files belong to it, and keys are mode 0640.
      - Otherwise, or unset, they belong to the module's own group and keys are mode 0600
        (nginx's master reads them as root).
      - The CA's directory and key are never the group's.
    type: str
  share:
    description: Whether the configuration about to be installed has O(group) read the keys.
    type: bool
    default: true
  live_config:
    description:
      - A file of the running configuration. While it holds O(live_marker), the running nginx
        still picks certificates by name, so the files stay O(group)'s even when O(share) is
        false; they are taken back by the first run after that configuration is gone (a
        deploy that stops before it installs the new one leaves nginx able to read them).
    type: path
  live_marker:
    description: What O(live_config) holds when the running nginx picks certificates by name.
    type: str
requirements: [cryptography]
author:
  - sitekit
"""

RETURN = r"""
changes:
  description: What changed (or would), one line per file or directory.
  type: list
  elements: str
  returned: always
ocsp:
  description: Sites whose certificate names an OCSP responder (nginx can staple its answers).
  type: list
  elements: str
  returned: always
shared:
  description: Whether the sites' files are O(group)'s (readable by it) after this run.
  type: bool
  returned: always
acme:
  description: The C(acme) sites (certbot is installed and run for them).
  type: list
  elements: str
  returned: always
acme_pending:
  description: C(acme) sites that certbot has yet to issue (or re-issue) a certificate for.
  type: list
  elements: str
  returned: always
"""

# What the module last checked of each self-signed site, in its directory (never a site's name).
CHECKED_FILE = ".checked.json"

# How long a self-signed certificate is valid, from its notBefore to its notAfter: Mozilla's
# "intermediate" profile (docs/tls.md) allows at most MAX_LIFETIME_DAYS.
LIFETIME_DAYS = 365
MAX_LIFETIME_DAYS = 366
CA_LIFETIME_DAYS = 3650


def _now():
    return datetime.datetime.now(datetime.UTC)


def _not_after(cert):
    value = getattr(cert, "not_valid_after_utc", None)
    if value is None:  # cryptography < 42
        value = cert.not_valid_after.replace(tzinfo=datetime.UTC)
    return value


def _lifetime(cert):
    """How long ``cert`` is valid, from its notBefore to its notAfter."""
    before = getattr(cert, "not_valid_before_utc", None)
    if before is None:  # cryptography < 42
        before = cert.not_valid_before.replace(tzinfo=datetime.UTC)
    return _not_after(cert) - before


def _read(path):
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        return None


def _load_cert(path):
    data = _read(path)
    if data is None:
        return None
    try:
        return x509.load_pem_x509_certificate(data)
    except ValueError:
        return None


def _load_key(path):
    data = _read(path)
    if data is None:
        return None
    try:
        return serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError):
        return None


def _pem_key(key):
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _pem_cert(cert):
    return cert.public_bytes(serialization.Encoding.PEM)


def _public(key):
    return key.public_key().public_bytes(serialization.Encoding.DER,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)


def _cert_public(cert):
    return cert.public_key().public_bytes(serialization.Encoding.DER,
                                          serialization.PublicFormat.SubjectPublicKeyInfo)


def _names(cert):
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return []
    return [n.lower() for n in ext.value.get_values_for_type(x509.DNSName)]


def _covers(names, domain):
    if domain in names:
        return True
    if domain.startswith("*."):
        return False
    parent = domain.split(".", 1)[1] if "." in domain else ""
    return bool(parent) and f"*.{parent}" in names


def _has_ocsp(cert):
    try:
        ext = cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess)
    except x509.ExtensionNotFound:
        return False
    return any(d.access_method == AuthorityInformationAccessOID.OCSP for d in ext.value)


def _issue(subject_cn, domains, key, issuer_cert, issuer_key, days):
    not_before = _now() - datetime.timedelta(minutes=5)  # a client's clock a little behind
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject_cn[:64])]))
        .issuer_name(issuer_cert.subject if issuer_cert is not None
                     else x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject_cn[:64])]))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_before + datetime.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(d) for d in domains]),
                       critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
    )
    return builder.sign(issuer_key if issuer_key is not None else key, hashes.SHA256())


def _issue_ca(name, key):
    now = _now()
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name[:64])])
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=CA_LIFETIME_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False,
                                     key_encipherment=False, data_encipherment=False,
                                     key_agreement=False, key_cert_sign=True, crl_sign=True,
                                     encipher_only=False, decipher_only=False), critical=True)
        .sign(key, hashes.SHA256())
    )


def _signed_by(cert, ca_cert):
    if cert.issuer != ca_cert.subject:
        return False
    try:
        cert.verify_directly_issued_by(ca_cert)
        return True
    except AttributeError:  # cryptography < 40
        from cryptography.hazmat.primitives.asymmetric import ec as _ec
        try:
            ca_cert.public_key().verify(cert.signature, cert.tbs_certificate_bytes,
                                        _ec.ECDSA(cert.signature_hash_algorithm))
            return True
        except Exception:
            return False
    except Exception:
        return False


class Certificates:
    def __init__(self, module):
        self.module = module
        self.p = module.params
        self.check = module.check_mode
        self.changes = []
        self.ocsp = []
        self.acme_pending = []
        self.acme_sites = []
        self._ca = None
        group = self.p.get("group")
        if group and not self.p["share"] and not self._live_reads_keys():
            group = None
        self.shared = bool(group)
        if group:
            try:
                self.gid = grp.getgrnam(group).gr_gid
            except KeyError:
                module.fail_json(msg=f"group {group!r} does not exist on the host")
        else:
            self.gid = os.getegid()
        self.key_mode = 0o640 if group else 0o600
        self.checked_path = os.path.join(self.p["dir"], CHECKED_FILE)
        self.checked = self._load_checked()
        self.still = {}  # what this run checked or issued: the next run's record

    def mkdir(self, path, mode, gid=-1):
        if not os.path.isdir(path):
            self.changes.append(f"{path}: directory created")
            if not self.check:
                os.makedirs(path, mode=mode, exist_ok=True)
                os.chown(path, -1, gid)
                os.chmod(path, mode)
            return
        st = os.stat(path)
        if (st.st_mode & 0o7777) != mode or gid not in (-1, st.st_gid):
            self.changes.append(f"{path}: mode {mode:04o}"
                                + (f", group {gid}" if gid not in (-1, st.st_gid) else ""))
            if not self.check:
                os.chown(path, -1, gid)
                os.chmod(path, mode)

    def write(self, path, data, mode, what, gid=-1):
        """``path`` holds ``data`` with ``mode`` (and group ``gid``, unless -1)."""
        if os.path.islink(path) or _read(path) != data:
            stale = True
        else:
            st = os.stat(path)
            stale = (st.st_mode & 0o7777) != mode or gid not in (-1, st.st_gid)
        if stale:
            self.changes.append(f"{path}: {what}")
            if not self.check:
                if os.path.islink(path):
                    os.unlink(path)
                write_atomic(path, data, mode, gid=gid)

    def site_file(self, path, data, what, key=False):
        """A file of a site's directory: its key (0600, or 0640 for the group) or certificate."""
        self.write(path, data, self.key_mode if key else 0o644, what, gid=self.gid)

    def link(self, path, target, what):
        if os.path.islink(path) and os.readlink(path) == target:
            return
        self.changes.append(f"{path}: {what}")
        if not self.check:
            symlink_atomic(path, target)

    def ca(self):
        """The CA's (certificate, key), created on first use."""
        if self._ca is None:
            ca_dir = self.p["ca_dir"]
            cert_path, key_path = os.path.join(ca_dir, "ca.pem"), os.path.join(ca_dir, "ca.key")
            cert, key = _load_cert(cert_path), _load_key(key_path)
            if (cert is None or key is None or _cert_public(cert) != _public(key)
                    or _not_after(cert) < _now() + datetime.timedelta(days=LIFETIME_DAYS)):
                self.mkdir(ca_dir, 0o755)
                key = ec.generate_private_key(ec.SECP256R1())
                cert = _issue_ca(self.p["ca_name"], key)
                self.write(key_path, _pem_key(key), 0o600, "CA key created")
                self.write(cert_path, _pem_cert(cert), 0o644, "CA certificate created")
            self._ca = (cert, key)
            self.ca_digest = hashlib.sha256(_pem_cert(cert)).hexdigest()
        return self._ca

    def site_key(self, path):
        key = _load_key(path)
        if key is None or os.path.islink(path):
            key = ec.generate_private_key(ec.SECP256R1())
            self.site_file(path, _pem_key(key), "key created", key=True)
        else:
            self.site_file(path, _read(path), f"key mode {self.key_mode:04o}", key=True)
        return key

    def _live_reads_keys(self):
        """Whether the running configuration has nginx's workers read the keys (its file
        O(live_config) holds O(live_marker))."""
        path, marker = self.p.get("live_config"), self.p.get("live_marker")
        if not path or not marker:
            return False
        data = _read(path)
        return data is not None and marker.encode() in data

    def _load_checked(self):
        try:
            with open(self.checked_path, encoding="utf-8") as f:
                checked = json.load(f)
        except (OSError, ValueError):
            return {}
        return checked if isinstance(checked, dict) else {}

    def _stamp(self, path, mode):
        """What identifies ``path`` as it is (None unless a regular file with ``mode`` and the
        sites' group): any write, chmod or chown changes its change time."""
        try:
            st = os.lstat(path)
        except OSError:
            return None
        if not stat.S_ISREG(st.st_mode) or (st.st_mode & 0o7777) != mode \
                or st.st_gid != self.gid:
            return None
        return [st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]

    def _record(self, site, cert_path, key_path, cert):
        """What the next run compares (in check mode nothing was written: nothing to record)."""
        if self.check:
            return
        stamps = [self._stamp(cert_path, 0o644), self._stamp(key_path, self.key_mode)]
        if None not in stamps:
            self.still[site["name"]] = {
                "domains": sorted(site["domains"]), "ca": self.ca_digest, "files": stamps,
                "not_after": _not_after(cert).isoformat()}

    def _unchanged(self, site, cert_path, key_path):
        """Whether the site's files are as the last run checked them, for the same domains and
        CA, and the certificate is not due for renewal."""
        entry = self.checked.get(site["name"])
        if not isinstance(entry, dict) or entry.get("ca") != self.ca_digest \
                or entry.get("domains") != sorted(site["domains"]):
            return False
        stamps = [self._stamp(cert_path, 0o644), self._stamp(key_path, self.key_mode)]
        if None in stamps or entry.get("files") != stamps:
            return False
        try:
            not_after = datetime.datetime.fromisoformat(entry["not_after"])
        except (KeyError, TypeError, ValueError):
            return False
        if not_after < _now() + datetime.timedelta(days=self.p["renew_days"]):
            return False
        self.still[site["name"]] = entry
        return True

    def save_checked(self):
        if self.check or self.still == self.checked:
            return
        data = json.dumps(self.still, sort_keys=True).encode()
        if os.path.isdir(self.p["dir"]):
            write_atomic(self.checked_path, data, 0o600)

    def self_signed(self, site, cert_path, key_path):
        ca_cert, ca_key = self.ca()
        if self._unchanged(site, cert_path, key_path):
            return
        key = self.site_key(key_path)
        cert = None if os.path.islink(cert_path) else _load_cert(cert_path)
        reason = None
        if cert is None:
            reason = "issued"
        elif not _signed_by(cert, ca_cert):
            reason = "issued again (not by this environment's CA)"
        elif sorted(_names(cert)) != sorted(site["domains"]):
            reason = "issued again (domains changed)"
        elif _cert_public(cert) != _public(key):
            reason = "issued again (key changed)"
        elif _not_after(cert) < _now() + datetime.timedelta(days=self.p["renew_days"]):
            reason = "renewed"
        elif _lifetime(cert) > datetime.timedelta(days=MAX_LIFETIME_DAYS):
            reason = f"issued again (valid longer than {MAX_LIFETIME_DAYS} days)"
        if reason:
            cert = _issue(site["domains"][0], site["domains"], key, ca_cert, ca_key, LIFETIME_DAYS)
            self.site_file(cert_path, _pem_cert(cert),
                           f"{reason} by the environment's CA for {len(site['domains'])} "
                           "domain(s)")
        else:
            self.site_file(cert_path, _read(cert_path), "certificate mode 0644")
        self._record(site, cert_path, key_path, cert)

    def provided(self, site, cert_path, key_path):
        name = site["name"]
        given = self.p["provided"].get(name) or {}
        cert_pem, key_pem = given.get("certificate"), given.get("key")
        if not cert_pem or not key_pem:
            self.module.fail_json(
                msg=f"site '{name}': TLS is 'provided' but sitekit_tls_certificates['{name}'] "
                    "has no certificate and key: add them to the environment's vault "
                    "(see docs/operations.md: rotate a certificate)")
        cert_pem = cert_pem.strip() + "\n"
        key_pem = key_pem.strip() + "\n"
        try:
            cert = x509.load_pem_x509_certificate(cert_pem.encode())
        except ValueError as exc:
            self.module.fail_json(msg=f"site '{name}': the provided certificate is not PEM: {exc}")
        try:
            key = serialization.load_pem_private_key(key_pem.encode(), password=None)
        except (ValueError, TypeError):
            self.module.fail_json(msg=f"site '{name}': the provided key is not an unencrypted "
                                      "PEM private key")
        if _cert_public(cert) != _public(key):
            self.module.fail_json(msg=f"site '{name}': the provided key does not belong to the "
                                      "provided certificate")
        names = _names(cert)
        missing = [d for d in site["domains"] if not _covers(names, d)]
        if missing:
            self.module.fail_json(
                msg=f"site '{name}': the provided certificate does not cover "
                    f"{', '.join(missing)} (it is for {', '.join(names) or 'no DNS name'})")
        if _not_after(cert) < _now():
            self.module.fail_json(msg=f"site '{name}': the provided certificate expired on "
                                      f"{_not_after(cert).date()}")
        self.site_file(key_path, key_pem.encode(), "provided key installed", key=True)
        self.site_file(cert_path, cert_pem.encode(), "provided certificate installed")
        if _has_ocsp(cert):
            self.ocsp.append(name)

    def acme(self, site, cert_path, key_path):
        live = os.path.join(self.p["acme_live_dir"], site["name"])
        live_cert = os.path.join(live, "fullchain.pem")
        cert = _load_cert(live_cert)
        if cert is not None and os.path.exists(os.path.join(live, "privkey.pem")):
            self.link(cert_path, live_cert, "certbot's certificate linked")
            self.link(key_path, os.path.join(live, "privkey.pem"), "certbot's key linked")
            if _has_ocsp(cert):
                self.ocsp.append(site["name"])
            if sorted(_names(cert)) != sorted(site["domains"]):
                self.acme_pending.append(site["name"])
            return
        self.acme_pending.append(site["name"])
        if _load_cert(cert_path) is not None and _load_key(key_path) is not None:
            return  # the placeholder from an earlier run
        key = ec.generate_private_key(ec.SECP256R1())
        cert = _issue(site["domains"][0], site["domains"], key, None, None, 30)
        for path in (cert_path, key_path):
            if os.path.islink(path):
                self.changes.append(f"{path}: dangling link removed")
                if not self.check:
                    os.unlink(path)
        self.site_file(key_path, _pem_key(key), "placeholder key (until certbot's)", key=True)
        self.site_file(cert_path, _pem_cert(cert), "placeholder certificate (until certbot's)")

    def run(self):
        base = self.p["dir"]
        site_dir_re = re.compile(self.p["name_pattern"])
        self.mkdir(base, 0o750, self.gid)
        wanted = set()
        for site in self.p["sites"]:
            name, mode = site["name"], site["mode"]
            if not site_dir_re.match(name) or not site.get("domains"):
                self.module.fail_json(msg=f"site {name!r}: not a site name, or no domains")
            wanted.add(name)
            site_dir = os.path.join(base, name)
            self.mkdir(site_dir, 0o750, self.gid)
            cert_path = os.path.join(site_dir, self.p["certificate_file"])
            key_path = os.path.join(site_dir, self.p["key_file"])
            if mode == "self-signed":
                self.self_signed(site, cert_path, key_path)
            elif mode == "provided":
                self.provided(site, cert_path, key_path)
            elif mode == "acme":
                self.acme_sites.append(name)
                self.acme(site, cert_path, key_path)
            else:
                self.module.fail_json(msg=f"site '{name}': unknown TLS mode {mode!r}")
        if os.path.isdir(base):
            for entry in sorted(os.listdir(base)):
                path = os.path.join(base, entry)
                if entry not in wanted and site_dir_re.match(entry) and os.path.isdir(path):
                    self.changes.append(f"{path}: removed (site gone or without TLS)")
                    if not self.check:
                        shutil.rmtree(path)
        self.save_checked()


def main():
    module = AnsibleModule(
        argument_spec={
            "dir": {"type": "path", "required": True},
            "ca_dir": {"type": "path", "required": True},
            "ca_name": {"type": "str", "default": "sitekit local CA"},
            "sites": {"type": "raw"},
            # read by the action (plugins/action/tls_certificates.py), which gives sites
            "sites_from": {"type": "str"},
            "provided": {"type": "dict", "default": {}, "no_log": True},
            "acme_live_dir": {"type": "path", "default": "/etc/letsencrypt/live"},
            "certificate_file": {"type": "str", "default": "fullchain.pem"},
            "key_file": {"type": "str", "default": "privkey.pem"},
            "renew_days": {"type": "int", "default": 30},
            "name_pattern": {"type": "str", "required": True},
            "group": {"type": "str"},
            "share": {"type": "bool", "default": True},
            "live_config": {"type": "path"},
            "live_marker": {"type": "str"},
        },
        supports_check_mode=True,
    )
    if not HAS_CRYPTOGRAPHY:
        module.fail_json(msg="the Python package cryptography is missing on the host "
                             "(Debian: python3-cryptography)")
    sites = module.params["sites"]
    if sites is None:
        module.fail_json(msg="sites is required (or sites_from, which the action reads)")
    if isinstance(sites, str):
        try:
            sites = json.loads(sites)
        except ValueError as e:
            module.fail_json(msg=f"sites is neither a list nor a JSON text of one: {e}")
    if not isinstance(sites, list) or not all(isinstance(site, dict) for site in sites):
        module.fail_json(msg="sites must be a list of mappings")
    module.params["sites"] = sites
    certs = Certificates(module)
    certs.run()
    module.exit_json(changed=bool(certs.changes), changes=certs.changes, ocsp=certs.ocsp,
                     acme=certs.acme_sites, acme_pending=certs.acme_pending,
                     shared=certs.shared)


if __name__ == "__main__":
    main()
