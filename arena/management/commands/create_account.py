import getpass
import os

from django.contrib.auth import get_user_model, password_validation
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from arena.roles import ROLES, assign_role


class Command(BaseCommand):
    help = "Create (or update) an account with a role: annotator, researcher or admin."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--role", choices=ROLES, default="annotator")
        parser.add_argument("--email", default="")
        parser.add_argument(
            "--password",
            help="the password (default: $DUET_ACCOUNT_PASSWORD, else asked for interactively)",
        )

    def handle(self, *args, username, role, email, password=None, **options):
        password = password or os.environ.get("DUET_ACCOUNT_PASSWORD")
        if not password:
            if not options.get("interactive", True) or not os.isatty(0):
                raise CommandError("no password given: pass --password or set DUET_ACCOUNT_PASSWORD")
            password = getpass.getpass(f"Password for {username}: ")
        User = get_user_model()
        user = User.objects.filter(username=username).first() or User(username=username, email=email)
        try:
            password_validation.validate_password(password, user)
        except ValidationError as exc:
            raise CommandError("password rejected: " + " ".join(exc.messages)) from None
        with transaction.atomic():
            user.set_password(password)
            if email:
                user.email = email
            user.save()
            assign_role(user, role)
        self.stdout.write(self.style.SUCCESS(f"Account {username} ({role}) is ready: log in at /accounts/login/"))
