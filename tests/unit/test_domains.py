"""Domain rules: the stored form the catalogue requires and the normalisation of user input."""

import random
import re

import pytest

from sitekit import domains
from sitekit.domains import DomainError, check_stored_domain, normalize_domain

LABEL_63 = "a" * 63
LABEL_64 = "a" * 64
# Three 63-character labels, a last label of 61 and three dots: exactly 253 characters.
NAME_253 = f"{LABEL_63}.{LABEL_63}.{LABEL_63}.{'b' * 61}"
NAME_254 = f"{LABEL_63}.{LABEL_63}.{LABEL_63}.{'b' * 62}"


@pytest.mark.parametrize(
    "domain",
    [
        "example.org",
        "harbor.localhost",
        "www.harbor.localhost",
        "a.b",
        "x1-y2.example.org",
        "123.example.org",  # a digit-only label is fine anywhere but last
        "a--b.example.org",
        f"{LABEL_63}.example.org",
        NAME_253,
        "*.example.org",
        "*.harbor.localhost",
        "xn--bcher-kva.de",
        "*.xn--bcher-kva.de",
    ],
)
def test_stored_domain_accepts_valid_names(domain):
    assert check_stored_domain(domain) == domain


@pytest.mark.parametrize(
    ("domain", "fragment"),
    [
        # label length and total length
        (f"{LABEL_64}.example.org", f"label '{LABEL_64}' is longer than 63 characters"),
        (NAME_254, "is 254 characters long; the limit is 253"),
        # allowed characters, hyphens
        ("exa_mple.org", "label 'exa_mple' may hold only a-z, 0-9 and '-'"),
        ("ex!ample.org", "label 'ex!ample' may hold only a-z, 0-9 and '-'"),
        ("-example.org", "label '-example' may hold only a-z, 0-9 and '-', and may not start"),
        ("example-.org", "label 'example-' may hold only a-z, 0-9 and '-', and may not start"),
        ("www.example.-org", "label '-org'"),
        # empty labels, single label
        ("example..org", "has an empty label"),
        (".example.org", "has an empty label"),
        ("localhost", "has a single label; use a full name such as 'localhost.example.org'"),
        # wildcards
        ("*.com", "a wildcard must cover a domain of at least two labels"),
        ("*", "a wildcard must cover a domain of at least two labels"),
        ("a.*.b", "a wildcard is allowed only as a whole leading label"),
        ("*foo.b", "a wildcard is allowed only as a whole leading label"),
        ("foo*.example.org", "a wildcard is allowed only as a whole leading label"),
        ("*.*.example.org", "a wildcard is allowed only as a whole leading label"),
        ("example.*", "a wildcard is allowed only as a whole leading label"),
        # IP addresses
        ("192.168.1.10", "looks like an IP address"),
        ("10.0.0.1", "looks like an IP address"),
        ("[::1]", "contains a port or is an IPv6 address"),
        # things that are not host names
        ("https://example.org", "is a URL; write the host name only, without the scheme"),
        ("example.org:8080", "contains a port"),
        ("example.org/admin", "contains a path"),
        ("exa mple.org", "contains white space"),
        (" example.org", "contains white space"),
        ("example.org\n", "contains white space"),
        ("user@example.org", "contains '@'"),
        # trailing dot and case: rejected, with the stored form to write instead
        ("example.org.", "ends with a dot; write 'example.org'"),
        ("Example.ORG", "must be lower-case; write 'example.org'"),
        # internationalised names
        ("bücher.de", "is an internationalised name; the catalogue stores it as punycode; "
                      "write 'xn--bcher-kva.de'"),
        ("xn--zz.de", "'xn--zz' is not valid punycode"),
        ("xn--ls8h.de", "'xn--ls8h' is not valid punycode"),
    ],
)
def test_stored_domain_rejects_with_reason(domain, fragment):
    with pytest.raises(DomainError) as caught:
        check_stored_domain(domain)
    message = str(caught.value)
    assert fragment in message
    assert repr(domain) in message  # the message quotes what was written, escaped


@pytest.mark.parametrize("value", ["", None, 42, ["example.org"]])
def test_stored_domain_rejects_empty_and_non_text(value):
    with pytest.raises(DomainError, match=r"is empty|must be a domain name"):
        check_stored_domain(value)


def test_domain_error_is_a_value_error():
    with pytest.raises(ValueError, match="single label"):
        check_stored_domain("localhost")


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("bücher.de", "xn--bcher-kva.de"),
        ("Bücher.DE", "xn--bcher-kva.de"),
        ("bücher.de.", "xn--bcher-kva.de"),
        ("*.Bücher.de", "*.xn--bcher-kva.de"),
        ("münchen.example.org", "xn--mnchen-3ya.example.org"),
        ("Harbor.Localhost", "harbor.localhost"),
        ("www.harbor.localhost.", "www.harbor.localhost"),
        ("  WWW.Example.org.  ", "www.example.org"),
        ("*.Example.org", "*.example.org"),
        ("example.org", "example.org"),
        ("xn--bcher-kva.de", "xn--bcher-kva.de"),
        (NAME_253, NAME_253),
    ],
)
def test_normalize_gives_the_stored_form(typed, stored):
    assert normalize_domain(typed) == stored
    # and the result is something the strict check accepts unchanged
    assert check_stored_domain(stored) == stored
    assert normalize_domain(stored) == stored


