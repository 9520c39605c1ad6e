"""Domain names as the catalogue stores them.

Two entry points:

* :func:`check_stored_domain` is strict: a domain in the inventory must already be in its
  stored form (lower-case ASCII, internationalised labels as punycode, no trailing dot).
* :func:`normalize_domain` turns what a person types (``Café.Example.``, ``  www.x.org``)
  into the stored form, or explains why it cannot.

Rules (RFC 1123 host names, as nginx's ``server_name`` and browsers use them):

* at least two labels (``example.org``, ``harbor.localhost``); each label 1-63 characters of
  ``a-z``, ``0-9`` and ``-``, not starting or ending with ``-``; at most 253 characters in all;
* a wildcard only as a whole leading label: ``*.example.org`` (and at least two labels after it);
* the last label is not all digits (IP addresses are not domains);
* no scheme, port, path, user info or white space.
"""

from __future__ import annotations

import re

import idna

LABEL_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
MAX_LENGTH = 253


class DomainError(ValueError):
    """A domain that cannot be stored; the message says why and, where it can, what to write."""


def _shape_errors(text: str) -> None:
    """Reject things that are not host names at all (URLs, ports, paths, spaces)."""
    if not text:
        raise DomainError("is empty")
    if any(ch.isspace() for ch in text):
        raise DomainError(f"'{text}' contains white space; write one domain per entry")
    if "://" in text:
        raise DomainError(f"'{text}' is a URL; write the host name only, without the scheme")
    if "/" in text:
        raise DomainError(f"'{text}' contains a path; write the host name only")
    if "@" in text:
        raise DomainError(f"'{text}' contains '@'; write the host name only")
    if ":" in text or text.startswith("["):
        raise DomainError(
            f"'{text}' contains a port or is an IPv6 address; write the host name only "
            "(the port is set for the whole environment)"
        )


def check_stored_domain(domain: object) -> str:
    """Return ``domain`` if it is a valid stored domain, else raise :class:`DomainError`."""
    if not isinstance(domain, str):
        raise DomainError(f"must be a domain name (text), got {domain!r}")
    _shape_errors(domain)
    if domain.endswith("."):
        raise DomainError(f"'{domain}' ends with a dot; write '{domain.rstrip('.')}'")
    if not domain.isascii():
        try:
            suggestion = normalize_domain(domain)
        except DomainError:
            suggestion = None
        hint = f"; write '{suggestion}'" if suggestion else ""
        raise DomainError(
            f"'{domain}' is an internationalised name; the catalogue stores it as punycode{hint}"
        )
    if domain != domain.lower():
        raise DomainError(f"'{domain}' must be lower-case; write '{domain.lower()}'")
    if len(domain) > MAX_LENGTH:
        raise DomainError(f"'{domain}' is {len(domain)} characters long; the limit is 253")

    labels = domain.split(".")
    wildcard = labels[0] == "*"
    if "*" in domain and not (wildcard and "*" not in domain[1:]):
        raise DomainError(
            f"'{domain}': a wildcard is allowed only as a whole leading label, as in "
            "'*.example.org'"
        )
    rest = labels[1:] if wildcard else labels
    if len(rest) < 2:
        if wildcard:
            raise DomainError(
                f"'{domain}': a wildcard must cover a domain of at least two labels, "
                "as in '*.example.org'"
            )
        raise DomainError(
            f"'{domain}' has a single label; use a full name such as '{domain}.example.org' "
            f"or '{domain}.localhost'"
        )
    for label in rest:
        if not label:
            raise DomainError(
                f"'{domain}' has an empty label (two dots in a row, or a leading dot)"
            )
        if len(label) > 63:
            raise DomainError(f"'{domain}': label '{label}' is longer than 63 characters")
        if not LABEL_RE.match(label):
            raise DomainError(
                f"'{domain}': label '{label}' may hold only a-z, 0-9 and '-', "
                "and may not start or end with '-'"
            )
        if label.startswith("xn--"):
            try:
                idna.decode(label)
            except idna.IDNAError as exc:
                raise DomainError(f"'{domain}': '{label}' is not valid punycode ({exc})") from None
    if rest[-1].isdigit():
        raise DomainError(f"'{domain}' looks like an IP address; the catalogue holds domain names")
    return domain


def normalize_domain(text: str) -> str:
    """Turn user input into the stored form: trimmed, lower-case, punycode, no trailing dot."""
    if not isinstance(text, str):
        raise DomainError(f"must be a domain name (text), got {text!r}")
    text = text.strip()
    _shape_errors(text)
    if text.endswith(".") and not text.endswith(".."):
        text = text[:-1]
    wildcard = text.startswith("*.")
    body = text[2:] if wildcard else text
    if not body.isascii():
        try:
            body = idna.encode(body, uts46=True).decode("ascii")
        except idna.IDNAError as exc:
            raise DomainError(f"'{text}' is not a valid internationalised name ({exc})") from None
    body = body.lower()
    result = f"*.{body}" if wildcard else body
    return check_stored_domain(result)
