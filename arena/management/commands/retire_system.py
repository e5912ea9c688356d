from django.core.management.base import BaseCommand, CommandError

from arena.board.retirement import retire_system, system_named, unretire_system
from arena.errors import InvalidInput


class Command(BaseCommand):
    help = "Retire a system (off the current board and matchmaking; its battles kept), or bring it back with --undo."

    def add_arguments(self, parser):
        parser.add_argument("name", help="the system's name")
        parser.add_argument("--undo", action="store_true", help="bring a retired system back")
        parser.add_argument("--by", default="retire_system", help="who retires it (recorded on the system)")

    def handle(self, *args, **options):
        try:
            system = system_named(options["name"])
        except InvalidInput as exc:
            raise CommandError(exc.message) from None
        if options["undo"]:
            changed = unretire_system(system)
            self.stdout.write(f"{system.name}: {'brought back' if changed else 'was not retired; nothing changed'}")
        else:
            changed = retire_system(system, by=options["by"])
            self.stdout.write(f"{system.name}: {'retired' if changed else 'already retired; nothing changed'}")
