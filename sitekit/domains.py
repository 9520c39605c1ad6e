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

from sitekit.echo import shown

LABEL_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\Z")
WHITE_SPACE_RE = re.compile(r"\s")
MAX_LENGTH = 253


class DomainError(ValueError):
    """A domain that cannot be stored; the message says why and, where it can, what to write.

    The message shows the domain escaped and cut (:func:`sitekit.echo.shown`): it may hold
    anything. It offers a fix only one that passes :func:`check_stored_domain` itself
    (:func:`valid_hint`).
    """


def valid_hint(candidate: str) -> str:
    """``candidate`` quoted for a message that offers it as the fix, or '' when it would
    be refused too (a hint that is itself wrong is worse than none)."""
    try:
        return shown(check_stored_domain(candidate))
    except DomainError:
        return ""


def _write(candidate: str) -> str:
    """'; write CANDIDATE' when the candidate is a valid stored domain, else ''."""
    hint = valid_hint(candidate)
    return f"; write {hint}" if hint else ""


def _shape_errors(text: str) -> None:
    """Reject things that are not host names at all (URLs, ports, paths, spaces)."""
    if not text:
        raise DomainError("is empty")
    if WHITE_SPACE_RE.search(text):
        raise DomainError(f"{shown(text)} contains white space; write one domain per entry")
    if "://" in text:
        raise DomainError(f"{shown(text)} is a URL; write the host name only, without the scheme")
    if "/" in text:
        raise DomainError(f"{shown(text)} contains a path; write the host name only")
    if "@" in text:
        raise DomainError(f"{shown(text)} contains '@'; write the host name only")
    if ":" in text or text.startswith("["):
        raise DomainError(
            f"{shown(text)} contains a port or is an IPv6 address; write the host name only "
            "(the port is set for the whole environment)"
        )


#: A domain of the usual kind in its stored form, in one match (the rules below, but for the
#: total length, punycode and an all-digit last label, which :func:`check_stored_domain` checks
#: besides): what nearly every domain of a catalogue is, checked 50,000 times at 10,000 sites.
_USUAL_RE = re.compile(r"(?:\*\.)?(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+"
                       r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")


def check_stored_domain(domain: object) -> str:
    """Return ``domain`` if it is a valid stored domain, else raise :class:`DomainError`."""
    if (isinstance(domain, str) and _USUAL_RE.fullmatch(domain) and len(domain) <= MAX_LENGTH
            and "xn--" not in domain and not domain[domain.rfind(".") + 1 :].isdigit()):
        return domain
    return _checked(domain)


def _checked(domain: object) -> str:
    """:func:`check_stored_domain`, rule by rule: what is wrong, and what to write instead."""
    if not isinstance(domain, str):
        raise DomainError(f"must be a domain name (text), got {shown(domain)}")
    _shape_errors(domain)
    if domain.endswith("."):
        raise DomainError(f"{shown(domain)} ends with a dot{_write(domain.rstrip('.'))}")
    if not domain.isascii():
        try:
            suggestion = _write(normalize_domain(domain))
        except DomainError:
            suggestion = ""
        raise DomainError(
            f"{shown(domain)} is an internationalised name; the catalogue stores it as "
            f"punycode{suggestion}"
        )
    if domain != domain.lower():
        raise DomainError(f"{shown(domain)} must be lower-case{_write(domain.lower())}")
    if len(domain) > MAX_LENGTH:
        raise DomainError(f"{shown(domain)} is {len(domain)} characters long; the limit is 253")

    labels = domain.split(".")
    wildcard = labels[0] == "*"
    if "*" in domain and not (wildcard and "*" not in domain[1:]):
        raise DomainError(
            f"{shown(domain)}: a wildcard is allowed only as a whole leading label, as in "
            "'*.example.org'"
        )
    rest = labels[1:] if wildcard else labels
    if len(rest) < 2:
        if wildcard:
            raise DomainError(
                f"{shown(domain)}: a wildcard must cover a domain of at least two labels, "
                "as in '*.example.org'"
            )
        full = [hint for hint in map(valid_hint, (f"{domain}.example.org", f"{domain}.localhost"))
                if hint]
        raise DomainError(
            f"{shown(domain)} has a single label; use a full name"
            + (f" such as {' or '.join(full)}" if full else "")
        )
    for label in rest:
        if not label:
            raise DomainError(
                f"{shown(domain)} has an empty label (two dots in a row, or a leading dot)"
            )
        if len(label) > 63:
            raise DomainError(f"{shown(domain)}: label {shown(label)} is longer than 63 characters")
        if not LABEL_RE.match(label):
            raise DomainError(
                f"{shown(domain)}: label {shown(label)} may hold only a-z, 0-9 and '-', "
                "and may not start or end with '-'"
            )
        if label.startswith("xn--"):
            try:
                idna.decode(label)
            except idna.IDNAError as exc:
                raise DomainError(
                    f"{shown(domain)}: {shown(label)} is not valid punycode ({shown(str(exc))})"
                ) from None
    if rest[-1].isdigit():
        raise DomainError(
            f"{shown(domain)} looks like an IP address; the catalogue holds domain names"
        )
    return domain


def normalize_domain(text: str) -> str:
    """Turn user input into the stored form: trimmed, lower-case, punycode, no trailing dot."""
    if not isinstance(text, str):
        raise DomainError(f"must be a domain name (text), got {shown(text)}")
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
            raise DomainError(
                f"{shown(text)} is not a valid internationalised name ({shown(str(exc))})"
            ) from None
    body = body.lower()
    result = f"*.{body}" if wildcard else body
    return check_stored_domain(result)
