"""Who may edit which site in its admin (project.core.editors).

    manage.py site_editors grant USER SITE... [--create]
    manage.py site_editors revoke USER SITE...
    manage.py site_editors list [SITE]

SITE is the site's name in the catalogue (harbor, meadow, ...); its Site row is the one whose
id is the SITE_ID of its settings module, as sync_sites keeps it. ``grant`` makes the user staff
(an editor is staff); with ``--create`` a missing user is created as staff, with the password
from SITEKIT_USER_PASSWORD, else asked twice on the terminal. Superusers edit every site and
need no grant.
"""

import getpass
import os
import sys

from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from project.core.editors import UnknownSite, site_by_name, site_names
from project.core.models import SiteEditor

PASSWORD_ENV = "SITEKIT_USER_PASSWORD"  # noqa: S105 (a variable name)


class Command(BaseCommand):
    help = "Grant, revoke and list who may edit which site in its admin."

    def add_arguments(self, parser):
        commands = parser.add_subparsers(dest="action", metavar="{grant,revoke,list}")
        commands.required = True
        grant = commands.add_parser("grant", help="let USER edit each SITE")
        grant.add_argument("user", metavar="USER")
        grant.add_argument("sites", metavar="SITE", nargs="+")
        grant.add_argument(
            "--create", action="store_true",
            help=f"create USER as a staff user if missing (password from ${PASSWORD_ENV}, "
            "else asked twice)",
        )
        revoke = commands.add_parser("revoke", help="stop USER editing each SITE")
        revoke.add_argument("user", metavar="USER")
        revoke.add_argument("sites", metavar="SITE", nargs="+")
        listing = commands.add_parser("list", help="the editors of every site, or of SITE")
        listing.add_argument("site", metavar="SITE", nargs="?")

    def handle(self, *args, action, **options):
        return getattr(self, f"do_{action}")(**options)

    # --- helpers --------------------------------------------------------------------------

    def _sites(self, names):
        try:
            return [(name, site_by_name(name)) for name in dict.fromkeys(names)]
        except UnknownSite as exc:
            raise CommandError(str(exc)) from None

    def _user(self, username, create=False):
        User = get_user_model()
        try:
            return User.objects.get(**{User.USERNAME_FIELD: username}), False
        except User.DoesNotExist:
            if not create:
                raise CommandError(
                    f"unknown user {username!r} (grant --create makes it a staff user)"
                ) from None
        user = User(**{User.USERNAME_FIELD: username}, is_staff=True)
        password = self._password()
        try:
            validate_password(password, user)
        except ValidationError as exc:
            raise CommandError("password refused: " + " ".join(exc.messages)) from None
        user.set_password(password)
        user.save()
        return user, True

    def _password(self):
        password = os.environ.get(PASSWORD_ENV)
        if password is None:
            if not sys.stdin.isatty():
                raise CommandError(
                    f"no password: set {PASSWORD_ENV} or run on a terminal to be asked")
            password = getpass.getpass("Password: ")
            if getpass.getpass("Password (again): ") != password:
                raise CommandError("the two passwords differ")
        if not password:
            raise CommandError("the password is empty")
        return password

    # --- actions --------------------------------------------------------------------------

    def do_grant(self, user, sites, create, **options):
        targets = self._sites(sites)
        with transaction.atomic():
            account, created = self._user(user, create)
            if created:
                self.stdout.write(f"{user}: created (staff)")
            elif not account.is_staff:
                account.is_staff = True
                account.save(update_fields=["is_staff"])
                self.stdout.write(f"{user}: now staff")
            for name, site in targets:
                _, new = SiteEditor.objects.get_or_create(user=account, site=site)
                state = "granted" if new else "already granted"
                self.stdout.write(f"{user} edits {name}: {state}")
        if account.is_superuser:
            self.stdout.write(f"{user} is a superuser: edits every site anyway")

    def do_revoke(self, user, sites, **options):
        targets = self._sites(sites)
        account, _ = self._user(user)
        for name, site in targets:
            deleted, _ = SiteEditor.objects.filter(user=account, site=site).delete()
            state = "revoked" if deleted else "was not granted"
            self.stdout.write(f"{user} edits {name}: {state}")
        if account.is_superuser:
            self.stdout.write(f"{user} is a superuser: still edits every site")

    def do_list(self, site=None, **options):
        if site is not None:
            names = [name for name, _ in self._sites([site])]
        else:
            names = sorted(site_names(), key=lambda name: site_names()[name])
        ids = site_names()
        editors = {}
        for site_id, username in SiteEditor.objects.filter(
            site_id__in=[ids[name] for name in names]
        ).values_list("site_id", "user__username").order_by("site_id", "user__username"):
            editors.setdefault(site_id, []).append(username)
        for name in names:
            self.stdout.write(f"{name}: {', '.join(editors.get(ids[name], [])) or '(none)'}")
        superusers = get_user_model().objects.filter(is_superuser=True, is_active=True)
        usernames = sorted(superusers.values_list("username", flat=True))
        self.stdout.write(f"superusers (every site): {', '.join(usernames) or '(none)'}")
