"""`make test` runs the suite as two lists of paths (Makefile: PARALLEL_TESTS, SERIAL_TESTS):
every test module must be in exactly one of them, or it would never run."""

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def make_list(name: str) -> list[str]:
    text = (REPO / "Makefile").read_text()
    found = re.search(rf"^{name} := (.+)$", text, re.M)
    assert found, f"Makefile has no {name}"
    return found.group(1).split()


def test_every_test_module_is_in_one_of_make_tests_two_runs():
    lists = make_list("PARALLEL_TESTS") + make_list("SERIAL_TESTS")
    modules = sorted(p.relative_to(REPO).as_posix() for p in (REPO / "tests").rglob("test_*.py"))
    assert len(modules) > 50
    for module in modules:
        holders = [path for path in lists if module == path or module.startswith(f"{path}/")]
        assert len(holders) == 1, (module, holders)
    # and the Makefile's test target runs both lists
    target = re.search(r"^test: .*?(?=^\S)", (REPO / "Makefile").read_text(), re.M | re.S)
    assert target and "$(PARALLEL_TESTS)" in target.group(0)
    assert "$(SERIAL_TESTS)" in target.group(0)
