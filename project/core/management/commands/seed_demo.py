"""Give every present catalogue site that has no announcements a welcome one.

Sites are matched by the SITE_ID of their settings module; run ``sync_sites``
first so the Site rows exist. Idempotent: a site that already has announcements
is left alone. The last line reports ``announcements: N created``.
"""

from django.contrib.sites.models import Site
from django.db import transaction

from project.core.catalogue import CatalogueCommand
from project.core.models import Announcement


def welcome(brand_name):
    return (
        f"Welcome to {brand_name}",
        f"{brand_name} is up and running. News and updates from {brand_name} "
        "will be announced here.",
    )


class Command(CatalogueCommand):
    help = "Create a welcome announcement for present catalogue sites that have none."

    def handle(self, *args, catalogue, database, **options):
        targets = [(entry, *entry.load_settings()) for entry in self.sites(catalogue)]
        created = 0
        with transaction.atomic(using=database):
            for entry, site_id, brand_name in targets:
                site = Site.objects.using(database).filter(id=site_id).first()
                if site is None:
                    self.stdout.write(
                        f"{entry.name}: skipped, no Site row with id={site_id} "
                        "(run sync_sites first)"
                    )
                    continue
                existing = Announcement.objects.using(database).filter(site=site).count()
                if existing:
                    self.stdout.write(f"{entry.name}: unchanged ({existing} announcements)")
                    continue
                title, body = welcome(brand_name)
                Announcement.objects.using(database).create(site=site, title=title, body=body)
                created += 1
                self.stdout.write(f'{entry.name}: created "{title}"')
        self.stdout.write(f"announcements: {created} created")
