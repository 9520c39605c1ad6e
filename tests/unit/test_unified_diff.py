"""The diff an edit prints (sitekit.editor.change.unified_diff): applied to the text before, it
gives the text after, and for an edit of one place in a long file it is difflib's own."""

import difflib
import random
import re

from sitekit.editor.change import unified_diff

HUNK = re.compile(r"@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")


def apply(before: str, diff: str) -> list[str]:
    old, out, at = before.splitlines(), [], 0
    lines = diff.splitlines()[2:]
    i = 0
    while i < len(lines):
        found = HUNK.match(lines[i])
        assert found, lines[i]
        start, length = int(found.group(1)), int(found.group(2) or 1)
        start = start - 1 if length else start
        assert start >= at
        out += old[at:start]
        at, i = start, i + 1
        while i < len(lines) and not lines[i].startswith("@@"):
            kind, text = lines[i][0], lines[i][1:]
            if kind in " -":
                assert old[at] == text
                at += 1
            if kind in " +":
                out.append(text)
            i += 1
    return out + old[at:]


def test_the_diff_applies_to_the_text_before_and_gives_the_text_after():
    rng = random.Random(26)
    for _ in range(3000):
        old = [f"l{rng.randint(0, 5)}" for _ in range(rng.randint(0, 40))]
        new = list(old)
        for _ in range(rng.randint(0, 4)):
            at = rng.randint(0, len(new))
            kind = rng.choice("idr")
            if kind == "i":
                new.insert(at, f"n{rng.randint(0, 5)}")
            elif at < len(new):
                if kind == "d":
                    del new[at]
                else:
                    new[at] = f"r{rng.randint(0, 5)}"
        before, after = "".join(f"{x}\n" for x in old), "".join(f"{x}\n" for x in new)
        diff = unified_diff(before, after, "sites.yml")
        assert (diff == "") == (before == after)
        if diff:
            assert diff.startswith("--- a/sites.yml\n+++ b/sites.yml\n@@ ")
            assert apply(before, diff) == after.splitlines()


def test_one_line_added_in_a_long_file_is_difflibs_own_diff():
    lines = [f"      - site{i:05d}.example\n" for i in range(50_000)]
    before = "".join(lines)
    after = "".join([*lines[:30_000], "      - new.example\n", *lines[30_000:]])
    assert unified_diff(before, after, "sites.yml") == "".join(difflib.unified_diff(
        before.splitlines(True), after.splitlines(True), "a/sites.yml", "b/sites.yml"))
