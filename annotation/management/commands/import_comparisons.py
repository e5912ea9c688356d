from contextlib import nullcontext
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from annotation.actions import import_into_project
from annotation.errors import DuetError
from annotation.importers import FORMATS


class Command(BaseCommand):
    help = (
        "Import comparisons (Duet JSONL/JSON/CSV/Parquet, HH-RLHF or PandaLM) into a project, atomically; "
        "the project is created with the default schema if it does not exist."
    )

    def add_arguments(self, parser):
        parser.add_argument("path")
        parser.add_argument("--project", required=True, help="project name (created if new)")
        parser.add_argument("--format", choices=FORMATS, default="duet", dest="fmt")
        parser.add_argument("--media-zip", help="zip holding the files that rows name in a.media / b.media")
        parser.add_argument("--seed", type=int, default=0, help="seed for the sides of HH-RLHF pairs")

    def handle(self, *args, path, project, fmt, media_zip, seed, **options):
        try:
            with open(path, "rb") as source, (open(media_zip, "rb") if media_zip else nullcontext()) as archive:
                target, created, summary = import_into_project(
                    project, source, Path(path).name, fmt=fmt, media_zip=archive, seed=seed
                )
        except (DuetError, OSError) as exc:
            raise CommandError(f"nothing imported: {exc}") from None
        made = " (new project)" if created else ""
        self.stdout.write(self.style.SUCCESS(f"Project {target.name!r}{made}: {summary}."))
