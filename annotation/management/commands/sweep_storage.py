from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone


class Command(BaseCommand):
    help = ("Delete the stored import uploads and export files (duet storage) whose import, export "
            "or project no longer exists, and a failed export's leftovers; lists each file.")

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="list what would be removed; remove nothing")
        parser.add_argument("--grace-minutes", type=float, default=60,
                            help="keep files younger than this (an upload is stored just before its job; default 60)")

    def handle(self, *args, **options):
        from annotation.stored_files import sweep_orphans

        if options["grace_minutes"] < 0:
            raise CommandError(f"--grace-minutes must be 0 or more, not {options['grace_minutes']:g}")
        dry_run = options["dry_run"]
        report = sweep_orphans(dry_run=dry_run, grace=timezone.timedelta(minutes=options["grace_minutes"]))
        verb = "would remove" if dry_run else "removed"
        for name in report.removed:
            self.stdout.write(f"{verb} {name}")
        self.stdout.write(f"{verb} {len(report.removed)} orphaned file(s); kept {len(report.recent)} "
                          f"younger than the grace (or of unknown age)")
