"""A SaaS-sized catalogue written straight into a scratch copy of the checkout: N sites, most
of them in pools, each with its settings module (its own SITE_ID), as `sitekit site add` would
leave them, without running it N times. bench/cli_scale.py and bench/playbook.py use it.

The catalogue is written in the layout the editing commands keep (one entry per site, its
domains a flow list, or a block list where that line would be longer than yamllint allows, as
`sitekit domain add` writes them), so the editor can edit
it as it edits any other.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from tests.harness import SITES_YML

#: Domains per generated site: NAME.localhost, www.NAME.localhost and subdomains of it.
LINE_LIMIT = 120  # yamllint's line-length in this checkout
SUBDOMAINS = ("shop", "blog", "news", "help", "api", "docs", "m", "store")


def layout(sites: int, pools: int, dedicated: int) -> list[str | None]:
    """Which pool each of *sites* sites is in (None: a dedicated site), the first *dedicated*
    dedicated and the others spread over *pools* pools in consecutive runs."""
    dedicated = min(dedicated, sites) if pools else sites
    pooled = sites - dedicated
    per_pool = -(-pooled // pools) if pools else 0
    return [None] * dedicated + [f"pool{i // per_pool + 1:02d}" for i in range(pooled)]


def domains_of(name: str, count: int) -> list[str]:
    apex = f"{name}.localhost"
    names = [apex, f"www.{apex}"]
    k = 0
    while len(names) < count:
        sub = SUBDOMAINS[k % len(SUBDOMAINS)] + (str(k // len(SUBDOMAINS)) if k >= len(SUBDOMAINS)
                                                 else "")
        names.append(f"{sub}.{apex}")
        k += 1
    return names[:count]


def entry_lines(site: dict) -> list[str]:
    lines = [f"  - name: {site['name']}"]
    flow = f"    domains: [{', '.join(site['domains'])}]"
    if len(flow) <= LINE_LIMIT:
        lines.append(flow)
    else:
        lines += ["    domains:", *(f"      - {d}" for d in site["domains"])]
    lines += [f"    {key}: {value}" for key, value in site.items()
              if key not in ("name", "domains")]
    return lines


def write(checkout: Path, sites: int, *, pools: int = 10, dedicated: int = 3, per_site: int = 5,
          workers: int = 1, pool_workers: int = 2, first: dict | None = None,
          id_base: int = 1000) -> list[dict]:
    """Replace the local catalogue of *checkout* by *sites* generated sites (*first*, a
    catalogue entry, is the first of them, keeping its own settings module) and write the
    settings module of every other one. Returns the catalogue's entries."""
    catalogue = []
    for index, pool in enumerate(layout(sites, pools, dedicated)):
        if index == 0 and first is not None:
            entry = {k: v for k, v in first.items() if k != "workers"}
        else:
            name = f"s{index + 1:05d}"
            entry = {"name": name, "domains": domains_of(name, per_site)}
        if pool:
            entry["pool"] = pool
        else:
            entry["workers"] = workers
        catalogue.append(entry)
    used = sorted({e["pool"] for e in catalogue if "pool" in e})
    lines = ["---", "# A generated catalogue (bench/scale_catalogue.py)."]
    if used:
        lines.append("sitekit_pools:")
        lines += [f"  {pool}: {{workers: {pool_workers}}}" for pool in used]
    lines.append("sitekit_sites:")
    for entry in catalogue:
        lines += entry_lines(entry)
    text = "\n".join(lines) + "\n"
    assert yaml.load(text, Loader=yaml.CSafeLoader)["sitekit_sites"] == catalogue
    (checkout / SITES_YML).write_text(text, encoding="utf-8")
    settings = checkout / "settings"
    for index, entry in enumerate(catalogue, start=1):
        if index == 1 and first is not None:
            continue
        (settings / f"{entry['name']}.py").write_text(
            f'"""{entry["name"]}: a generated site, in harbor\'s brand."""\n\n'
            f'from .harbor import *  # noqa: F403\n\nSITE_ID = {id_base + index}\n'
            f'SITEKIT_SITE = "{entry["name"]}"\n'
            'SESSION_COOKIE_NAME = f"{SITEKIT_SITE}_sessionid"\n'
            'CSRF_COOKIE_NAME = f"{SITEKIT_SITE}_csrftoken"\n'
            f'SITEKIT_BRAND = {{**SITEKIT_BRAND, "name": "{entry["name"]}"}}  # noqa: F405\n',
            encoding="utf-8")
    return catalogue
