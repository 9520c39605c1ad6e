"""Check that each site's settings load in a release before it goes live.

``python -m sitekit.runtime.verify settings.harbor settings.meadow ...`` runs Django's system checks
(``manage.py check``) once per settings module, in parallel, from the release directory, and
exits non-zero naming every module that fails, with its error. The deploy runs it before the
``current`` symlink moves, so a release that cannot start never goes live.
"""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor


def check(module: str) -> tuple[str, int, str]:
    env = dict(os.environ, DJANGO_SETTINGS_MODULE=module)
    proc = subprocess.run(
        [sys.executable, "manage.py", "check", "--settings", module],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    return module, proc.returncode, (proc.stderr or proc.stdout).strip()


def main(modules: list[str]) -> int:
    if not modules:
        print("usage: python -m sitekit.runtime.verify SETTINGS_MODULE...", file=sys.stderr)
        return 2
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        results = list(pool.map(check, modules))
    failed = [(m, out) for m, rc, out in results if rc != 0]
    for module, output in failed:
        last = output.splitlines()[-1] if output else "(no output)"
        print(f"{module}: does not load: {last}", file=sys.stderr)
        print(output, file=sys.stderr)
    if not failed:
        print(f"{len(modules)} settings modules load")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