@pytest.mark.parametrize(
    ("typed", "fragment"),
    [
        ("https://bücher.de", "is a URL"),
        ("example.org:443", "contains a port"),
        ("example.org/path", "contains a path"),
        ("user@example.org", "contains '@'"),
        ("bü cher.de", "contains white space"),
        ("example..org", "has an empty label"),
        ("example.org..", "ends with a dot"),
        ("localhost.", "has a single label"),
        ("Localhost", "has a single label"),
        ("*.com", "a wildcard must cover a domain of at least two labels"),
        ("a.*.b", "a wildcard is allowed only as a whole leading label"),
        ("1.2.3.4", "looks like an IP address"),
        (f"{LABEL_64}.example.org", "is longer than 63 characters"),
        (NAME_254 + ".", "is 254 characters long"),
        ("xn--zz.de", "is not valid punycode"),
        ("bü_cher.de", "is not a valid internationalised name"),
        ("💩.de", "is not a valid internationalised name"),
        ("", "is empty"),
        ("   ", "is empty"),
    ],
)
def test_normalize_rejects_what_cannot_be_a_domain(typed, fragment):
    with pytest.raises(DomainError, match=re.escape(fragment)):
        normalize_domain(typed)


def test_normalize_rejects_non_text():
    with pytest.raises(DomainError, match="must be a domain name"):
        normalize_domain(None)


# --- a hint offers only what the rule accepts -------------------------------------------------


@pytest.mark.parametrize(
    ("domain", "message"),
    [
        # the fix is valid: offered
        ("Harbor.example.org",
         "'Harbor.example.org' must be lower-case; write 'harbor.example.org'"),
        ("harbor.example.org.",
         "'harbor.example.org.' ends with a dot; write 'harbor.example.org'"),
        ("harbor", "'harbor' has a single label; use a full name such as 'harbor.example.org' "
                   "or 'harbor.localhost'"),
        # lower-case, without the dot, with a suffix: still invalid, so not offered
        ("Har_bor.example.org", "'Har_bor.example.org' must be lower-case"),
        ("Harbor..org", "'Harbor..org' must be lower-case"),
        ("har_bor.", "'har_bor.' ends with a dot"),
        ("a..", "'a..' ends with a dot"),
        ("har_bor", "'har_bor' has a single label; use a full name"),
        (LABEL_64, f"'{LABEL_64}' has a single label; use a full name"),
        ("Ü_x.org", "'Ü_x.org' is an internationalised name; the catalogue stores it as punycode"),
    ],
)
def test_a_fix_is_offered_only_when_the_rule_accepts_it(domain, message):
    with pytest.raises(DomainError) as caught:
        check_stored_domain(domain)
    assert str(caught.value) == message


def test_the_canonical_wildcard_hint_is_offered_only_when_valid():
    from sitekit.catalogue import validate

    def hint_of(wildcard):
        result = validate([{"name": "harbor", "domains": [wildcard, "harbor.example.org"]}])
        return next(p.message for p in result.problems if p.field == "domains[0]")

    assert "put a concrete name such as 'www.harbor.example.org' first" in hint_of(
        "*.harbor.example.org")
    longest = f"*.{LABEL_63}.{LABEL_63}.{LABEL_63}.{'b' * 59}"  # 253: www. would make 255
    assert len(longest) == 253
    assert hint_of(longest).endswith("put a concrete name first")


def test_a_domain_is_shown_escaped_and_a_huge_one_cut():
    with pytest.raises(DomainError) as caught:
        check_stored_domain("\x1b[31mx.example.org")
    assert str(caught.value).startswith("'\\x1b[31mx.example.org': label '\\x1b[31mx' may hold")
    with pytest.raises(DomainError) as caught:
        check_stored_domain("a" * 10_000_000 + ".org")
    assert str(caught.value) == (
        f"'{'a' * 256}'... (10000004 characters) is 10000004 characters long; the limit is 253")


def test_the_one_match_for_usual_domains_decides_as_the_rules_do():
    # check_stored_domain takes a usual domain in one match: it must accept exactly what the
    # rules, one by one, accept, and leave every refusal (and its message) to them
    rng = random.Random(7)
    pieces = ["a", "z", "0", "9", "-", ".", "*", "xn--", "x" * 63, "y" * 64, "A", "é", " ", ":",
              "/", "localhost", "example", "org", "1", "123", "..", "_", "\n"]
    texts = ["", "a.b", "*.a.b", "a." * 126 + "b", "a." * 127 + "bc", "xn--caf-dma.example",
             "xn--zz.example", "1.2.3.4", "a.1", "a.b1", "-a.b", "a-.b", "*.b", "a.*.b"]
    labels = ["a", "z0", "x-y", "-a", "a-", "x" * 63, "y" * 64, "123", "xn--caf-dma", "xn--zz",
              "*", "A", "é", "a_b", "0", "", "localhost", "b" * 60]
    texts += ["".join(rng.choice(pieces) for _ in range(rng.randint(1, 8))) for _ in range(10000)]
    texts += [rng.choice(["", "", "*.", "."]) + ".".join(
        rng.choice(labels) for _ in range(rng.randint(1, 6))) + rng.choice(["", "", "", "."])
        for _ in range(10000)]
    for text in texts:
        try:
            expected = domains._checked(text)
        except DomainError as exc:
            expected = f"refused: {exc}"
        try:
            got = check_stored_domain(text)
        except DomainError as exc:
            got = f"refused: {exc}"
        assert got == expected, text
