"""Make the Site rows match the catalogue's present sites.

For every present site, the Site row whose id is the SITE_ID of the site's settings
module gets the catalogue domain and the brand name as its name. Rows of absent or
unknown sites are never modified or deleted. Running it twice changes nothing the
second time; the last line reports ``sites: C created, U updated, N unchanged``.

It takes the same few queries for ten thousand sites as for one: the rows are read in one
query, and only the rows that change are written, in bulk. With ``--quiet`` only that last
line is printed (not a line per site).
"""

from collections import Counter

from django.contrib.sites.models import Site
from django.core.exceptions import ValidationError
from django.core.management.base import CommandError
from django.core.management.color import no_style
from django.db import connections, transaction

from project.core.catalogue import CatalogueCommand

#: Rows written per statement (SQLite takes at most 999 parameters in older versions).
BATCH = 200


def _swap_domain(site_id):
    # Never a valid public name (.invalid is reserved), unique per row.
    return f"sitekit-swap-{site_id}.invalid"


class Command(CatalogueCommand):
    help = "Create or update the Site rows of the catalogue's present sites."

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("--quiet", action="store_true",
                            help="print only the counts, not a line per site")

    def handle(self, *args, catalogue, database, quiet=False, **options):
        entries = self.sites(catalogue, present=False)
        wanted = {}  # site_id -> (entry, brand name)
        for entry in entries:
            if not entry.present:
                continue
            site_id, brand_name = entry.load_settings()
            if site_id in wanted:
                other = wanted[site_id][0].name
                raise CommandError(f"{entry.name} and {other} both use SITE_ID={site_id}")
            self._validate(entry, site_id, brand_name)
            wanted[site_id] = (entry, brand_name)
        domains = Counter(entry.domain for entry, _ in wanted.values())
        duplicates = sorted(d for d, count in domains.items() if count > 1)
        if duplicates:
            raise CommandError(f"several present sites use the domain {', '.join(duplicates)}")

        with transaction.atomic(using=database):
            results = self._sync(wanted, database)

        Site.objects.clear_cache()
        counts = {"created": 0, "updated": 0, "unchanged": 0}
        for entry in entries:
            if not entry.present:
                if not quiet:
                    self.stdout.write(f"{entry.name}: absent, left untouched")
                continue
            site_id, outcome = results[entry.name]
            counts[outcome] += 1
            if not quiet:
                self.stdout.write(
                    f"{entry.name}: {outcome} (id={site_id}, domain={entry.domain})")
        self.stdout.write(
            "sites: {created} created, {updated} updated, {unchanged} unchanged".format(**counts)
        )

    def _validate(self, entry, site_id, brand_name):
        try:
            Site(id=site_id, domain=entry.domain, name=brand_name).clean_fields()
        except ValidationError as exc:
            raise CommandError(f"{entry.name}: {'; '.join(exc.messages)}") from exc

    def _sync(self, wanted, database):
        sites = Site.objects.using(database)
        # one query, whatever the number of sites
        existing = {site.id: site for site in sites.select_for_update().all()}
        by_domain = {site.domain: site for site in existing.values()}

        # A domain held by a row this run does not manage cannot be taken over.
        for site_id, (entry, _) in wanted.items():
            holder = by_domain.get(entry.domain)
            if holder is not None and holder.id != site_id and holder.id not in wanted:
                raise CommandError(
                    f"{entry.name}: domain {entry.domain} belongs to site id={holder.id} "
                    f"({holder.name}), which is not a present catalogue site"
                )

        # Domains are unique: park every row whose domain changes on a temporary
        # domain first, so that two sites can swap domains.
        moving = [
            existing[site_id]
            for site_id, (entry, _) in wanted.items()
            if site_id in existing and existing[site_id].domain != entry.domain
        ]
        for site in moving:
            site.domain = _swap_domain(site.id)
        sites.bulk_update(moving, ["domain"], batch_size=BATCH)

        results = {}
        new, changed = [], []
        moved = {site.id for site in moving}
        for site_id, (entry, brand_name) in sorted(wanted.items()):
            site = existing.get(site_id)
            if site is None:
                new.append(Site(id=site_id, domain=entry.domain, name=brand_name))
                results[entry.name] = (site_id, "created")
            elif site_id in moved or site.name != brand_name:
                site.domain = entry.domain
                site.name = brand_name
                changed.append(site)
                results[entry.name] = (site_id, "updated")
            else:
                results[entry.name] = (site_id, "unchanged")
        sites.bulk_update(changed, ["domain", "name"], batch_size=BATCH)
        sites.bulk_create(new, batch_size=BATCH)

        if new:
            # Rows were inserted with explicit ids: move the id sequence past them
            # (a no-op on SQLite).
            connection = connections[database]
            with connection.cursor() as cursor:
                for sql in connection.ops.sequence_reset_sql(no_style(), [Site]):
                    cursor.execute(sql)
        return results
